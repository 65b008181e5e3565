"""An input's per-channel statistics and noise model, computed once for every trust check.

The out-of-distribution features (:mod:`models.ood`) and the consistency check
(:mod:`models.consistency`) both normalise each LQ channel by its 0.1 / 99.9 percentiles, take
its Immerkær high-pass, smooth it with a Gaussian of σ 2 px and fit the Poisson–Gaussian
variance map (:mod:`models.noise`) — the same arrays. :func:`input_channels` makes them once
per plane, so an enhancement's checks pay for them once; each check still computes them itself
when called alone. The arrays are float32 and both filters come from one cosine transform of
the channel (:mod:`models.reflect_filter`: scipy's kernels and reflecting edges, to float32
rounding), which costs a third of scipy's float64 filter passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import reflect_filter
from .metrics import GT_HIGH, GT_LOW
from .noise import variance_model

#: The Gaussian σ (px) of the smoothed signal: the OOD noise slope and the consistency z-map's
#: noise model use the same one.
SMOOTHING_PX = 2.0
SMOOTHING_FILTER = (reflect_filter.gaussian_kernel(SMOOTHING_PX),)
IMMERKAER_FILTER = (reflect_filter.IMMERKAER,)


@dataclass(frozen=True)
class Values:
    """One channel's percentiles and moments. For 8- and 16-bit images they come from the
    histogram (exactly what ``np.percentile``'s linear interpolation and the moments of the
    pixels give, without sorting 512² values several times)."""

    percentile: Callable[[Sequence[float]], np.ndarray]
    mean: float
    std: float
    skew: float
    zero_fraction: float
    max_value: float
    fraction_at_least: Callable[[float], float]


def channel_values(ch: np.ndarray) -> Values:
    """:class:`Values` of one 2-D channel (any dtype)."""
    if ch.dtype in (np.uint8, np.uint16, np.bool_):
        counts = np.bincount(ch.ravel()).astype(np.float64)
        levels = np.arange(counts.size, dtype=np.float64)
        n = float(ch.size)
        cum = np.cumsum(counts)
        # einsum, not a BLAS dot: a 16-bit histogram has 65536 bins, and BLAS's threads spin
        # against TensorFlow's in a worker (models.noise.variance_model)
        mean = float(np.einsum("i,i->", counts, levels)) / n
        d = levels - mean
        var = float(np.einsum("i,i,i->", counts, d, d)) / n
        m3 = float(np.einsum("i,i,i,i->", counts, d, d, d)) / n

        def percentile(qs: Sequence[float]) -> np.ndarray:
            pos = np.asarray(qs, dtype=np.float64) / 100.0 * (n - 1)
            below = np.floor(pos)
            lo = np.searchsorted(cum, below, side="right")
            hi = np.searchsorted(cum, np.minimum(below + 1, n - 1), side="right")
            return lo + (pos - below) * (hi - lo)

        def at_least(v: float) -> float:
            return float(counts[int(math.ceil(v)) :].sum()) / n if v < counts.size else 0.0

        sd = math.sqrt(var)
        return Values(
            percentile=percentile,
            mean=mean,
            std=sd,
            skew=m3 / sd**3 if sd > 0 else 0.0,
            zero_fraction=float(counts[0]) / n,
            max_value=float(counts.size - 1),
            fraction_at_least=at_least,
        )
    x = ch.astype(np.float64)
    mean, sd = float(x.mean()), float(x.std())
    return Values(
        percentile=lambda qs: np.percentile(x, qs),
        mean=mean,
        std=sd,
        skew=float(np.mean((x - mean) ** 3)) / sd**3 if sd > 0 else 0.0,
        zero_fraction=float(np.mean(x <= 0)),
        max_value=float(x.max()),
        fraction_at_least=lambda v: float(np.mean(x >= v)),
    )


@dataclass(frozen=True)
class InputChannel:
    """One input channel, percentile-normalised, with what the checks derive from it.

    ``x = (channel − p0.1) / (p99.9 − p0.1)`` (float32; :func:`models.metrics.normalize_percentile`
    gives it in float64); ``highpass``: its
    :func:`~models.noise.immerkaer_highpass`; ``mu``: ``x`` smoothed with a Gaussian of
    :data:`SMOOTHING_PX`; ``var``: the Poisson–Gaussian noise variance per pixel
    (:func:`~models.noise.noise_variance_map` of ``x``), ``max(α·mu + β, floor)`` with
    ``var_model = (α, β, floor)``."""

    values: Values
    lo: float
    hi: float
    x: np.ndarray
    highpass: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    var_model: tuple[float, float, float]
    smoothing_px: float = SMOOTHING_PX


def input_channel(ch: np.ndarray) -> InputChannel:
    """:class:`InputChannel` of one 2-D channel."""
    v = channel_values(ch)
    lo, hi = (float(p) for p in v.percentile((GT_LOW, GT_HIGH)))
    x = (ch.astype(np.float32) - np.float32(lo)) * np.float32(1.0 / max(hi - lo, 1e-12))
    mu, highpass = reflect_filter.filtered(x, [SMOOTHING_FILTER, IMMERKAER_FILTER])
    alpha, beta, floor = model = variance_model(mu, highpass)
    var = np.maximum(np.float32(alpha) * mu + np.float32(beta), np.float32(floor))
    return InputChannel(v, lo, hi, x, highpass, mu, var, model)


def input_channels(image: np.ndarray) -> list[InputChannel]:
    """:class:`InputChannel` of every channel of a ``(C)YX`` image."""
    arr = np.asarray(image)
    return [input_channel(ch) for ch in (arr[None] if arr.ndim == 2 else arr)]
