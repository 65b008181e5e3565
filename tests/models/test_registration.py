"""Tests for models.registration on real W2S pairs (registered, same camera) and on synthetic
transforms, defocus stacks and bad inputs built from them.

Data: see ``_data_dir``; the tests that need it are skipped when it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage
from skimage.transform import rescale, rotate

from models.registration import DEFAULT_NCC_THRESHOLD, Alignment, align_pair


def _data_dir() -> Path:
    """The shared data folder: $PAIRSCOPE_TEST_DATA (as tests/conftest.py), else
    $PAIRSCOPE_DATA_DIR when it holds the W2S pairs (that variable is also the service's own
    data_dir, so it is only trusted if the data is there), else <repo>/../shared/data."""
    for var in ("PAIRSCOPE_TEST_DATA", "PAIRSCOPE_DATA_DIR"):
        value = os.environ.get(var)
        if value and (Path(value) / "w2s-widefield-denoise").is_dir():
            return Path(value)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


_W2S = _data_dir() / "w2s-widefield-denoise"

needs_data = pytest.mark.skipif(
    not (_W2S / "lq" / "field_001.tif").is_file(),
    reason=f"W2S pairs not found under {_W2S} (set PAIRSCOPE_TEST_DATA to the shared data dir)",
)


def _load(side: str, field: int) -> np.ndarray:
    return tifffile.imread(_W2S / side / f"field_{field:03d}.tif")


def _shift_then_rotate(img: np.ndarray, shift_yx: tuple[float, float], angle: float) -> np.ndarray:
    """Move content by ``shift_yx`` (ndimage.shift sense), then turn it ``angle`` degrees
    counter-clockwise about the image centre (skimage.transform.rotate sense)."""
    return np.stack(
        [
            rotate(
                ndimage.shift(c.astype(np.float32), shift_yx, order=3, mode="reflect"),
                angle,
                order=3,
                mode="reflect",
                preserve_range=True,
            )
            for c in img
        ]
    ).astype(np.float32)


# ----------------------------------------------------------------------------- recovery
@needs_data
@pytest.mark.parametrize("field", [3, 27, 58])
def test_recovers_known_shift_rotation_and_pixel_size(field: int) -> None:
    """LQ = shift (7.3, -4.1), rotate 2.5 deg, crop, downscale by 1/1.5 (LQ pixels 1.5x coarser).

    Sign convention: align_pair reports the transform it *applies* to LQ (rotation about the LQ
    field centre, then shift), so undoing "shift t then rotate a" reads rotation -a, shift -t.
    """
    shift, angle, factor = (7.3, -4.1), 2.5, 1.5
    lq, hq = _load("lq", field), _load("hq", field)
    # The crop (450 px, centred) keeps reflected borders out and makes 450 / 1.5 = 300 exact;
    # both images keep the same centre, so the rotation centre is the same point.
    box = np.s_[:, 31:481, 31:481]
    lq_moved = _shift_then_rotate(lq, shift, angle)[box]
    lq_small = rescale(
        lq_moved, 1 / factor, anti_aliasing=True, channel_axis=0, preserve_range=True
    ).astype(np.float32)
    assert lq_small.shape == (3, 300, 300)

    al, lq_out, hq_out = align_pair(lq_small, hq[box], lq_pixel_um=0.15, hq_pixel_um=0.1)

    assert al.accepted, al.reason
    assert al.scale == pytest.approx(factor)
    assert al.rotation_deg == pytest.approx(-angle, abs=0.5)
    assert al.shift_yx[0] == pytest.approx(-shift[0], abs=0.5)
    assert al.shift_yx[1] == pytest.approx(-shift[1], abs=0.5)
    assert lq_out is not None and hq_out is not None
    assert lq_out.shape == hq_out.shape and lq_out.dtype == hq_out.dtype == np.float32
    y0, y1, x0, x1 = al.crop
    assert lq_out.shape == (3, y1 - y0, x1 - x0)
    # No padded border: the corners of the common field of view hold image content.
    assert min(y1 - y0, x1 - x0) > 400
    assert all(np.abs(lq_out[:, [0, -1]][:, :, [0, -1]]).sum(axis=0).ravel() > 0)
    assert min(al.ncc) > 0.5


# ----------------------------------------------------------------------------- real pairs
@needs_data
def test_registered_w2s_pairs_are_accepted_unchanged() -> None:
    """field_001-010 are registered (same camera): accepted, shift and rotation ~ 0."""
    for field in range(1, 11):
        lq, hq = _load("lq", field), _load("hq", field)
        al, lq_out, hq_out = align_pair(lq, hq, 0.1, 0.1)
        assert al.accepted, (field, al.reason)
        assert al.reason is None
        assert al.scale == 1.0
        assert abs(al.rotation_deg) < 0.25, (field, al.rotation_deg)
        assert max(abs(v) for v in al.shift_yx) < 0.4, (field, al.shift_yx)
        assert al.z_range_lq is None and al.z_range_hq is None
        assert min(al.ncc) >= DEFAULT_NCC_THRESHOLD
        assert lq_out is not None and hq_out is not None
        assert lq_out.shape == hq_out.shape and lq_out.shape[1] >= 500
        y0, y1, x0, x1 = al.crop
        np.testing.assert_array_equal(hq_out, hq[:, y0:y1, x0:x1].astype(np.float32))


@needs_data
def test_different_fields_are_rejected_with_the_score() -> None:
    lq, hq = _load("lq", 1), _load("hq", 2)
    al, lq_out, hq_out = align_pair(lq, hq, 0.1, 0.1)
    assert not al.accepted
    assert lq_out is not None and lq_out.shape == hq_out.shape  # kept for a person's review
    assert al.reason is not None
    assert "NCC" in al.reason and f"{min(al.ncc):.2f}" in al.reason
    assert len(al.ncc) == 3 and min(al.ncc) < 0.2


@needs_data
def test_lq_covering_part_of_hq_is_placed_and_cropped() -> None:
    """An LQ field inside the HQ field: found at its offset, outputs are exact crops."""
    lq, hq = _load("lq", 30), _load("hq", 30)
    al, lq_out, hq_out = align_pair(lq[:, 100:400, 150:450], hq, 0.1, 0.1)
    assert al.accepted, al.reason
    assert al.rotation_deg == 0.0 and al.shift_yx == (100.0, 150.0)
    assert al.crop == (100, 400, 150, 450)
    assert lq_out is not None and hq_out is not None
    np.testing.assert_array_equal(lq_out, lq[:, 100:400, 150:450].astype(np.float32))
    np.testing.assert_array_equal(hq_out, hq[:, 100:400, 150:450].astype(np.float32))


@needs_data
def test_one_unrelated_channel_rejects_the_pair() -> None:
    """The score is the minimum over channels: two matching channels do not carry a third."""
    lq, hq = _load("lq", 4).copy(), _load("hq", 4)
    lq[2] = _load("lq", 44)[2]
    al, lq_out, _ = align_pair(lq, hq, 0.1, 0.1)
    assert min(al.ncc[:2]) > 0.8 and al.ncc[2] < 0.2
    assert not al.accepted and lq_out is not None
    assert "channel 2" in (al.reason or "")


@needs_data
def test_alignment_is_json_serialisable() -> None:
    al, _, _ = align_pair(_load("lq", 5), _load("hq", 5), 0.1, 0.1)
    d = json.loads(json.dumps(al.to_dict()))
    assert set(d) == {
        "accepted",
        "reason",
        "scale",
        "rotation_deg",
        "shift_yx",
        "z_range_lq",
        "z_range_hq",
        "ncc",
        "crop",
    }
    assert d["accepted"] is True and len(d["crop"]) == 4 and len(d["ncc"]) == 3


# ----------------------------------------------------------------------------- z stacks
def _defocus_stack(img: np.ndarray, z_um: np.ndarray, focus_um: float) -> np.ndarray:
    """ZCYX stack: a Gaussian defocus growing 1.5 px per um away from focus."""
    img = img.astype(np.float32)
    return np.stack(
        [np.stack([ndimage.gaussian_filter(c, 1.5 * abs(z - focus_um)) for c in img]) for z in z_um]
    )


@pytest.fixture(scope="module")
def field_crop() -> tuple[np.ndarray, np.ndarray]:
    if not (_W2S / "lq" / "field_001.tif").is_file():
        pytest.skip(f"W2S pairs not found under {_W2S}")
    box = np.s_[:, 128:384, 128:384]
    return _load("lq", 9)[box], _load("hq", 9)[box]


def test_z_ranges_matched_equal_steps(field_crop: tuple[np.ndarray, np.ndarray]) -> None:
    """HQ planes at 0..5.5 um, LQ planes at 1.5..7.0 um (0.5 um steps): overlap 1.5..5.5 um."""
    lq, hq = field_crop
    hq_stack = _defocus_stack(hq, np.arange(12) * 0.5, focus_um=2.5)
    lq_moved = ndimage.shift(lq, (0, 3, -2), mode="nearest")
    lq_stack = _defocus_stack(lq_moved, 1.5 + np.arange(12) * 0.5, focus_um=2.5)
    al, lq_out, hq_out = align_pair(lq_stack, hq_stack, 0.1, 0.1, 0.5, 0.5)
    assert al.accepted, al.reason
    assert al.z_range_hq == (3, 12)
    assert al.z_range_lq == (0, 9)
    assert al.shift_yx == pytest.approx((-3, 2), abs=0.3)
    assert lq_out is not None and hq_out is not None
    assert lq_out.shape == hq_out.shape and lq_out.shape[:2] == (9, 3)
    np.testing.assert_array_equal(
        hq_out, hq_stack[3:12, :, al.crop[0] : al.crop[1], al.crop[2] : al.crop[3]]
    )


def test_z_ranges_matched_different_steps(field_crop: tuple[np.ndarray, np.ndarray]) -> None:
    """HQ 0.5 um steps over 0..5.5 um; LQ 1 um steps over 1..6 um, resampled onto 0.5 um."""
    lq, hq = field_crop
    hq_stack = _defocus_stack(hq, np.arange(12) * 0.5, focus_um=2.5)
    lq_stack = _defocus_stack(lq, 1.0 + np.arange(6) * 1.0, focus_um=2.5)
    al, lq_out, hq_out = align_pair(
        lq_stack, hq_stack, 0.1, 0.1, lq_z_step_um=1.0, hq_z_step_um=0.5
    )
    assert al.accepted, al.reason
    assert al.z_range_hq == (2, 12)  # 1.0..5.5 um
    assert al.z_range_lq == (0, 6)  # LQ planes at 1..6 um interpolated to 1.0..5.5 um
    assert lq_out is not None and hq_out is not None
    assert lq_out.shape == hq_out.shape and lq_out.shape[0] == 10


def test_single_lq_plane_finds_its_hq_plane(field_crop: tuple[np.ndarray, np.ndarray]) -> None:
    """A 2-D wide-field image against a confocal stack: the best plane, outputs CYX."""
    lq, hq = field_crop
    hq_stack = _defocus_stack(hq, np.arange(12) * 0.5, focus_um=2.5)
    lq_plane = _defocus_stack(lq, np.array([4.0]), focus_um=2.5)[0]  # 1.5 um out of focus
    al, lq_out, hq_out = align_pair(lq_plane, hq_stack, 0.1, 0.1)
    assert al.accepted, al.reason
    assert al.z_range_lq is None
    assert al.z_range_hq in ((2, 3), (8, 9))  # the defocus is symmetric: 1.0 or 4.0 um
    assert lq_out is not None and hq_out is not None
    assert lq_out.ndim == 3 and lq_out.shape == hq_out.shape


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("lq", "hq", "kwargs", "message"),
    [
        (np.zeros((3, 64, 64)), np.zeros((2, 64, 64)), {}, "channels"),
        (np.zeros((3, 1, 1)), np.zeros((3, 1, 1)), {}, "pixels"),
        (np.zeros((3, 64, 64)), np.zeros((3, 64, 1)), {}, "pixels"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {}, "CYX"),
        (np.zeros((3, 64, 64)), np.zeros((3, 64, 64)), {"lq_pixel_um": 0.0}, "lq_pixel_um"),
        (np.zeros((3, 64, 64)), np.zeros((3, 64, 64)), {"hq_pixel_um": -0.1}, "hq_pixel_um"),
        (
            np.zeros((3, 64, 64)),
            np.zeros((3, 64, 64)),
            {"hq_pixel_um": float("nan")},
            "hq_pixel_um",
        ),
        (np.zeros((3, 64, 64)), np.zeros((3, 64, 64)), {"lq_pixel_um": 0.01}, "pixel sizes"),
        (np.zeros((2, 3, 64, 64)), np.zeros((2, 3, 64, 64)), {"lq_z_step_um": 1.0}, "both"),
        (
            np.zeros((2, 3, 64, 64)),
            np.zeros((2, 3, 64, 64)),
            {"lq_z_step_um": 1.0, "hq_z_step_um": 0.0},
            "hq_z_step_um",
        ),
        (np.full((3, 64, 64), np.nan), np.zeros((3, 64, 64)), {}, "NaN"),
        (np.zeros((3, 64, 64)), np.zeros((3, 64, 64)), {"ncc_threshold": 2.0}, "ncc_threshold"),
    ],
)
def test_bad_input_raises(lq: np.ndarray, hq: np.ndarray, kwargs: dict, message: str) -> None:
    args = {"lq_pixel_um": 0.1, "hq_pixel_um": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        align_pair(lq, hq, **args)


def test_structureless_pair_is_rejected_not_crashed() -> None:
    """Blank images carry no alignment information: a rejection with a reason, no exception."""
    rng = np.random.default_rng(0)
    lq = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
    al, lq_out, _ = align_pair(lq, np.zeros((3, 64, 64), np.uint16), 0.1, 0.1)
    assert isinstance(al, Alignment) and not al.accepted and al.reason and lq_out is None
