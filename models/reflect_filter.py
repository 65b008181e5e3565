"""Separable symmetric filters with scipy's ``mode="reflect"`` edges, by the discrete cosine
transform: one transform in, one out per filter, however wide the kernel.

Why: the trust checks smooth every 512² channel several times (Gaussians of σ 2 px, Immerkær's
high-pass, box averages); ``scipy.ndimage`` spends ≈ 1.5–3 ms per 1-D pass on one core, which
made the checks cost more than the enhancement itself. scipy's ``reflect`` edge is the
half-sample symmetric extension (``d c b a | a b c d | d c b a``), which the DCT-II
diagonalises for a symmetric kernel (Martucci's symmetric convolution): with ``X = DCT-II(x)``
along an axis of length ``n``, the filtered signal is ``IDCT-II(H·X)`` where
``H_m = k_0 + 2·Σ_j k_j·cos(π·m·j / n)``. The result is scipy's to float32 rounding (≈ 1e-7
of the signal's scale) — the same kernels (:func:`gaussian_kernel` is scipy's truncated one),
not an approximation of them. Several filters of one image share its forward transform.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import fft as scipy_fft

#: A filter: 1-D symmetric kernels (odd lengths) applied one after the other along both axes.
Filter = tuple[tuple[float, ...], ...]
IMMERKAER: tuple[float, ...] = (1.0, -2.0, 1.0)
#: Threads per transform: one — a 512² plane takes < 1 ms, and in a worker TensorFlow's thread
#: pool has the other cores (threads that wait for a busy core cost more than they save).
WORKERS = 1


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> tuple[float, ...]:
    """scipy's 1-D Gaussian (``ndimage.gaussian_filter``'s weights: radius ``int(truncate·σ +
    0.5)``, normalised to sum 1); ``(1.0,)`` for σ ≤ 0 or radius 0."""
    radius = int(truncate * sigma + 0.5) if sigma > 0 else 0
    if radius == 0:
        return (1.0,)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x * x)
    return tuple(float(v) for v in phi / phi.sum())


def box_kernel(size: int) -> tuple[float, ...]:
    """``ndimage.uniform_filter``'s weights for an odd ``size``."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"box size must be odd and ≥ 1, got {size}")
    return (1.0 / size,) * size


@functools.lru_cache(maxsize=64)
def _transfer(n: int, kernels: Filter) -> np.ndarray:
    """The filter's DCT-II multipliers along an axis of length ``n`` (float64)."""
    m = np.arange(n, dtype=np.float64)
    out = np.ones(n)
    for k in kernels:
        if len(k) % 2 == 0 or any(not math.isclose(a, b) for a, b in zip(k, k[::-1], strict=True)):
            raise ValueError("kernels must be symmetric with an odd length")
        r = len(k) // 2
        h = np.full(n, k[r])
        for j in range(1, r + 1):
            h += 2.0 * k[r + j] * np.cos(np.pi * m * j / n)
        out *= h
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=32)
def _transfer_2d(shape: tuple[int, int], f: Filter) -> np.ndarray:
    """The 2-D multipliers (float32), made once per shape and filter."""
    out = np.outer(_transfer(shape[0], f), _transfer(shape[1], f)).astype(np.float32)
    out.flags.writeable = False
    return out


def forward(planes: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """DCT-II of ``(…, Y, X)`` planes over the last two axes (float32), for :func:`apply`.
    ``overwrite``: the planes are scratch (float32, contiguous) and may hold the result."""
    return scipy_fft.dctn(
        np.asarray(planes, np.float32),
        type=2,
        axes=(-2, -1),
        workers=WORKERS,
        overwrite_x=overwrite,
    )


def apply(coefficients: np.ndarray, f: Filter) -> np.ndarray:
    """The planes of ``coefficients`` (:func:`forward`) filtered by ``f`` (float32)."""
    h = _transfer_2d(tuple(coefficients.shape[-2:]), f)
    return scipy_fft.idctn(
        coefficients * h, type=2, axes=(-2, -1), workers=WORKERS, overwrite_x=True
    )


def filtered(
    planes: np.ndarray, filters: Sequence[Filter], overwrite: bool = False
) -> list[np.ndarray]:
    """``(…, Y, X)`` float planes filtered by each of ``filters``, with reflecting edges (one
    forward transform shared by all; ``overwrite`` as for :func:`forward`)."""
    coefficients = forward(planes, overwrite)
    return [apply(coefficients, f) for f in filters]
