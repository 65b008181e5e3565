"""Preview pictures people look at: channels as a colour composite, percentile-normalised."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

# Colours by emission order: the shortest wavelength blue, then green, red, magenta, ...
PALETTE = np.array(
    [
        (0.2, 0.4, 1.0),
        (0.1, 1.0, 0.2),
        (1.0, 0.2, 0.2),
        (1.0, 0.2, 1.0),
        (0.0, 1.0, 1.0),
        (1.0, 1.0, 0.0),
        (1.0, 1.0, 1.0),
    ],
    dtype=np.float32,
)


def normalise(plane: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    lo, hi = np.percentile(plane, (low, high))
    return np.clip((plane - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32)


def composite(image: np.ndarray, emission_nm: list[float] | None = None) -> np.ndarray:
    """CYX (or ZCYX, shown as a maximum projection) to an RGB float image in [0, 1]."""
    if image.ndim == 4:
        image = image.max(axis=0)
    channels = image.shape[0]
    if channels == 1:
        return np.repeat(normalise(image[0])[..., None], 3, axis=-1)
    order = np.argsort(emission_nm) if emission_nm else np.arange(channels)
    rgb = np.zeros((*image.shape[1:], 3), dtype=np.float32)
    for rank, c in enumerate(order):
        rgb += normalise(image[c])[..., None] * PALETTE[rank % len(PALETTE)]
    return np.clip(rgb, 0, 1)


def side_by_side_png(
    panels: list[np.ndarray], emission_nm: list[float] | None = None, max_width: int = 1600
) -> bytes:
    """Equal-sized CYX panels next to each other (e.g. LQ | HQ), as PNG bytes."""
    gap = np.ones((panels[0].shape[-2], 8, 3), dtype=np.float32)
    row = [composite(p, emission_nm) for p in panels]
    picture = np.concatenate(
        [x for pair in zip(row, [gap] * len(row), strict=True) for x in pair][:-1], axis=1
    )
    pil = PILImage.fromarray((picture * 255).round().astype(np.uint8))
    if pil.width > max_width:
        pil = pil.resize(
            (max_width, round(pil.height * max_width / pil.width)), PILImage.Resampling.LANCZOS
        )
    out = io.BytesIO()
    pil.save(out, format="PNG", optimize=True)
    return out.getvalue()
