"""Tiled prediction with blending, and the test-time ensemble – apart from the network.

The network is any callable ``fn(batch) -> batch`` on float32 ``NHWC`` numpy arrays whose
spatial size is a multiple of ``multiple`` (``2**depth`` for the U-Net).

Tiling (:func:`predict_tiled`):

* the image is padded (reflect) to a multiple of ``multiple``; the whole-image prediction is
  defined on that padded image, and tiles are cut from it;
* tile origins are multiples of ``multiple``, so the pooling grids of every tile coincide with the
  whole image's;
* all tiles have the same shape (batched; one compiled graph), at most ``tile_size`` per side
  (raised to twice the overlap if smaller),
  chosen as the smallest equal split of the image with the requested overlap – so a 2048² image
  with ``tile_size = 1280`` is cut into 2 × 2 tiles, not 3 × 3 (with ``tile_size = 1024`` two
  tiles cannot cover 2048 with the overlap);
* neighbouring tiles overlap by at least ``overlap`` pixels (default ``2 · margin + multiple``
  where ``margin`` is the network's receptive-field margin). Each tile's blending weight is 0
  within ``margin`` of an edge it shares with a neighbour and ramps linearly across the rest of
  the overlap; the weights of all tiles sum to one at every pixel. Only pixels that see their
  full receptive field contribute, so the result equals the whole-image prediction up to
  rounding: no seams. With a smaller ``overlap`` the weights ramp over the whole overlap
  (smooth, approximate blending). Presets choose ``tile_size`` so that common image sizes need
  few tiles (``cpu-small``: a 2048² image is one tile);
* memory is bounded by the tile size and ``batch_size``, whatever the image size (plus the
  output itself).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]


def _round_up(v: int, m: int) -> int:
    return int(math.ceil(v / m) * m)


def default_overlap(margin: int, multiple: int) -> int:
    """The smallest overlap with exact blending: ``2 · margin + multiple``, rounded up to a
    multiple of ``multiple``."""
    return _round_up(2 * margin + multiple, multiple)


def plan_axis(length: int, tile_size: int, overlap: int, multiple: int) -> tuple[int, list[int]]:
    """``(tile_length, starts)`` along one axis of (padded) ``length``.

    ``length``, ``tile_size`` and the result are multiples of ``multiple``; consecutive tiles
    overlap by at least ``overlap``; the last tile ends at ``length``.
    """
    if length <= tile_size:
        return length, [0]
    overlap = min(_round_up(overlap, multiple), tile_size - multiple)
    n = int(math.ceil((length - overlap) / (tile_size - overlap)))
    t = min(tile_size, _round_up(int(math.ceil((length + (n - 1) * overlap) / n)), multiple))
    step = max(multiple, ((t - overlap) // multiple) * multiple)
    starts = list(range(0, length - t, step)) + [length - t]
    return t, starts


def _axis_weights(t: int, start: int, length: int, overlap: int, margin: int) -> np.ndarray:
    """One tile's blending weight along one axis (before normalisation)."""
    if overlap >= 2 * margin + 2:
        m, b = margin, overlap - 2 * margin
    else:
        m = overlap // 4
        b = max(1, overlap - 2 * m)
    d = np.arange(t, dtype=np.float32)
    ramp = np.clip((d - m + 1) / (b + 1), 0.0, 1.0)
    w = np.ones(t, np.float32)
    if start > 0:
        w = np.minimum(w, ramp)
    if start + t < length:
        w = np.minimum(w, ramp[::-1])
    return w


def axis_weights(
    t: int, starts: list[int], length: int, overlap: int, margin: int
) -> list[np.ndarray]:
    """Blending weights of the tiles along one axis, normalised to sum to one at each position.

    Normalising each axis makes the products ``wy · wx`` of a 2-D tiling sum to one as well.
    """
    ws = [_axis_weights(t, s, length, overlap, margin) for s in starts]
    total = np.zeros(length, np.float32)
    for s, w in zip(starts, ws, strict=True):
        total[s : s + t] += w
    return [w / total[s : s + t] for s, w in zip(starts, ws, strict=True)]


def _pad_to(image: np.ndarray, multiple: int, min_size: int) -> tuple[np.ndarray, int, int]:
    h, w = image.shape[:2]
    ph = max(_round_up(h, multiple), min_size) - h
    pw = max(_round_up(w, multiple), min_size) - w
    if ph == 0 and pw == 0:
        return image, h, w
    mode = "reflect" if (ph < h and pw < w) else "symmetric"
    if mode == "symmetric" and (ph > h or pw > w):
        mode = "edge"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode), h, w


def count_tiles(
    shape_yx: tuple[int, int],
    multiple: int,
    margin: int,
    tile_size: int,
    overlap: int | None = None,
) -> int:
    """How many tiles :func:`predict_tiled` cuts an image of ``shape_yx`` into."""
    ov = default_overlap(margin, multiple) if overlap is None else overlap
    ov = _round_up(max(ov, 0), multiple)
    tile_size = max(2 * ov, multiple, (int(tile_size) // multiple) * multiple)
    h, w = (max(_round_up(s, multiple), multiple) for s in shape_yx)
    return len(plan_axis(h, tile_size, ov, multiple)[1]) * len(
        plan_axis(w, tile_size, ov, multiple)[1]
    )


def predict_tiled(
    fn: PredictFn,
    image: np.ndarray,
    *,
    multiple: int,
    margin: int,
    tile_size: int = 1024,
    overlap: int | None = None,
    batch_size: int = 1,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Predict a ``YXC`` float32 image in overlapping tiles; returns ``YXC`` float32.

    ``progress(n)`` is called with the number of tiles finished after each batch.
    """
    if image.ndim != 3:
        raise ValueError(f"expected a YXC image, got shape {image.shape}")
    ov = default_overlap(margin, multiple) if overlap is None else int(overlap)
    ov = _round_up(max(ov, 0), multiple)
    # a tile must be at least twice the overlap, or its useful centre vanishes
    tile_size = max(2 * ov, multiple, (int(tile_size) // multiple) * multiple)
    padded, h, w = _pad_to(np.asarray(image, np.float32), multiple, multiple)
    H, W, _ = padded.shape
    th, ys = plan_axis(H, tile_size, ov, multiple)
    tw, xs = plan_axis(W, tile_size, ov, multiple)
    if len(ys) == 1 and len(xs) == 1:
        out = np.asarray(fn(padded[None]), np.float32)[0]
        if progress:
            progress(1)
        return out[:h, :w]
    wy = axis_weights(th, ys, H, ov, margin)
    wx = axis_weights(tw, xs, W, ov, margin)
    acc = None
    jobs = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    for k in range(0, len(jobs), batch_size):
        chunk = jobs[k : k + batch_size]
        batch = np.stack([padded[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] for iy, ix in chunk])
        pred = np.asarray(fn(batch), np.float32)
        if not pred.flags.writeable:  # weighted in place below
            pred = pred.copy()
        if acc is None:
            acc = np.zeros((H, W, pred.shape[-1]), np.float32)
        for (iy, ix), p in zip(chunk, pred, strict=True):
            p *= (wy[iy][:, None] * wx[ix][None, :])[..., None]
            acc[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] += p
        if progress:
            progress(len(chunk))
    return acc[:h, :w]


DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]


def _fwd(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    if flip:
        a = a[:, ::-1]
    return np.ascontiguousarray(np.rot90(a, k, axes=(0, 1)))


def _inv(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, -k, axes=(0, 1))
    if flip:
        a = a[:, ::-1]
    return a


def predict_image(
    fn: PredictFn,
    image: np.ndarray,
    *,
    multiple: int,
    margin: int,
    tile_size: int = 1024,
    overlap: int | None = None,
    batch_size: int = 1,
    ensemble: bool = False,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """:func:`predict_tiled`, optionally averaged over the 8 flips and 90° rotations
    (test-time ensemble; each transform is predicted and transformed back)."""
    kw = dict(
        multiple=multiple,
        margin=margin,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        progress=progress,
    )
    if not ensemble:
        return predict_tiled(fn, image, **kw)
    acc = None
    for k, flip in DIHEDRAL:
        p = _inv(predict_tiled(fn, _fwd(image, k, flip), **kw), k, flip)
        acc = p.astype(np.float32) if acc is None else acc + p
    return acc / len(DIHEDRAL)
