"""Enhancing an image larger than memory, block by block, as a lazy dask array.

:meth:`EnhancementModel.predict` holds the whole image and its result. Here the image is any
array that can be sliced (a dask array over an OME-Zarr store, a numpy array) and the result is
a dask array whose blocks are computed when a writer asks for them, so memory is bounded by one
block, its halo and the network's activations, whatever the image size:

1. per plane, the normalisation's percentiles from a first pass over the image in blocks: for
   integer images a histogram summed over the blocks (exactly the percentiles the in-memory path
   computes), for float32 images a 2**20-bin histogram between the plane's minimum and maximum
   (percentiles to within one bin, about 1e-6 of the range);
2. per output block (``block`` pixels a side, a multiple of the network's ``multiple``), the
   block plus a halo of the receptive-field margin (rounded up to ``multiple``) is read,
   normalised, predicted as one tile by :func:`models.predict.predict_tiled` and its core kept.

Block origins are multiples of ``multiple``, so each region's pooling grid is the whole image's,
and every kept pixel sees its full receptive field: without the test-time ensemble the result
equals the in-memory prediction up to floating-point rounding. With the ensemble each block's
region is flipped and rotated on its own (a valid ensemble, not bit-equal to the in-memory one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .data import Normalization, percentiles_of_counts
from .predict import predict_image


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


FLOAT_BINS = 1 << 20
# The largest region (block plus halo, pixels a side) predicted by default: a region's network
# activations set the peak memory. With a 1568² region (the in-memory path's tile on a 4096²
# image) `pairscope enhance` on a 16384² OME-Zarr peaked at 2025 MiB with cpu-small, with a
# 1824² one at 2063 MiB (docs/benchmarks.md).
DEFAULT_REGION = 1568


def _read(source, index: tuple) -> np.ndarray:
    """``source[index]`` as numpy (a dask array is computed: only that region is read)."""
    part = source[index]
    return np.asarray(part.compute() if hasattr(part, "compute") else part)


def _starts(length: int, block: int) -> range:
    return range(0, length, block)


def plane_percentiles(norm: Normalization, plane, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(lo, hi)`` of one ``CYX`` plane read block by block: what
    :meth:`Normalization.params` gives for the whole plane (see the module's docstring)."""
    c, h, w = plane.shape
    qs = (norm.low, norm.high)
    regions = [
        (slice(None), slice(y, y + block), slice(x, x + block))
        for y in _starts(h, block)
        for x in _starts(w, block)
    ]
    dtype = np.dtype(plane.dtype)
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        offset = int(np.iinfo(dtype).min)
        counts = np.zeros((c, 1 << (8 * dtype.itemsize)), np.int64)
        for index in regions:
            part = _read(plane, index)
            for ch in range(c):
                values = part[ch].ravel().astype(np.intp, copy=False) - offset
                counts[ch] += np.bincount(values, minlength=counts.shape[1])
        lohi = [percentiles_of_counts(n, offset, qs) for n in counts]
    else:
        lows = np.full(c, np.inf)
        highs = np.full(c, -np.inf)
        for index in regions:
            part = _read(plane, index).reshape(c, -1)
            lows = np.minimum(lows, part.min(axis=1))
            highs = np.maximum(highs, part.max(axis=1))
        hist = np.zeros((c, FLOAT_BINS), np.int64)
        for index in regions:
            part = _read(plane, index).reshape(c, -1)
            for ch in range(c):
                hist[ch] += np.histogram(part[ch], FLOAT_BINS, (lows[ch], highs[ch]))[0]
        lohi = [_float_percentiles(hist[ch], lows[ch], highs[ch], qs) for ch in range(c)]
    lo, hi = np.asarray(lohi, np.float64).T.astype(np.float32)
    return lo, hi


def _float_percentiles(hist: np.ndarray, low: float, high: float, qs) -> list[float]:
    """Percentiles from a histogram between ``low`` and ``high``: the order statistics
    :func:`percentiles_of_counts` interpolates, each at its bin's centre (within half a bin)."""
    if high <= low:
        return [float(low)] * len(qs)
    width = (high - low) / len(hist)
    bins = percentiles_of_counts(hist, 0, qs)
    return [float(low + width * (b + 0.5)) for b in bins]


@dataclass(frozen=True)
class LazyEnhancement:
    """The enhanced image as a dask array (same axes and shape as the input), and each plane's
    normalisation percentiles (the display window a writer may record)."""

    data: object  # dask.array.Array
    lo: np.ndarray  # (planes, C)
    hi: np.ndarray
    n_blocks: int


def enhance_lazily(
    model,
    source,
    axes: str,
    *,
    block: int | None = None,
    ensemble: bool = False,
    out_dtype: str = "float32",
    progress: Callable[[int], None] | None = None,
) -> LazyEnhancement:
    """``source`` (``CYX`` or ``ZCYX``, sliceable: numpy, dask, zarr) enhanced by ``model``
    block by block; nothing is predicted until the result's blocks are computed.

    ``block``: the side of an output block, rounded down to a multiple of the network's
    ``multiple`` (default: :data:`DEFAULT_REGION`, or the config's ``tile_size`` if smaller, less
    twice the halo, so memory stays bounded; 1280 for ``cpu-small``).
    ``progress(1)`` is called after every block.
    """
    import dask.array as da

    from .networks import receptive_field_margin

    if axes not in ("CYX", "ZCYX") or len(axes) != len(source.shape):
        raise ValueError(f"axes {axes!r} do not fit an image of shape {source.shape}")
    if out_dtype not in ("float32", "uint16"):
        raise ValueError(f"out_dtype must be 'float32' or 'uint16', got {out_dtype!r}")
    c = model.config
    trainer = model._ensure_built()
    n_c = source.shape[axes.index("C")]
    if n_c != model.n_channels:
        raise ValueError(
            f"the model takes {model.n_channels} channel(s); the image has {n_c} "
            f"(shape {source.shape}, axes {axes})"
        )
    margin = receptive_field_margin(c)
    halo = _round_up(margin, c.multiple)
    if block is None:  # a region (block + halo) no larger than memory allows
        block = min(c.tile_size, DEFAULT_REGION) - 2 * halo
    block = max(c.multiple, (int(block) // c.multiple) * c.multiple)
    planes = source if axes == "ZCYX" else source[None]
    n_z, _, h, w = planes.shape
    norm = model.normalization
    lohi = [plane_percentiles(norm, planes[z], block) for z in range(n_z)]
    lo = np.stack([p[0] for p in lohi])
    hi = np.stack([p[1] for p in lohi])
    tile = _round_up(min(block + 2 * halo, max(h, w) + 2 * halo), c.multiple)
    kw = dict(
        multiple=c.multiple,
        margin=margin,
        tile_size=max(tile, c.tile_size),
        batch_size=c.tile_batch,
        ensemble=ensemble,
    )
    dtype = np.dtype(out_dtype)

    def predict_block(block_info=None) -> np.ndarray:
        (z0, _), _, (y0, y1), (x0, x1) = block_info[None]["array-location"]
        ry0, ry1 = max(0, y0 - halo), min(h, y1 + halo)
        rx0, rx1 = max(0, x0 - halo), min(w, x1 + halo)
        region = _read(planes, (z0, slice(None), slice(ry0, ry1), slice(rx0, rx1)))
        y = predict_image(trainer.predict_fn, norm.apply_hwc(region, lo[z0], hi[z0]), **kw)
        core = np.ascontiguousarray(y[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0])
        out = np.empty((1, n_c, y1 - y0, x1 - x0), np.float32)
        norm.invert_hwc_into(core, lo[z0], hi[z0], out[0])
        if progress:
            progress(1)
        if dtype == np.uint16:
            return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
        return out

    def sizes(length: int) -> tuple[int, ...]:
        return tuple(min(block, length - s) for s in _starts(length, block))

    chunks = ((1,) * n_z, (n_c,), sizes(h), sizes(w))
    data = da.map_blocks(
        predict_block, dtype=dtype, chunks=chunks, meta=np.empty((0, 0, 0, 0), dtype)
    )
    if axes == "CYX":
        data = data[0]
    n_blocks = n_z * math.ceil(h / block) * math.ceil(w / block)
    return LazyEnhancement(data, lo, hi, n_blocks)
