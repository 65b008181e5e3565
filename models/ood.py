"""Is this input from the pairing's microscope? An out-of-distribution score against training.

A network trained on one wide-field microscope's images will still return *something* for an
image from another objective, camera, stain order or pixel size — and that something is not to
be trusted. Before enhancing, each input is described by a few physics-minded features and
compared with the same features of the training fields:

=================  ==========================================================================
group              features (per channel unless said)
=================  ==========================================================================
``intensity``      the raw 99.9th percentile (log; the camera's range), the fractions of pixels
                   at zero and at the image's dtype maximum (clipping, blank or saturated)
``histogram``      percentile-normalised quantiles 5…95 % and the skewness (the histogram's shape)
``noise``          noise σ (:func:`models.noise.noise_sigma`) relative to the dynamic range (the
                   SNR) and the LQ's noise slope (variance vs signal: the camera gain)
``spectrum``       log radially averaged power in 8 octave-ish bands, relative to the lowest
                   (the optics' transfer function and the structures' scale)
``pixel_size``     log₂ of the given pixel size relative to training's (one value)
``channels``       Pearson correlations of every channel pair (so a wrong order shows)
``channel_order``  how much better the input's *channel contrasts* match training's in another
                   order than in the given one. A contrast is the difference of one channel
                   signature feature (histogram shape, relative noise, spectrum band) between two
                   channels of the same field; the reference keeps each contrast's median and
                   spread over the training fields. Every permutation of the input's channels
                   is scored (RMS robust z of its contrasts) and the gap between the given order
                   and the best other one is the group score. Fields differ a lot in absolute
                   terms (density, brightness, focus), but those differences are shared by the
                   channels of one field and cancel in a contrast — comparing each channel with
                   the training channels on its own (the first version) could not tell the two
                   filament channels of W2S apart, the contrasts can
``extra``          optional, caller-supplied values (the hook for the model's own uncertainty)
=================  ==========================================================================

:meth:`OodReference.fit` keeps each feature's median and robust spread (1.4826·MAD, floored)
over the training fields; :meth:`OodReference.score` turns an input's features into robust
z-scores, a group's score is the root-mean-square of its features' z, and the image's score is the
root-mean-square of the other group scores — except that a pixel size unlike training's and a
better-fitting channel order are each decisive on their own (the pixel size is given, not
estimated; a swapped pair of channels leaves the pooled groups nearly unchanged): their group
scores count as the image's score when larger. The reasons name the groups (and the feature
furthest out in each) beyond the threshold, or else the largest one. A
threshold chosen on validation fields (:meth:`OodReference.with_threshold`) turns the score into a
warning. Everything is numpy / scipy, a few milliseconds per 512² channel, and the reference is a
few kB of JSON.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as scipy_fft

from .input_channels import InputChannel, input_channels
from .noise import sigma_of_highpass

OOD_FORMAT = "pairscope-ood/2"
QUANTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
N_BANDS = 8
GROUPS = ("intensity", "histogram", "noise", "spectrum", "pixel_size", "channels", "extra")
#: The per-channel features whose between-channel differences (contrasts) describe which channel
#: is which (for ``channel_order``): ``(group, feature name after "c<k>_")``; the noise gain is
#: left out (the camera's, the same for every channel).
CHANNEL_SIGNATURE = (
    *(("histogram", f"q{q:g}") for q in QUANTILES),
    ("histogram", "skew"),
    ("noise", "relative_sigma"),
    *(("spectrum", f"band{b}") for b in range(1, N_BANDS)),
)
#: Where the reference keeps the contrasts' medians and spreads (not scored as a group itself).
CONTRAST_GROUP = "channel_contrast"
CONTRAST_SPREAD_FLOOR = 0.02
#: Lower bounds on a feature's spread, so a feature that never varied in training (a fraction
#: that was always 0) does not turn a tiny change into an enormous z.
SPREAD_FLOOR = {
    "intensity": 0.05,
    "histogram": 0.01,
    "noise": 0.02,
    "spectrum": 0.05,
    "pixel_size": math.log2(1.1),
    "channels": 0.03,
    "extra": 1e-6,
}
#: Channel order is checked by trying every permutation (6 for 3 channels, 120 for 5).
MAX_ORDER_CHANNELS = 5
#: The order gap (RMS z saved by re-ordering) becomes the group score
#: ``ORDER_GAP_WEIGHT · max(gap + ORDER_GAP_OFFSET, 0)``: the given order of a training-like field
#: fits clearly best (a gap of about −0.2 to −0.6 when a W2S training field is left out of the
#: reference), a swapped pair barely better (+0.1 to +0.8), so the offset keeps that margin in
#: the score. Chosen on the W2S training and validation fields.
ORDER_GAP_WEIGHT = 2.0
ORDER_GAP_OFFSET = 0.5
#: Default margin on the largest validation score when choosing the threshold.
THRESHOLD_MARGIN = 1.5


def _dtype_max(image: np.ndarray) -> float | None:
    return float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else None


def _band_edges(n: int) -> np.ndarray:
    """Log-spaced radial frequency band edges from 1/n to 0.5 cycles / pixel."""
    return np.geomspace(1.0 / n * 2, 0.5, N_BANDS + 1)


@functools.lru_cache(maxsize=8)
def _spectrum_layout(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The Hann window (float32), and per frequency of the real FFT its band index
    (:data:`N_BANDS` outside the bands) and weight, and the full spectrum's pixels per band —
    the same for every channel of a shape, so made once. A real image's spectrum is Hermitian:
    the half that ``rfft2`` returns stands for the whole with weight 2, except the columns that
    are their own mirror (``fx = 0`` and, for an even width, the Nyquist column)."""
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    idx = (np.digitize(f, _band_edges(min(h, w))) - 1).ravel()
    weight = np.full(f.shape, 2.0)
    weight[:, 0] = 1.0
    if w % 2 == 0:
        weight[:, -1] = 1.0
    band = np.where((idx >= 0) & (idx < N_BANDS), idx, N_BANDS)
    weight = weight.ravel()
    count = np.bincount(band, weights=weight, minlength=N_BANDS + 1)[:N_BANDS]
    count = np.maximum(count, 1)
    for a in (win, band, weight, count):
        a.flags.writeable = False
    return win, band, weight, count


def _spectrum_bands(x: np.ndarray) -> np.ndarray:
    """Log₁₀ mean power in the radial bands, relative to the first band (the shape only)."""
    win, band, weight, count = _spectrum_layout(*x.shape)
    x = np.asarray(x, np.float32)
    spec = scipy_fft.rfft2((x - np.float32(x.mean(dtype=np.float64))) * win, workers=-1).ravel()
    p = (spec.real * spec.real + spec.imag * spec.imag) * weight
    power = np.bincount(band, weights=p, minlength=N_BANDS + 1)[:N_BANDS]
    logp = np.log10(power / count + 1e-20)
    return logp[1:] - logp[0]


def image_features(
    image: np.ndarray, pixel_size_um: float, channels: Sequence[InputChannel] | None = None
) -> dict[str, dict[str, float]]:
    """The features of one ``CYX`` (or ``YX``) image, grouped: ``{group: {name: value}}``.
    ``channels``: the image's :func:`~models.input_channels.input_channels`, when the caller has
    them already (the consistency check shares them)."""
    raw = np.asarray(image)
    arr = raw[None] if raw.ndim == 2 else raw
    if arr.ndim != 3:
        raise ValueError(f"expected a YX or CYX image, got shape {raw.shape}")
    if not pixel_size_um > 0:
        raise ValueError(f"pixel size must be > 0 µm (got {pixel_size_um})")
    if channels is None:
        channels = input_channels(arr)
    elif len(channels) != arr.shape[0]:
        raise ValueError(f"{len(channels)} prepared channels for an image of shape {raw.shape}")
    top = _dtype_max(arr)
    feats: dict[str, dict[str, float]] = {g: {} for g in GROUPS if g != "extra"}
    for c, ic in enumerate(channels):
        v = ic.values
        p = v.percentile(QUANTILES)
        lo, hi = ic.lo, ic.hi
        rng = max(hi - lo, 1e-12)
        feats["intensity"][f"c{c}_log_p99.9"] = math.log10(max(hi, 1e-6) + 1.0)
        feats["intensity"][f"c{c}_zero_fraction"] = v.zero_fraction
        at_top = v.fraction_at_least(top if top is not None else v.max_value)
        feats["intensity"][f"c{c}_top_fraction"] = at_top
        qs = (p - lo) / rng
        for q, val in zip(QUANTILES, qs, strict=True):
            feats["histogram"][f"c{c}_q{q:g}"] = float(val)
        feats["histogram"][f"c{c}_skew"] = v.skew
        sigma = sigma_of_highpass(ic.highpass)
        feats["noise"][f"c{c}_relative_sigma"] = math.log10(sigma + 1e-4)
        (mu_1, mu_99), (var_1, var_99) = _percentiles_of_variance(ic.mu, ic.var_model, (1.0, 99.0))
        span = float(mu_99 - mu_1)
        slope = float(var_99 - var_1) / span if span > 0 else 0.0
        feats["noise"][f"c{c}_gain"] = math.log10(abs(slope) + 1e-4)
        for b, val in enumerate(_spectrum_bands(ic.x), start=1):
            feats["spectrum"][f"c{c}_band{b}"] = float(val)
    feats["pixel_size"]["log2_um"] = math.log2(pixel_size_um)
    # Pearson correlations of the smoothed channels: each centred once, float32 summed in float64
    centred, norms = [], []
    for ic in channels:
        m = ic.mu.ravel()
        cm = m - m.dtype.type(m.sum(dtype=np.float64) / m.size)
        centred.append(cm)
        norms.append(math.sqrt(float(np.sum(cm * cm, dtype=np.float64))))
    for i in range(len(centred)):
        for j in range(i + 1, len(centred)):
            den = norms[i] * norms[j]
            cov = float(np.sum(centred[i] * centred[j], dtype=np.float64))
            feats["channels"][f"c{i}c{j}_corr"] = cov / den if den > 0 else 0.0
    return feats


def _percentiles_of_variance(
    mu: np.ndarray, model: tuple[float, float, float], qs: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """``np.percentile`` at ``qs`` of ``mu`` and of its variance map, from one partial sort.

    The map is ``max(α·mu + β, floor)`` (``model``, :func:`models.noise.variance_model`), monotone
    in ``mu``: its order statistics are the map of ``mu``'s (reversed when ``α < 0``), taken from
    the same partition and interpolated linearly as ``np.percentile`` does."""
    alpha, beta, floor = model
    flat = mu.ravel()
    n = flat.size
    pos = np.asarray(qs, np.float64) / 100.0 * (n - 1)
    below = np.floor(pos).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    t = pos - below
    part = np.partition(
        flat, np.unique(np.concatenate([below, above, n - 1 - below, n - 1 - above]))
    )

    def var_of(m: np.ndarray) -> np.ndarray:
        return np.maximum(alpha * m + beta, floor)

    def at(i: np.ndarray) -> np.ndarray:  # order statistics in float64 (μ may be float32)
        return part[i].astype(np.float64)

    mu_q = at(below) + (at(above) - at(below)) * t
    if alpha < 0:  # the largest μ has the smallest variance
        below, above = n - 1 - below, n - 1 - above
    v_lo, v_hi = var_of(at(below)), var_of(at(above))
    return mu_q, v_lo + (v_hi - v_lo) * t


def channel_contrasts(
    feats: Mapping[str, Mapping[str, float]], order: Sequence[int]
) -> dict[str, float]:
    """The signature features' differences between every channel pair of one field, with the
    channels taken in ``order`` (``order[i]`` is the input channel read as channel ``i``)."""
    out = {}
    for i, j in itertools.combinations(range(len(order)), 2):
        for group, name in CHANNEL_SIGNATURE:
            a = feats[group][f"c{order[i]}_{name}"]
            b = feats[group][f"c{order[j]}_{name}"]
            out[f"c{i}-c{j}_{name}"] = a - b
    return out


@dataclass
class OodScore:
    """An input's score, its groups' scores, the features furthest out, and the verdict."""

    score: float
    groups: dict[str, float]
    contributions: dict[str, float]
    warn: bool
    reasons: list[str]
    threshold: float | None

    def to_dict(self) -> dict:
        return {
            "score": self.score,
            "groups": dict(self.groups),
            "contributions": dict(self.contributions),
            "warn": self.warn,
            "reasons": list(self.reasons),
            "threshold": self.threshold,
        }


@dataclass
class OodReference:
    """The training fields' feature medians and spreads (``{group: {name: [median, spread]}}``),
    the number of channels and the pixel size they were taken at, and the warning threshold."""

    stats: dict[str, dict[str, list[float]]]
    channels: int
    pixel_size_um: float
    n_fields: int
    threshold: float | None = None
    threshold_note: str = ""
    extra_names: list[str] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        fields: Sequence[np.ndarray],
        pixel_size_um: float,
        extra: Sequence[Mapping[str, float]] | None = None,
    ) -> OodReference:
        """Reference statistics from training fields (``CYX``, one pixel size). ``extra``: per
        field, optional extra features (e.g. the model's uncertainty) to score later too."""
        if not fields:
            raise ValueError("need at least one training field")
        if extra is not None and len(extra) != len(fields):
            raise ValueError(f"extra has {len(extra)} entries for {len(fields)} fields")
        feats = [image_features(f, pixel_size_um) for f in fields]
        channels = {np.asarray(f).shape[0] if np.ndim(f) == 3 else 1 for f in fields}
        if len(channels) != 1:
            raise ValueError(f"training fields differ in channel count: {sorted(channels)}")
        n_ch = next(iter(channels))
        if 1 < n_ch <= MAX_ORDER_CHANNELS:
            for fe in feats:
                fe[CONTRAST_GROUP] = channel_contrasts(fe, range(n_ch))
        if extra is not None:
            for fe, ex in zip(feats, extra, strict=True):
                fe["extra"] = {k: float(v) for k, v in ex.items()}
        stats: dict[str, dict[str, list[float]]] = {}
        for group in feats[0]:
            stats[group] = {}
            for name in feats[0][group]:
                vals = np.array([fe[group][name] for fe in feats])
                med = float(np.median(vals))
                mad = 1.4826 * float(np.median(np.abs(vals - med)))
                floor = CONTRAST_SPREAD_FLOOR if group == CONTRAST_GROUP else SPREAD_FLOOR[group]
                stats[group][name] = [med, max(mad, floor)]
        return cls(
            stats=stats,
            channels=channels.pop(),
            pixel_size_um=float(pixel_size_um),
            n_fields=len(fields),
            extra_names=sorted(stats.get("extra", {})),
        )

    def _order_gap(self, feats: dict[str, dict[str, float]]) -> tuple[float, tuple[int, ...]]:
        """``(gap, best order)``: the RMS robust z of the channel contrasts in the given order,
        minus that in the best other order (negative when the given order fits best)."""
        ref = self.stats[CONTRAST_GROUP]

        def misfit(order: Sequence[int]) -> float:
            con = channel_contrasts(feats, order)
            zs = [(v - ref[k][0]) / ref[k][1] for k, v in con.items()]
            return math.sqrt(float(np.mean(np.square(zs))))

        given = misfit(range(self.channels))
        identity = tuple(range(self.channels))
        others = [p for p in itertools.permutations(identity) if p != identity]
        best = min(others, key=misfit)
        return given - misfit(best), tuple(best)

    def score(
        self,
        image: np.ndarray,
        pixel_size_um: float,
        extra: Mapping[str, float] | None = None,
        channels: Sequence[InputChannel] | None = None,
    ) -> OodScore:
        """Score one input: robust z per feature, RMS per group, RMS over groups. ``channels``:
        the image's :func:`~models.input_channels.input_channels` if made already."""
        arr = np.asarray(image)
        n_ch = arr.shape[0] if arr.ndim == 3 else 1
        if n_ch != self.channels:
            return OodScore(
                score=math.inf,
                groups={},
                contributions={},
                warn=True,
                threshold=self.threshold,
                reasons=[f"{n_ch} channel(s); training had {self.channels}"],
            )
        feats = image_features(arr, pixel_size_um, channels)
        if self.extra_names:
            missing = [k for k in self.extra_names if extra is None or k not in extra]
            if missing:
                raise ValueError(f"extra feature(s) {missing} needed: the reference has them")
            feats["extra"] = {k: float(extra[k]) for k in self.extra_names}  # type: ignore[index]
        groups: dict[str, float] = {}
        contributions: dict[str, float] = {}
        for group, ref in self.stats.items():
            if group == CONTRAST_GROUP:
                continue
            zs = []
            for name, (med, spread) in ref.items():
                z = (feats[group][name] - med) / spread
                contributions[f"{group}.{name}"] = float(z)
                zs.append(z)
            groups[group] = float(np.sqrt(np.mean(np.square(zs))))
        if CONTRAST_GROUP in self.stats:
            gap, order = self._order_gap(feats)
            contributions["channel_order.best_order_gap"] = gap
            groups["channel_order"] = ORDER_GAP_WEIGHT * max(gap + ORDER_GAP_OFFSET, 0.0)
        decisive = ("pixel_size", "channel_order")
        content = [g for k, g in groups.items() if k not in decisive]
        total = max(
            float(np.sqrt(np.mean(np.square(content)))), *(groups.get(k, 0.0) for k in decisive)
        )
        warn = self.threshold is not None and total > self.threshold
        reasons = []
        if warn:
            ranked = sorted(groups.items(), key=lambda kv: -kv[1])
            # name every group beyond the threshold, or else the one that contributed most
            limit = float(self.threshold)  # type: ignore[arg-type]
            named = [kv for kv in ranked if kv[1] > limit] or ranked[:1]
            for group, g in named:
                if group == "channel_order":
                    reasons.append(
                        f"channels look like the training channels in the order "
                        f"{list(order)} (gap {gap:.2f} RMS z): wrong channel order?"
                    )
                    continue
                name, z = max(
                    ((k, v) for k, v in contributions.items() if k.startswith(group + ".")),
                    key=lambda kv: abs(kv[1]),
                )
                reasons.append(
                    f"{group} unlike the training fields (group score {g:.1f}; "
                    f"furthest: {name} at {z:+.1f} robust SD)"
                )
            if abs(math.log2(pixel_size_um / self.pixel_size_um)) > math.log2(1.1):
                reasons.append(
                    f"pixel size {pixel_size_um:g} µm; training {self.pixel_size_um:g} µm"
                )
        return OodScore(
            score=float(total),
            groups=groups,
            contributions=contributions,
            warn=warn,
            reasons=reasons,
            threshold=self.threshold,
        )

    def with_threshold(
        self,
        validation_fields: Sequence[np.ndarray],
        margin: float = THRESHOLD_MARGIN,
        extra: Sequence[Mapping[str, float]] | None = None,
    ) -> OodReference:
        """A copy whose threshold is ``margin`` × the largest score of held-out validation fields
        from the same microscope (never test fields): every known in-distribution field passes,
        with room for the variation a handful of fields cannot show."""
        if not validation_fields:
            raise ValueError("need at least one validation field")
        scores = [
            self.score(f, self.pixel_size_um, None if extra is None else extra[i]).score
            for i, f in enumerate(validation_fields)
        ]
        thr = margin * max(scores)
        note = f"{margin:g} × max score of {len(scores)} validation field(s) ({max(scores):.2f})"
        return OodReference(
            stats=self.stats,
            channels=self.channels,
            pixel_size_um=self.pixel_size_um,
            n_fields=self.n_fields,
            threshold=float(thr),
            threshold_note=note,
            extra_names=list(self.extra_names),
        )

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": OOD_FORMAT,
            "stats": self.stats,
            "channels": self.channels,
            "pixel_size_um": self.pixel_size_um,
            "n_fields": self.n_fields,
            "threshold": self.threshold,
            "threshold_note": self.threshold_note,
            "extra_names": list(self.extra_names),
        }

    @classmethod
    def from_dict(cls, d: dict) -> OodReference:
        if d.get("format") != OOD_FORMAT:
            raise ValueError(f"not a {OOD_FORMAT} document (format {d.get('format')!r})")
        return cls(
            stats={
                g: {k: [float(v[0]), float(v[1])] for k, v in s.items()}
                for g, s in d["stats"].items()
            },
            channels=int(d["channels"]),
            pixel_size_um=float(d["pixel_size_um"]),
            n_fields=int(d["n_fields"]),
            threshold=d.get("threshold"),
            threshold_note=d.get("threshold_note", ""),
            extra_names=list(d.get("extra_names", [])),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OodReference:
        return cls.from_dict(json.loads(text))


def auroc(in_distribution: Sequence[float], shifted: Sequence[float]) -> float:
    """Rank-based AUROC of ``shifted`` scoring above ``in_distribution`` (Mann–Whitney U / n·m;
    ties count one half; infinite scores rank highest)."""
    from scipy.stats import rankdata

    a = np.asarray(in_distribution, dtype=np.float64)
    b = np.asarray(shifted, dtype=np.float64)
    if not a.size or not b.size:
        raise ValueError("need at least one score on each side")
    big = np.finfo(np.float64).max
    ranks = rankdata(np.nan_to_num(np.concatenate([a, b]), posinf=big))
    u = ranks[a.size :].sum() - b.size * (b.size + 1) / 2
    return float(u / (a.size * b.size))
