"""Per-pixel uncertainty of an enhancement, with calibrated intervals.

Why: an enhanced image says nothing about where it can be believed. Here each pixel gets the
half-width of an interval that is meant to hold the ground truth with a stated probability
(90 % by default), calibrated on validation fields the model was not trained on. The point
prediction is left exactly as it is (``UncertaintyResult.point`` is the caller's own first
member), so no enhancement quality is traded for the map.

Method (chosen by measurement on W2S, ``bench/trust.py`` section 5: a ``cpu-small`` generator
trained 8 minutes, calibrated on validation fields 061–064, scored on test fields 065–080):

1. a local *scale* ``σ̂`` per pixel from cheap features, all in the point's normalised units
   ``u = (x − p0.1) / (p99.9 − p0.1)`` per 2-D plane (the same percentiles the scoring protocol
   puts the ground truth in): the local predicted intensity, the local RMS of the input's
   departure from the prediction (the input fitted to the point by least squares), the
   prediction's local gradient and, when more than one member is given, the members' local
   spread. ``log σ̂ = w · [1, log(feature + ε)…]``, ``w`` fitted by least squares of
   ``log |error|`` on validation pixels (a heteroscedastic scale model);
2. split conformal calibration: ``q`` is the conformal quantile of ``|error| / σ̂`` on the
   validation pixels, and the interval is ``point ± q · σ̂`` (mapped back to the output's
   intensity units).

There, the local features alone (one member: the plain prediction) covered 86.9 % of test
pixels with the nominal 90 % interval, ranked 16 × 16 blocks by their error with a median
Spearman ρ of 0.95, and cost ×1.28 the plain enhancement. The test-time ensemble's spread,
conformally calibrated, covered 89 % but ranked worse (ρ 0.76–0.77) and costs a prediction per
member (×2.0 for two, ×8.6 for eight); added to the local features it changed ρ by < 0.01.
Uncalibrated, the spread as a Gaussian σ covered 28 %. Hence :func:`model_members` defaults to
one member; the spread stays available for callers that predict more members anyway.

The features are local averages, so new calibrations take them on 2 × 2 bins
(:data:`BIN`, saved as ``Calibration.bin_px``): the box filters then transform a quarter of the
pixels and the scale is computed once per bin and spread over its four pixels. The conformal
quantile is fitted on those same features, so the interval stays calibrated; the numbers are in
docs/benchmarks.md (Trust, fourth pass).

The error is measured in the scoring protocol's units (:mod:`models.metrics`): the ground truth
normalised by its 0.1 / 99.9 percentiles and the point fitted to it by least-squares scale and
offset; the interval is mapped through that same fit, i.e. expressed in the point's ``u``.

Interface: ``predict_with_members(image) -> [point, *more]`` returns the point prediction
first (exactly what would be output without a map) and optional extra ensemble members
(:func:`model_members` builds it from an :class:`~models.model.EnhancementModel`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from . import reflect_filter
from .metrics import minmse_scale_offset, normalize_percentile

PredictWithMembers = Callable[[np.ndarray], list[np.ndarray]]

METHOD = "log-linear-scale+split-conformal/1"
U_LOW, U_HIGH = 0.1, 99.9  # the protocol's ground-truth percentiles, applied to the point
FEATURE_EPS = 1e-3  # in u; keeps log() finite on flat background
ERROR_EPS = 1e-3
SMOOTH = 2  # half-width (px) of the local box averages
#: New calibrations compute their features on 2 × 2 bins (:func:`plane_features`); a saved
#: calibration without ``bin_px`` was fitted on full-resolution features and keeps them.
BIN = 2
FIT_PIXELS = 400_000  # validation pixels the scale model is fitted on (subsampled)
#: Extra members' transforms (rotation k·90°, flip), in the order they are added: the second
#: member is the transpose, the most different view of the image for a U-Net.
MEMBER_TRANSFORMS = (
    (0, False),
    (1, True),
    (2, False),
    (3, True),
    (1, False),
    (0, True),
    (3, False),
    (2, True),
)


@dataclass(frozen=True)
class Calibration:
    """A fitted scale model and its conformal quantile; small and JSON-serialisable."""

    coverage: float
    quantile: float
    features: list[str]
    weights: list[float]
    n_members: int
    method: str = METHOD
    smooth_px: int = SMOOTH
    bin_px: int = 1
    n_pixels: int = 0
    validation_coverage: float = float("nan")
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        if d.get("method") != METHOD:
            raise ValueError(f"unknown calibration method {d.get('method')!r}; expected {METHOD!r}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls.from_dict(json.loads(text))


@dataclass
class UncertaintyResult:
    """The point prediction and the per-pixel half-width of its calibrated interval
    (``point ± half_width``, intensity units of the point, same shape)."""

    point: np.ndarray
    half_width: np.ndarray
    coverage: float
    #: per 2-D plane, the point's ``p99.9 − p0.1`` (what ``u`` is relative to)
    plane_range: np.ndarray

    @property
    def relative_half_width(self) -> np.ndarray:
        """The half-width in ``u`` (fractions of each plane's dynamic range)."""
        planes = self.half_width.reshape(-1, *self.half_width.shape[-2:])
        rel = planes / np.maximum(self.plane_range, 1e-12)[:, None, None]
        return rel.reshape(self.half_width.shape)

    def summary(self, bound: float = 0.1) -> dict[str, float]:
        """Figures for a report: median / 90th-percentile half-width (intensity units and
        relative to the dynamic range), and the fraction of pixels whose relative half-width
        exceeds ``bound``."""
        planes = _planes(self.half_width)
        ranges = np.maximum(self.plane_range, 1e-12)
        above = sum(
            int(np.count_nonzero(p > np.float32(bound * r)))
            for p, r in zip(planes, ranges, strict=True)
        ) / max(planes.size, 1)
        # the percentiles of a large map from every other row and column of each plane, as
        # _unit takes the point's (the map is a box average over ≥ 5 px: the same figures to
        # well under 1 %, a quarter of the sorting); one partial sort per map for both
        half = _every_other(planes)
        rel = half / ranges.astype(half.dtype)[:, None, None]
        med, p90 = (float(v) for v in np.percentile(half, [50, 90], overwrite_input=True))
        rel_med, rel_p90 = (float(v) for v in np.percentile(rel, [50, 90], overwrite_input=True))
        return {
            "coverage_nominal": self.coverage,
            "median_half_width": med,
            "p90_half_width": p90,
            "median_relative_half_width": rel_med,
            "p90_relative_half_width": rel_p90,
            "relative_bound": bound,
            "fraction_above_bound": above,
        }


# ------------------------------------------------------------------------------ features
def _every_other(a: np.ndarray) -> np.ndarray:
    """Every other row and column of each plane of a map of more than 65536 pixels, as a new
    array (its percentiles may sort it in place); a small map whole."""
    a = np.asarray(a)
    return (a[..., ::2, ::2] if a.size > 65536 else a).copy()


def _planes(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim < 2:
        raise ValueError(f"expected an image of at least 2 dimensions, got shape {a.shape}")
    return a.reshape(-1, *a.shape[-2:])


def _unit(point: np.ndarray) -> tuple[float, float]:
    """The point's ``(p0.1, p99.9 − p0.1)``; on every other row and column of a large plane
    (a quarter of the sorting, the same percentiles to well under 1 %)."""
    p = np.asarray(point)
    if p.size > 65536:
        p = p[::2, ::2]
    lo, hi = np.percentile(p.astype(np.float32).ravel(), [U_LOW, U_HIGH])
    return float(lo), float(max(hi - lo, 1e-12))


def _fit_to(x: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``a·x + b ≈ target`` in float32 BLAS dot products (the
    float64 version costs as much as a filter pass on a large plane)."""
    xv, tv = x.ravel(), target.ravel()
    n = xv.size
    mx, mt = float(xv.sum(dtype=np.float64)) / n, float(tv.sum(dtype=np.float64)) / n
    xc = xv - np.float32(mx)
    var = float(np.dot(xc, xc)) / n
    a = float(np.dot(xc, tv - np.float32(mt))) / n / var if var > 0 else 0.0
    return a, mt - a * mx


def feature_names(n_members: int) -> list[str]:
    names = ["level", "input_residual", "gradient"]
    return names + ["spread"] if n_members > 1 else names


def plane_features(
    point: np.ndarray,
    lq: np.ndarray,
    members: Sequence[np.ndarray],
    smooth: int = SMOOTH,
    bin_px: int = 1,
) -> tuple[dict[str, np.ndarray], float, float]:
    """Per-pixel features of one 2-D plane, in the point's ``u``; also ``(lo, range)``.

    Local averages are box filters (``2·smooth + 1`` px): several times cheaper than
    Gaussians of similar width, which matters as the map must cost little next to the
    prediction itself. The three box averages of one plane are ``ndimage.uniform_filter``'s
    (reflecting edges) made by one cosine transform (:mod:`models.reflect_filter`, float32
    rounding), a third cheaper than scipy's six 1-D passes.

    ``bin_px`` > 1: the three planes are averaged over ``bin_px``² bins first and the box
    averages (of ``2·(smooth // bin_px) + 1`` bins, at least 3) are taken on the binned grid,
    so the features come on that grid (:func:`expand` puts them back on the plane's): the
    features are local averages anyway, and the transforms then cost a quarter for 2 × 2."""
    lo, rng = _unit(point)
    # the three planes to average, written into one block for the transform
    planes = np.empty((3, *np.shape(point)), np.float32)
    u, resid = planes[0], planes[1]
    np.subtract(np.asarray(point, np.float32), np.float32(lo), out=u)
    u /= np.float32(rng)
    x = np.asarray(lq, np.float32)
    a, b = _fit_to(x, u)  # the input in u, by least squares
    if a > 0:
        np.multiply(x, np.float32(a), out=resid)
        resid += np.float32(b)
        resid -= u
        resid *= resid
    else:
        resid[:] = 0
    planes[2] = _gradient_magnitude(u)
    size = 2 * max(smooth // bin_px, 1) + 1 if bin_px > 1 else 2 * smooth + 1
    if bin_px > 1:
        planes = binned(planes, bin_px)
    box, wide = (reflect_filter.box_kernel(size),), (reflect_filter.box_kernel(size + 2),)
    coefficients = reflect_filter.forward(planes, overwrite=True)  # planes are scratch
    feats: dict[str, np.ndarray] = {}
    feats["level"] = np.maximum(reflect_filter.apply(coefficients[0], box), 0.0)
    # the filtered squares and magnitudes are ≥ 0 but for float32 rounding
    feats["input_residual"] = np.sqrt(np.maximum(reflect_filter.apply(coefficients[1], wide), 0))
    feats["gradient"] = np.maximum(reflect_filter.apply(coefficients[2], box), 0.0)
    if len(members) > 1:
        m = np.stack(
            [(np.asarray(v, np.float32) - np.float32(lo)) / np.float32(rng) for v in members]
        )
        var = m.var(axis=0)
        if bin_px > 1:
            var = binned(var, bin_px)
        feats["spread"] = np.sqrt(np.maximum(ndimage.uniform_filter(var, size), 0))
    return feats, lo, rng


def binned(planes: np.ndarray, bin_px: int) -> np.ndarray:
    """The means of ``bin_px``² bins over the last two axes (float32); a side that is not a
    multiple of ``bin_px`` is padded by repeating its last row / column."""
    a = np.asarray(planes, np.float32)
    h, w = a.shape[-2:]
    ph, pw = -h % bin_px, -w % bin_px
    if ph or pw:
        a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, ph), (0, pw)], mode="edge")
    # strided sums: numpy's mean over the axes of a reshaped view is ~50× slower
    out = a[..., ::bin_px, ::bin_px].copy()
    for i in range(bin_px):
        for j in range(bin_px):
            if i or j:
                out += a[..., i::bin_px, j::bin_px]
    out *= np.float32(1.0 / (bin_px * bin_px))
    return out


def expand(small: np.ndarray, shape: tuple[int, ...], bin_px: int) -> np.ndarray:
    """A 2-D map on the ``bin_px`` grid back on a plane of ``shape`` (each bin's value on its
    pixels); the map itself for ``bin_px`` 1."""
    if bin_px == 1:
        return small
    hb, wb = small.shape
    big = np.empty((hb * bin_px, wb * bin_px), small.dtype)
    big.reshape(hb, bin_px, wb, bin_px)[...] = small[:, None, :, None]
    return big[: shape[-2], : shape[-1]]


def _gradient_magnitude(u: np.ndarray) -> np.ndarray:
    """``|∇u|`` by central differences (one-sided at the edges)."""
    gy = np.empty_like(u)
    gx = np.empty_like(u)
    if u.shape[0] > 1:
        np.subtract(u[2:], u[:-2], out=gy[1:-1])
        gy[1:-1] *= 0.5
        gy[0], gy[-1] = u[1] - u[0], u[-1] - u[-2]
    else:
        gy[:] = 0
    if u.shape[1] > 1:
        np.subtract(u[:, 2:], u[:, :-2], out=gx[:, 1:-1])
        gx[:, 1:-1] *= 0.5
        gx[:, 0], gx[:, -1] = u[:, 1] - u[:, 0], u[:, -1] - u[:, -2]
    else:
        gx[:] = 0
    gy *= gy
    gx *= gx
    gy += gx
    return np.sqrt(gy, out=gy)


def _log_scale(
    feats: dict[str, np.ndarray], names: Sequence[str], weights: Sequence[float]
) -> np.ndarray:
    """``log σ̂ = w0 + Σ w_k log(feature_k + ε)``, in float32 and in place."""
    out = np.full(feats[names[0]].shape, np.float32(weights[0]), np.float32)
    for n, w in zip(names, weights[1:], strict=True):
        out += np.float32(w) * np.log(feats[n] + np.float32(FEATURE_EPS))
    return out


def _chosen(features: Sequence[str] | None, n_members: int) -> list[str]:
    names = feature_names(n_members)
    if features is None:
        return names
    unknown = [f for f in features if f not in names]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {names}, got {features}")
    return list(features)


def _design(feats: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    cols = [np.ones(feats[names[0]].size, np.float32)]
    cols += [np.log(feats[n].ravel() + FEATURE_EPS) for n in names]
    return np.stack(cols, axis=1)


def plane_errors(point: np.ndarray, hq: np.ndarray) -> np.ndarray:
    """The point's error in its ``u`` under the scoring protocol: the ground truth normalised
    by its 0.1 / 99.9 percentiles, the point fitted to it by least squares, the difference
    mapped back through the fit. NaN everywhere when the fit is not positive."""
    lo, rng = _unit(point)
    u = (np.asarray(point, np.float64) - lo) / rng
    g = normalize_percentile(hq)
    a, b = minmse_scale_offset(u, g)
    if not (a > 0 and math.isfinite(a)):
        return np.full(u.shape, np.nan, np.float32)
    return (u - (g - b) / a).astype(np.float32)


# ------------------------------------------------------------------------------ fitting
def _members_of(predict_with_members: PredictWithMembers, image: np.ndarray) -> list[np.ndarray]:
    members = [np.asarray(m) for m in predict_with_members(image)]
    if not members:
        raise ValueError("predict_with_members returned no prediction")
    for m in members:
        if m.shape != members[0].shape:
            raise ValueError(f"members differ in shape: {m.shape} vs {members[0].shape}")
    if np.asarray(image).shape != members[0].shape:
        raise ValueError(
            f"prediction shape {members[0].shape} != image shape {np.asarray(image).shape}"
        )
    return members


def _image_features(
    members: list[np.ndarray], image: np.ndarray, smooth: int = SMOOTH, bin_px: int = 1
):
    """Per plane, lazily (a large stack's features need not all be held): ``(features, lo,
    range)``, the features on the ``bin_px`` grid."""
    mp = [_planes(m) for m in members]
    lq = _planes(image)
    for i in range(lq.shape[0]):
        yield plane_features(mp[0][i], lq[i], [m[i] for m in mp], smooth, bin_px)


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: the ``⌈(n + 1)·coverage⌉``-th smallest score."""
    s = np.sort(np.asarray(scores, np.float64).ravel())
    k = min(len(s), math.ceil((len(s) + 1) * coverage))
    return float(s[k - 1])


def fit_calibration(
    predict_with_members: PredictWithMembers,
    val_lq: Sequence[np.ndarray],
    val_hq: Sequence[np.ndarray],
    coverage: float = 0.9,
    seed: int = 0,
    features: Sequence[str] | None = None,
) -> Calibration:
    """Fit the scale model and its conformal quantile on validation pairs (not trained on).

    ``val_lq`` / ``val_hq``: inputs and ground truths of the same shapes; every 2-D plane of
    an image (``(Z)(C)YX``) is one sample of the protocol. ``features``: a subset of
    :func:`feature_names` (default: all of them for the number of members given).
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    if len(val_lq) != len(val_hq) or not val_lq:
        raise ValueError("need the same, non-zero number of validation inputs and truths")
    xs, es, n_members = [], [], None
    for lq, hq in zip(val_lq, val_hq, strict=True):
        members = _members_of(predict_with_members, lq)
        if n_members is None:
            n_members = len(members)
        elif len(members) != n_members:
            raise ValueError("predict_with_members returned a varying number of members")
        names = _chosen(features, n_members)
        hq_planes = _planes(hq)
        for (feats, _, _), p, h in zip(
            _image_features(members, lq, bin_px=BIN), _planes(members[0]), hq_planes, strict=True
        ):
            e = plane_errors(p, h).ravel()
            ok = np.isfinite(e)
            full = {k: expand(v, p.shape, BIN) for k, v in feats.items()}
            xs.append(_design(full, names)[ok])
            es.append(np.abs(e[ok]))
    assert n_members is not None
    names = _chosen(features, n_members)
    x = np.concatenate(xs)
    e = np.concatenate(es)
    if e.size == 0:
        raise ValueError("no validation plane has a positive fit to its ground truth")
    rng = np.random.default_rng(seed)
    sub = rng.choice(e.size, min(FIT_PIXELS, e.size), replace=False)
    w, *_ = np.linalg.lstsq(x[sub].astype(np.float64), np.log(e[sub] + ERROR_EPS), rcond=None)
    scale = np.exp(x @ w.astype(np.float32))
    q = conformal_quantile(e / scale, coverage)
    return Calibration(
        coverage=float(coverage),
        quantile=q,
        features=names,
        weights=[float(v) for v in w],
        n_members=int(n_members),
        bin_px=BIN,
        n_pixels=int(e.size),
        validation_coverage=float(np.mean(e <= q * scale)),
    )


# ------------------------------------------------------------------------------ inference
def uncertainty(
    predict_with_members: PredictWithMembers, image: np.ndarray, calibration: Calibration
) -> UncertaintyResult:
    """The point prediction of ``image`` and the half-width of its calibrated interval."""
    members = _members_of(predict_with_members, image)
    if len(members) != calibration.n_members:
        raise ValueError(
            f"the calibration was fitted with {calibration.n_members} member(s); got {len(members)}"
        )
    point = members[0]
    half = np.empty(_planes(point).shape, np.float32)
    ranges = []
    b = calibration.bin_px
    planes = _image_features(members, image, calibration.smooth_px, b)
    for i, (feats, _, rng) in enumerate(planes):
        # the scale on the features' grid, then on the plane's (one map to expand, not three)
        log_s = _log_scale(feats, calibration.features, calibration.weights)
        np.exp(log_s, out=log_s)
        log_s *= np.float32(calibration.quantile * rng)
        half[i] = expand(log_s, half.shape[-2:], b)
        ranges.append(rng)
    return UncertaintyResult(
        point=point,
        half_width=half.reshape(point.shape),
        coverage=calibration.coverage,
        plane_range=np.asarray(ranges, np.float64),
    )


def evaluate(result: UncertaintyResult, hq: np.ndarray, block: int = 16) -> dict[str, float]:
    """How well ``result`` matches the ground truth ``hq`` (same shape), in the protocol's
    units: the fraction of pixels inside the interval, and the Spearman correlation between
    the mean half-width and the mean absolute error over ``block``² blocks (all planes'
    blocks pooled)."""
    from scipy.stats import spearmanr

    inside, n, hb, eb = 0, 0, [], []
    rel = _planes(result.relative_half_width)
    for p, h, r in zip(_planes(result.point), _planes(hq), rel, strict=True):
        e = np.abs(plane_errors(p, h))
        if not np.all(np.isfinite(e)):
            continue
        inside += int(np.sum(e <= r))
        n += e.size
        ny, nx = e.shape[0] // block, e.shape[1] // block
        crop = (slice(0, ny * block), slice(0, nx * block))
        eb.append(e[crop].reshape(ny, block, nx, block).mean(axis=(1, 3)).ravel())
        hb.append(r[crop].reshape(ny, block, nx, block).mean(axis=(1, 3)).ravel())
    if n == 0:
        return {"coverage": float("nan"), "spearman": float("nan")}
    rho = spearmanr(np.concatenate(hb), np.concatenate(eb)).statistic
    return {"coverage": inside / n, "spearman": float(rho)}


# ------------------------------------------------------------------------------ models
def _fwd(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    if flip:
        a = a[..., ::-1]
    return np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1)))


def _inv(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, -k, axes=(-2, -1))
    if flip:
        a = a[..., ::-1]
    return np.ascontiguousarray(a)


def model_members(
    model, n_members: int = 1, axes: str | None = None, ensemble: bool = False
) -> PredictWithMembers:
    """``predict_with_members`` for an :class:`~models.model.EnhancementModel`.

    The first member is ``model.predict(image, axes, ensemble=ensemble)`` itself (today's
    output, unchanged); each further member is the plain prediction of a rotated / flipped
    copy of the image, transformed back (the test-time ensemble's views). The model
    normalises each plane by its percentiles, which rotations and flips leave unchanged.
    """
    if not 1 <= n_members <= len(MEMBER_TRANSFORMS):
        raise ValueError(f"n_members must be in 1..{len(MEMBER_TRANSFORMS)}, got {n_members}")

    def predict(image: np.ndarray) -> list[np.ndarray]:
        out = [model.predict(image, axes, ensemble=ensemble)]
        for k, flip in MEMBER_TRANSFORMS[1:n_members]:
            out.append(_inv(model.predict(_fwd(np.asarray(image), k, flip), axes), k, flip))
        return out

    return predict
