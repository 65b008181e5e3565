"""The pixel-size decision and the resampling, for a pairing whose LQ pixel differs from its
aligned (HQ) grid: an input at the LQ microscope's pixel goes onto the grid as the training
pairs did; the factor's ends are included; a refusal names both sizes."""

from __future__ import annotations

import numpy as np
import pytest

from models.pixel_grid import PixelSizeRefused, plan_pixel_size, to_model_grid

LQ_UM, GRID_UM = 0.0865, 0.159  # the test network's wide-field and confocal pixels


def plan(input_um: float | None, shape: tuple[int, int] = (512, 512)):  # type: ignore[no-untyped-def]
    return plan_pixel_size(
        input_um, assumed_um=LQ_UM, model_lq_um=LQ_UM, model_um=GRID_UM, shape_yx=shape
    )


def test_an_input_at_the_lq_pixel_goes_onto_the_grid_like_the_training_pairs() -> None:
    p = plan(LQ_UM)
    assert (p.action, p.resampled, p.output_um) == ("resampled", True, GRID_UM)
    assert plan(GRID_UM * 1.005).action == "as-is"  # within 1 % of the grid: used as it is


def test_the_factor_is_half_to_twice_the_lq_pixel_both_ends_included() -> None:
    assert plan(LQ_UM * 0.5).resampled and plan(LQ_UM * 2).resampled
    for outside in (LQ_UM * 0.49, LQ_UM * 2.01):
        with pytest.raises(PixelSizeRefused, match=r"0\.0865 µm LQ pixels"):
            plan(outside)


def test_no_pixel_size_is_the_lq_microscopes_with_a_warning() -> None:
    p = plan(None)
    assert p.action == "assumed" and p.input_um == LQ_UM and p.resampled
    assert "no pixel size" in p.warning and "0.159 µm grid" in p.warning


def test_an_input_too_small_once_on_the_grid_is_refused() -> None:
    with pytest.raises(PixelSizeRefused, match="on the model's"):
        plan(LQ_UM, shape=(24, 24))  # 13×13 on the grid


def test_resampling_keeps_channels_and_planes_and_the_intensity_scale() -> None:
    rng = np.random.default_rng(0)
    stack = rng.uniform(100, 200, (2, 3, 64, 80)).astype(np.float32)  # ZCYX
    out = to_model_grid(stack, 0.05, 0.1)
    assert out.shape == (2, 3, 32, 40) and out.dtype == np.float32
    assert out.mean() == pytest.approx(stack.mean(), rel=0.01)
    assert np.allclose(to_model_grid(np.full((1, 16, 16), 7.0), 0.2, 0.1), 7.0)
