"""The scoring protocol (numpy / scikit-image only; no TensorFlow).

Per field and channel:

1. the ground truth is percentile-normalised, ``(gt − p0.1) / (p99.9 − p0.1)``;
2. the image being scored is fitted to it by least-squares scale and offset
   (as CSBDeep's ``normalize_minmse``), so a method is not penalised for an arbitrary intensity
   scale;
3. MSE, NRMSE (scikit-image, Euclidean normalisation), SSIM and PSNR (``data_range = 1``).

:func:`score_image` averages over channels and also returns the per-channel values.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import (
    mean_squared_error,
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

GT_LOW, GT_HIGH = 0.1, 99.9
METRICS = ("mse", "nrmse", "ssim", "psnr")


def normalize_percentile(
    x: np.ndarray, low: float = GT_LOW, high: float = GT_HIGH, eps: float = 1e-20
) -> np.ndarray:
    """``(x − p_low) / (p_high − p_low)`` in float64."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = np.percentile(x, [low, high])
    return (x - lo) / max(hi - lo, eps)


def minmse_scale_offset(x: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` minimising ``‖a·x + b − target‖²`` (``a = 0`` for a constant ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    xc = x - x.mean()
    var = float(np.mean(xc * xc))
    a = float(np.mean(xc * (t - t.mean()))) / var if var > 0 else 0.0
    return a, float(t.mean()) - a * float(x.mean())


def normalize_minmse(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``a·x + b`` with ``a, b`` minimising ``‖a·x + b − target‖²`` (CSBDeep's protocol)."""
    a, b = minmse_scale_offset(x, target)
    return a * np.asarray(x, dtype=np.float64) + b


def score_channel(prediction: np.ndarray, ground_truth: np.ndarray) -> dict[str, float]:
    """Scores of one 2-D channel under the protocol: ``{mse, nrmse, ssim, psnr}``."""
    pred = np.asarray(prediction)
    gt = np.asarray(ground_truth)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"expected two 2-D arrays of one shape, got {pred.shape} and {gt.shape}")
    g = normalize_percentile(gt)
    p = normalize_minmse(pred, g)
    mse = float(mean_squared_error(g, p))
    return {
        "mse": mse,
        "nrmse": float(normalized_root_mse(g, p)),
        "ssim": float(structural_similarity(g, p, data_range=1.0)),
        "psnr": float(peak_signal_noise_ratio(g, p, data_range=1.0)) if mse > 0 else float("inf"),
    }


def score_image(
    prediction: np.ndarray, ground_truth: np.ndarray, channel_axis: int | None = 0
) -> dict:
    """Score a (C)YX prediction against its ground truth, channel by channel.

    Returns ``{"mse", "nrmse", "ssim", "psnr"}`` averaged over channels, plus
    ``"per_channel"``: a list with one such dict per channel. A 2-D input (or
    ``channel_axis=None``) is one channel.
    """
    pred = np.asarray(prediction)
    gt = np.asarray(ground_truth)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    if pred.ndim == 2 or channel_axis is None:
        chans = [score_channel(pred, gt)]
    else:
        pred = np.moveaxis(pred, channel_axis, 0)
        gt = np.moveaxis(gt, channel_axis, 0)
        chans = [score_channel(p, g) for p, g in zip(pred, gt, strict=True)]
    out: dict = {k: float(np.mean([c[k] for c in chans])) for k in METRICS}
    out["per_channel"] = chans
    return out
