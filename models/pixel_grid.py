"""Pixel size is part of a model: a version learned LQ images of one pixel size, resampled onto
the aligned (HQ) grid, and it sees structures at the sizes they have on that grid. An input of
another pixel size is resampled onto the grid the same way, within a stated factor, and
refused beyond it; the output is on the grid and labelled with its size.

The factor, :data:`RESAMPLE_RANGE`, compares the input's pixel with the LQ pixel the model
learned from: one camera binning step (2×) either way. Finer pixels are averaged down
(anti-aliased), which keeps everything the model used and only lowers the noise it was trained
on. Coarser pixels are interpolated up, which cannot restore detail: wide-field images sampled
near Nyquist for their optics hold no finer structure, and past 2× coarser the input is
undersampled against the images the model learned, so its output would be invented detail.
Beyond 2× either way the input most likely came through another objective, whose blur the
model never saw. The service refuses those inputs rather than guess.

:func:`plan_pixel_size` is the decision (no NumPy; the API calls it from an upload's
ImageInfo); :func:`to_model_grid` does the resampling (in the worker).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RESAMPLE_RANGE = (0.5, 2.0)  # input pixel ÷ the model's LQ pixel, both ends included
SAME_SIZE = 0.01  # a pixel within 1 % of the grid's is used as it is
MIN_OUTPUT_SIDE = 16  # pixels per side once on the grid (models.image_io.MIN_SIZE)


class PixelSizeRefused(ValueError):
    """The input's pixel is too far from the model's for resampling to be trusted."""


@dataclass(frozen=True)
class PixelSizePlan:
    """What is done with one input: its pixel (as read or assumed), the model's LQ pixel and
    grid, whether it is resampled, and the size its output is labelled with."""

    input_um: float
    model_lq_um: float  # the LQ microscope's pixel the version learned from
    model_um: float  # the aligned (HQ) grid the model runs on and outputs
    action: str  # "as-is" | "resampled" | "assumed" (no pixel size in the input)
    resampled: bool
    output_um: float
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_pixel_size(
    input_um: float | None,
    *,
    assumed_um: float,
    model_lq_um: float,
    model_um: float,
    shape_yx: tuple[int, int] | None = None,
    name: str = "the input",
) -> PixelSizePlan:
    """Decide how an input of ``input_um`` (None: unknown, taken as ``assumed_um``, the LQ
    microscope's) meets a model trained on ``model_lq_um`` pixels on a ``model_um`` grid.
    Raises :class:`PixelSizeRefused` naming both sizes when it is outside
    :data:`RESAMPLE_RANGE`, or when it would be smaller than :data:`MIN_OUTPUT_SIDE` on the
    grid."""
    pixel = input_um if input_um else assumed_um
    ratio = pixel / model_lq_um
    low, high = RESAMPLE_RANGE
    if not low <= ratio <= high:
        raise PixelSizeRefused(
            f"{name} has {pixel:.4g} µm pixels; the model was trained on {model_lq_um:.4g} µm "
            f"LQ pixels and resamples inputs from {low * model_lq_um:.4g} to "
            f"{high * model_lq_um:.4g} µm ({low:g}–{high:g}×), this one is {ratio:.3g}×"
        )
    resampled = abs(pixel / model_um - 1) > SAME_SIZE
    if shape_yx is not None and resampled:
        out = grid_shape(shape_yx, pixel, model_um)
        if min(out) < MIN_OUTPUT_SIDE:
            raise PixelSizeRefused(
                f"{name} is {shape_yx[0]}×{shape_yx[1]} pixels of {pixel:.4g} µm, only "
                f"{out[0]}×{out[1]} on the model's {model_um:.4g} µm grid (at least "
                f"{MIN_OUTPUT_SIDE} per side)"
            )
    warning = None
    if not input_um:
        onto = f", resampled onto the model's {model_um:.4g} µm grid" if resampled else ""
        warning = f"{name} has no pixel size; assumed the LQ microscope's {assumed_um:.4g} µm{onto}"
    return PixelSizePlan(
        input_um=pixel,
        model_lq_um=model_lq_um,
        model_um=model_um,
        action="assumed" if not input_um else ("resampled" if resampled else "as-is"),
        resampled=resampled,
        output_um=model_um if resampled else pixel,
        warning=warning,
    )


def grid_shape(shape_yx: tuple[int, int], input_um: float, grid_um: float) -> tuple[int, int]:
    """The YX size of an image of ``input_um`` pixels on a ``grid_um`` grid (as rescale)."""
    scale = input_um / grid_um
    return (round(shape_yx[0] * scale), round(shape_yx[1] * scale))


def to_model_grid(image: np.ndarray, input_um: float, grid_um: float) -> np.ndarray:
    """``image`` (…YX, e.g. CYX or ZCYX) resampled in Y and X onto a ``grid_um`` grid, edge
    aligned as the alignment of the training pairs (skimage's ``rescale``, linear, anti-aliased
    when shrinking); float32, values in the input's units."""
    from skimage.transform import rescale

    scale = input_um / grid_um
    planes = np.asarray(image, np.float32).reshape(-1, *image.shape[-2:])
    out = [
        rescale(p, scale, order=1, mode="reflect", anti_aliasing=scale < 1, preserve_range=True)
        for p in planes
    ]
    stacked = np.stack(out).astype(np.float32)
    return stacked.reshape(*image.shape[:-2], *stacked.shape[-2:])
