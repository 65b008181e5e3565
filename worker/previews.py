"""Preview pictures people look at: images side by side, each channel percentile-normalised,
channels as a colour composite in the science core's colours (models.figures)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from models.figures import channel_colors, composite


def normalise(plane: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    lo, hi = np.percentile(plane, (low, high))
    return np.clip((plane - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32)


def shrink(image: np.ndarray, longest: int) -> np.ndarray:
    """Block-average CYX down by a whole factor so the longer side is at most `longest` pixels:
    a preview of a 2048² image need not composite and compress 4 million pixels."""
    factor = max(1, -(-max(image.shape[-2:]) // longest))
    if factor == 1:
        return image
    c, h, w = image.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = image[:, :h, :w].reshape(c, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float32)


def rgb(
    image: np.ndarray, emission_nm: list[float] | None = None, longest: int = 800
) -> np.ndarray:
    """CYX (or ZCYX, shown as a maximum projection) to an RGB float image in [0, 1]."""
    if image.ndim == 4:
        image = image.max(axis=0)
    image = shrink(np.asarray(image, dtype=np.float32), longest)
    normed = np.stack([normalise(channel) for channel in image])
    return composite(normed, channel_colors(image.shape[0], emission_nm))


def side_by_side_png(
    panels: list[np.ndarray], emission_nm: list[float] | None = None, max_width: int = 1600
) -> bytes:
    """Equal-sized panels next to each other (e.g. LQ | HQ, input | output), as PNG bytes."""
    longest = max(64, max_width // len(panels))
    pieces: list[np.ndarray] = []
    for panel in panels:
        picture = rgb(panel, emission_nm, longest)
        pieces += [picture, np.ones((picture.shape[0], 8, 3))]
    picture = np.concatenate(pieces[:-1], axis=1)
    pil = PILImage.fromarray((picture * 255).round().astype(np.uint8))
    if pil.width > max_width:
        pil = pil.resize(
            (max_width, round(pil.height * max_width / pil.width)), PILImage.Resampling.LANCZOS
        )
    out = io.BytesIO()
    pil.save(out, format="PNG")
    return out.getvalue()
