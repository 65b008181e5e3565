"""Noise level of one image channel, without a noise-free reference (numpy / scipy only).

Immerkær's estimator ("Fast noise variance estimation", CVIU 1996): the mask
``[[1, −2, 1], [−2, 4, −2], [1, −2, 1]]`` is the difference of two Laplacians, so it cancels
locally smooth (up to quadratic) structure and leaves mostly the pixel-to-pixel noise; for white
Gaussian noise of σ its output has standard deviation ``6σ``, and the mean absolute value
``6σ·√(2/π)`` gives σ. The mean (not the median) is used because camera images often have many
clipped, exactly-zero background pixels, where a median would see no noise at all. Used by the
consistency check (noise-corrected RSP) and the out-of-distribution features; a stand-in for
``skimage.restoration.estimate_sigma``, which needs PyWavelets.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: The mask is separable, ``[1, −2, 1] ⊗ [1, −2, 1]``: two 1-D passes cost a third of the 3 × 3 one.
_MASK_1D = np.array([1.0, -2.0, 1.0])


def immerkaer_highpass(x: np.ndarray) -> np.ndarray:
    """Immerkær's mask applied to a 2-D float channel (reflecting edges)."""
    h = ndimage.convolve1d(x, _MASK_1D, axis=0, mode="reflect")
    return ndimage.convolve1d(h, _MASK_1D, axis=1, mode="reflect")


def _check_channel(x: np.ndarray) -> None:
    if x.ndim != 2 or min(x.shape) < 3:
        raise ValueError(f"expected a 2-D channel of at least 3 × 3 pixels, got {x.shape}")


def sigma_of_highpass(highpass: np.ndarray) -> float:
    """σ from a channel's :func:`immerkaer_highpass` (the border rows and columns left out)."""
    return float(np.mean(np.abs(highpass[1:-1, 1:-1])) * math.sqrt(math.pi / 2.0) / 6.0)


def noise_sigma(channel: np.ndarray) -> float:
    """σ of the (assumed white) noise of a 2-D channel, in the channel's intensity units."""
    x = np.asarray(channel, dtype=np.float64)
    _check_channel(x)
    return sigma_of_highpass(immerkaer_highpass(x))


def noise_variance_map(channel: np.ndarray, smoothing_px: float = 2.0) -> np.ndarray:
    """Per-pixel noise variance of a camera channel under a Poisson–Gaussian model.

    Photon noise makes the variance grow with the signal, ``var = α·μ + β``; a single global σ
    under-states it on bright structure and over-states it on the background. ``μ`` is the
    channel smoothed over ``smoothing_px``; ``α, β`` are fitted by least squares to the squared
    Immerkær high-pass (whose expectation is ``36·var`` for white noise). Floors at 1e-12.
    """
    x = np.asarray(channel, dtype=np.float64)
    mu = ndimage.gaussian_filter(x, smoothing_px, mode="reflect")
    return variance_from(mu, immerkaer_highpass(x))


def variance_from(mu: np.ndarray, highpass: np.ndarray) -> np.ndarray:
    """:func:`noise_variance_map` from a channel's smoothed signal and Immerkær high-pass, for
    callers that need those too (computed once)."""
    alpha, beta, floor = variance_model(mu, highpass)
    return np.maximum(alpha * mu + beta, floor)


def variance_model(mu: np.ndarray, highpass: np.ndarray) -> tuple[float, float, float]:
    """``(α, β, floor)`` of the variance map ``max(α·μ + β, floor)``. The least-squares fit of
    ``α·μ + β`` is the closed form of its 2 × 2 normal equations (the minimum-norm solution for
    a constant ``μ``, as ``lstsq`` gives)."""
    n = mu.size
    hp = highpass.ravel()
    hp2 = hp * hp
    m_mu = float(mu.sum(dtype=np.float64)) / n
    m_hp = float(hp2.sum(dtype=np.float64)) / (36.0 * n)
    muc = mu.ravel() - mu.dtype.type(m_mu)
    # sums of products as pairwise sums in float64 (float32 maps keep ~1e-7 of the float64
    # result); not BLAS, whose threads spin against TensorFlow's in a worker process (a dot
    # product then costs 10 ms instead of 0.1)
    var_mu = float(np.sum(muc * muc, dtype=np.float64)) / n
    if var_mu > 1e-24 * max(m_mu * m_mu, 1e-300):
        # mean((μ − m_μ)·(hp²/36 − m_hp)) = mean((μ − m_μ)·hp²)/36, as Σ(μ − m_μ) = 0
        alpha = float(np.sum(muc * hp2, dtype=np.float64)) / (36.0 * n) / var_mu
        beta = m_hp - alpha * m_mu
    else:  # a constant μ = c: the minimum-norm (α, β) with α·c + β = mean(hp²)
        alpha = m_mu * m_hp / (m_mu * m_mu + 1.0)
        beta = m_hp / (m_mu * m_mu + 1.0)
    return alpha, beta, max(0.25 * m_hp, 1e-12)
