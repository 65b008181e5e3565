"""Physics consistency of an enhanced image with its own wide-field input (NanoJ-SQUIRREL's idea).

An enhancement may only *add* what the wide-field (LQ) image cannot show: degraded again by the
pairing's wide-field blur, the enhanced image must reproduce the LQ up to noise. Where it does
not, the network has invented or removed structure, moved it, or put it in the wrong channel —
and a biologist should not trust those pixels. Unlike a comparison with an HQ reference, this
check needs nothing but the input, so it runs on every prediction.

Two pieces:

* :func:`fit_blur` learns the pairing's blur from aligned training pairs: per channel, a
  Gaussian kernel ``K_σ`` such that ``LQ ≈ a·(K_σ ∗ HQ) + b`` (scale and offset per field, as
  SQUIRREL fits them, because each image has its own intensity scale). The fit is a least-squares
  fit in Fourier space over the radially binned cross- and power spectra of all training fields,
  so it is exact for the Gaussian's transfer function at any σ and costs one FFT per field. Its
  FWHM is the pairing's *effective PSF* relative to the HQ (``√(FWHM_LQ² − FWHM_HQ²)`` for
  Gaussian PSFs) — zero where both sides have the same optics (a pure denoising pairing).
* :func:`consistency` degrades an enhanced image with that blur, fits scale and offset to the LQ
  and returns SQUIRREL's resolution-scaled error map, RSP (resolution-scaled Pearson) and RSE
  (resolution-scaled error), plus two noise-aware statistics that the flag uses, because a
  single wide-field frame is noisy and SQUIRREL's raw RSP then depends more on the LQ's SNR
  than on the enhancement:

  - ``rsp_corrected``: RSP divided by the LQ's reliability ``√(1 − σ_n² / var(LQ))`` (Spearman's
    correction for attenuation), i.e. the correlation with the *noise-free* LQ — reported, so
    fields of different SNR compare.
  - a z-map: the residual averaged over a Gaussian window of ``smoothing_px`` (which averages
    white noise away but keeps structure), divided by its expected noise level from a
    Poisson–Gaussian noise model fitted on the LQ itself (:func:`models.noise.noise_variance_map`).
    For a consistent output ``mean(z²) ≈ 1`` (measured on W2S: 0.98–1.16). The flag looks at
    ``|z| > z_threshold``: the largest connected region (a *local* invention or omission — a
    blob, a filament, a deleted cell) and the fraction of such pixels (a *diffuse* disagreement —
    a shift, a wrong channel, wrong content).

Consistency is not accuracy: the LQ itself (the identity "enhancement") is perfectly consistent.
The check catches outputs that contradict their input, not outputs that fail to improve it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage, optimize

from . import reflect_filter
from .check_threads import map_beside
from .input_channels import InputChannel, input_channels
from .noise import noise_variance_map

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
BLUR_FORMAT = "pairscope-blur/1"
N_BINS = 256

#: Flag thresholds, chosen on W2S without the test fields (``bench/trust.py`` prints the
#: validation table): with the HQ as a perfect enhancement, the largest ``|z| > 5`` region is
#: ≤ 32 px on the validation fields 061–064 and ≤ 36 px on all 64 training + validation fields,
#: and the fraction of such pixels ≤ 0.1 %; outputs with invented blobs (σ 3 px), a deleted
#: 80 × 80 region or a 2-px shift have regions of ≥ 70 px (per field, in at least one channel:
#: ≥ 180 px), wrong-channel outputs ≥ 8 % of pixels. The thresholds sit ≈ 2× above the HQ's worst.
Z_THRESHOLD = 5.0
LARGEST_REGION_MAX_PX = 64
INCONSISTENT_FRACTION_MAX = 0.005
SMOOTHING_PX = 2.0


# ---------------------------------------------------------------------------------- the blur
@dataclass(frozen=True)
class Blur:
    """A pairing's wide-field blur relative to its HQ: one Gaussian σ (pixels) per channel.

    ``fit_residual``: per channel, the fraction of the LQ's (windowed, non-DC) power the fitted
    model leaves unexplained — mostly the LQ's noise; a value near 1 means the HQ does not
    predict the LQ at all (misaligned pairs, wrong channel order). ``pixel_size_um`` (LQ grid)
    turns FWHMs into µm for the readiness report; ``None`` when unknown.
    """

    sigma_px: tuple[float, ...]
    pixel_size_um: float | None = None
    fit_residual: tuple[float, ...] = field(default=())
    n_fields: int = 0

    @property
    def channels(self) -> int:
        return len(self.sigma_px)

    @property
    def fwhm_px(self) -> tuple[float, ...]:
        return tuple(FWHM_PER_SIGMA * s for s in self.sigma_px)

    @property
    def fwhm_um(self) -> tuple[float, ...] | None:
        if self.pixel_size_um is None:
            return None
        return tuple(f * self.pixel_size_um for f in self.fwhm_px)

    def kernel(self, channel: int, size: int | None = None) -> np.ndarray:
        """The channel's kernel as an odd ``size × size`` unit-sum array (a delta at σ = 0)."""
        s = self.sigma_px[channel]
        if size is None:
            size = 2 * int(math.ceil(4 * s)) + 1
        size += 1 - size % 2
        k = np.zeros((size, size))
        k[size // 2, size // 2] = 1.0
        return ndimage.gaussian_filter(k, s, mode="constant") if s > 0 else k

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Blur a ``CYX`` (or, for one channel, ``YX``) image channel by channel (float64)."""
        arr = np.asarray(image, dtype=np.float64)
        chans = arr[None] if arr.ndim == 2 else arr
        if chans.ndim != 3 or chans.shape[0] != self.channels:
            raise ValueError(f"blur has {self.channels} channel(s); image shape {arr.shape}")
        out = np.stack([gaussian_blur(ch, s) for ch, s in zip(chans, self.sigma_px, strict=True)])
        return out[0] if arr.ndim == 2 else out

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            format=BLUR_FORMAT,
            model="gaussian",
            fwhm_px=list(self.fwhm_px),
            fwhm_um=None if self.fwhm_um is None else list(self.fwhm_um),
            sigma_px=list(self.sigma_px),
            fit_residual=list(self.fit_residual),
        )
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Blur:
        if d.get("format") != BLUR_FORMAT:
            raise ValueError(f"not a {BLUR_FORMAT} document (format {d.get('format')!r})")
        return cls(
            sigma_px=tuple(float(s) for s in d["sigma_px"]),
            pixel_size_um=d.get("pixel_size_um"),
            fit_residual=tuple(float(r) for r in d.get("fit_residual", ())),
            n_fields=int(d.get("n_fields", 0)),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Blur:
        return cls.from_dict(json.loads(text))


def gaussian_blur(channel: np.ndarray, sigma_px: float) -> np.ndarray:
    """A 2-D channel blurred by a Gaussian of ``sigma_px`` (reflecting edges), in float64; a new
    array. Below σ ≈ 0.125 px scipy's kernel has radius 0 (the single weight 1): the channel is
    returned unchanged without the two filter passes — W2S's fitted blurs are that small."""
    x = np.asarray(channel, dtype=np.float64)
    if sigma_px <= 0 or int(4.0 * sigma_px + 0.5) == 0:
        return x.copy()
    return ndimage.gaussian_filter(x, sigma_px, mode="reflect")


def _hann2d(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1]))


def _radial_bins(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of every FFT frequency (DC → −1) and the bins' mean |f| (cycles / pixel)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    f = np.hypot(fy, fx)
    idx = np.minimum((f / f.max() * N_BINS).astype(int), N_BINS - 1)
    idx[0, 0] = -1
    counts = np.bincount(idx[idx >= 0], minlength=N_BINS)
    centre = np.bincount(idx[idx >= 0], weights=f[idx >= 0], minlength=N_BINS)
    return idx, centre / np.maximum(counts, 1)


def _spectra(hq: np.ndarray, lq: np.ndarray, window: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Radially binned ``(Σ|H|², Σ Re(L·H̄), Σ|L|²)`` of one windowed, mean-free channel pair."""
    h = np.fft.fft2((hq - hq.mean()) * window)
    l_ = np.fft.fft2((lq - lq.mean()) * window)
    keep = idx >= 0
    b = idx[keep]
    return np.stack(
        [
            np.bincount(b, weights=np.abs(h[keep]) ** 2, minlength=N_BINS),
            np.bincount(b, weights=(l_[keep] * np.conj(h[keep])).real, minlength=N_BINS),
            np.bincount(b, weights=np.abs(l_[keep]) ** 2, minlength=N_BINS),
        ]
    )


def _unexplained(sigma: float, spectra: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per field, the fraction of LQ power left after the best ``a·K_σ ∗ HQ`` (``a`` per field).

    With transfer ``t = exp(−2π²σ²f²)`` the optimal scale is ``a = Σ t·S_lh / Σ t²·S_hh`` and
    the residual power ``Σ S_ll − (Σ t·S_lh)² / Σ t²·S_hh``.
    """
    t = np.exp(-2.0 * math.pi**2 * sigma**2 * f**2)
    shh, slh, sll = spectra[:, 0], spectra[:, 1], spectra[:, 2]
    num = (slh * t).sum(axis=1)
    den = np.maximum((shh * t * t).sum(axis=1), 1e-30)
    tot = np.maximum(sll.sum(axis=1), 1e-30)
    return (tot - num * np.abs(num) / den) / tot


def fit_blur(
    hq_fields: Sequence[np.ndarray],
    lq_fields: Sequence[np.ndarray],
    pixel_size_um: float | None = None,
    max_sigma_px: float = 10.0,
) -> Blur:
    """Fit one Gaussian blur σ per channel that maps the HQ fields onto their LQ fields.

    Pairs must be aligned on the LQ grid (``CYX`` or ``YX``, one shape per pair). σ is shared by
    all fields of a channel; the intensity scale and offset are free per field (the offset is the
    DC term, which the fit leaves out). The objective is the mean unexplained fraction of the LQ
    power; it is minimised over ``0 ≤ σ ≤ max_sigma_px`` (bounded Brent).
    """
    if len(hq_fields) != len(lq_fields) or not hq_fields:
        raise ValueError(
            f"need as many HQ as LQ fields (≥ 1), got {len(hq_fields)} and {len(lq_fields)}"
        )
    pairs = []
    for h, l_ in zip(hq_fields, lq_fields, strict=True):
        h = np.asarray(h, dtype=np.float64)
        l_ = np.asarray(l_, dtype=np.float64)
        if h.shape != l_.shape or h.ndim not in (2, 3):
            raise ValueError(
                f"pairs must be aligned YX or CYX arrays of one shape, got {h.shape} and {l_.shape}"
            )
        pairs.append((h[None] if h.ndim == 2 else h, l_[None] if l_.ndim == 2 else l_))
    n_ch = pairs[0][0].shape[0]
    if any(h.shape[0] != n_ch for h, _ in pairs):
        raise ValueError("all fields must have the same number of channels")
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    spectra: list[list[np.ndarray]] = [[] for _ in range(n_ch)]
    freqs: list[list[np.ndarray]] = [[] for _ in range(n_ch)]
    for h, l_ in pairs:
        shape = h.shape[1:]
        if shape not in cache:
            idx, f = _radial_bins(shape)
            cache[shape] = (_hann2d(shape), idx, f)
        window, idx, f = cache[shape]
        for c in range(n_ch):
            spectra[c].append(_spectra(h[c], l_[c], window, idx))
            freqs[c].append(f)
    sigmas, residuals = [], []
    for c in range(n_ch):
        s = np.stack(spectra[c])
        f = np.stack(freqs[c])

        def objective(sig: float, s: np.ndarray = s, f: np.ndarray = f) -> float:
            return float(_unexplained(sig, s, f).mean())

        # a coarse grid first: the objective can be flat near σ = 0, where Brent alone may
        # stop at the wrong end of the bracket
        grid = np.linspace(0.0, max_sigma_px, 41)
        best = float(grid[int(np.argmin([objective(g) for g in grid]))])
        step = grid[1] - grid[0]
        res = optimize.minimize_scalar(
            objective,
            bounds=(max(0.0, best - step), min(max_sigma_px, best + step)),
            method="bounded",
            options={"xatol": 1e-3},
        )
        sig = float(res.x) if res.fun <= objective(best) else best
        if objective(0.0) <= objective(sig):
            sig = 0.0
        sigmas.append(sig)
        residuals.append(objective(sig))
    return Blur(
        sigma_px=tuple(sigmas),
        pixel_size_um=pixel_size_um,
        fit_residual=tuple(residuals),
        n_fields=len(pairs),
    )


# ---------------------------------------------------------------------------- the check
@dataclass
class ChannelConsistency:
    """One channel's consistency numbers (the LQ percentile-normalised 0.1 / 99.9, so RSE and
    the error map are in units of the LQ's dynamic range)."""

    rsp: float
    rse: float
    rsp_corrected: float
    inconsistent_fraction: float
    largest_region_px: int
    noise_sigma: float
    scale: float
    offset: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ConsistencyReport:
    """Per-channel numbers, the error maps and the verdict.

    ``error_map``: ``CYX`` float32, SQUIRREL's resolution-scaled error ``|LQ − (a·K ∗ E + b)|``
    averaged over the smoothing window (so noise does not dominate it). ``z_map``: the same
    residual in units of its expected noise level (signed). ``flag``: whether any channel
    disagrees with its own input; ``reasons``: why, one line per finding.
    """

    channels: list[ChannelConsistency]
    error_map: np.ndarray
    z_map: np.ndarray
    flag: bool
    reasons: list[str]
    thresholds: dict[str, float]

    @property
    def rsp(self) -> list[float]:
        return [c.rsp for c in self.channels]

    @property
    def rse(self) -> list[float]:
        return [c.rse for c in self.channels]

    def to_dict(self) -> dict:
        """The numbers and the verdict (no maps): small enough for a job's JSON output."""
        return {
            "channels": [c.to_dict() for c in self.channels],
            "flag": self.flag,
            "reasons": list(self.reasons),
            "thresholds": dict(self.thresholds),
        }


def _channel(
    enhanced: np.ndarray,
    lq: InputChannel,
    sigma_px: float,
    smoothing_px: float,
    z_threshold: float,
    error_out: np.ndarray,
    z_out: np.ndarray,
) -> ChannelConsistency:
    """One channel's numbers; its error and z maps are written into ``error_out`` / ``z_out``
    (float32 planes of the report's maps, so they are not copied again)."""
    ref = lq.x  # float32
    enhanced = np.asarray(enhanced, np.float32)
    kernel = reflect_filter.gaussian_kernel(sigma_px)
    deg = enhanced if len(kernel) == 1 else reflect_filter.filtered(enhanced, [(kernel,)])[0]
    # scale and offset (as minmse_scale_offset), RSP and RSE from one set of centred moments,
    # float32 arrays summed pairwise in float64
    n = deg.size
    m_deg = float(deg.sum(dtype=np.float64)) / n
    m_ref = float(ref.sum(dtype=np.float64)) / n
    dc = deg - np.float32(m_deg)
    rc = ref - np.float32(m_ref)
    var_deg = float(np.sum(dc * dc, dtype=np.float64)) / n
    var_ref = float(np.sum(rc * rc, dtype=np.float64)) / n
    cov = float(np.sum(dc * rc, dtype=np.float64)) / n
    a = cov / var_deg if var_deg > 0 else 0.0
    b = m_ref - a * m_deg
    resid = rc
    resid -= np.float32(a) * dc  # ref − (a·deg + b), in place of rc
    sd_ref, sd_deg = math.sqrt(var_ref), math.sqrt(var_deg)
    rsp = cov / (sd_ref * sd_deg) if sd_ref > 0 and sd_deg > 0 else 0.0
    rse = math.sqrt(float(np.sum(resid * resid, dtype=np.float64)) / n)
    var = lq.var if smoothing_px == lq.smoothing_px else noise_variance_map(ref, smoothing_px)
    noise = math.sqrt(float(var.sum(dtype=np.float64)) / var.size)
    reliability = max(1.0 - noise**2 / max(sd_ref**2, 1e-30), 1e-6)
    # the residual's smoothing by one cosine transform (scipy's kernel and edges, float32)
    gauss = (reflect_filter.gaussian_kernel(smoothing_px),)
    smooth = reflect_filter.filtered(resid, [gauss], overwrite=True)[0]  # resid is scratch
    # a Gaussian window's ‖g‖₂: the smoothed white noise of variance v has variance v·‖g‖₂²
    g_norm = 1.0 / (2.0 * math.sqrt(math.pi) * smoothing_px) if smoothing_px > 0 else 1.0
    z = np.divide(smooth, np.sqrt(var, dtype=np.float32) * np.float32(g_norm), out=z_out)
    np.abs(smooth, out=error_out)
    outside = np.abs(z) > z_threshold
    n_outside = int(np.count_nonzero(outside))
    largest = 0
    if n_outside:
        labels, n = ndimage.label(outside)
        largest = int(np.bincount(labels.ravel())[1:].max()) if n else 0
    return ChannelConsistency(
        rsp=rsp,
        rse=rse,
        rsp_corrected=rsp / math.sqrt(reliability),
        inconsistent_fraction=n_outside / outside.size,
        largest_region_px=largest,
        noise_sigma=noise,
        scale=a,
        offset=b,
    )


def consistency(
    enhanced: np.ndarray,
    lq: np.ndarray,
    blur: Blur,
    *,
    region_max_px: int = LARGEST_REGION_MAX_PX,
    fraction_max: float = INCONSISTENT_FRACTION_MAX,
    z_threshold: float = Z_THRESHOLD,
    smoothing_px: float = SMOOTHING_PX,
    lq_channels: Sequence[InputChannel] | None = None,
) -> ConsistencyReport:
    """Check an enhanced ``(C)YX`` image against its own LQ input (same grid) with the pairing's
    blur; flag a channel with a connected region of more than ``region_max_px`` pixels, or more
    than ``fraction_max`` of its pixels, where the smoothed residual exceeds ``z_threshold``
    times its expected noise. ``lq_channels``: the LQ's
    :func:`~models.input_channels.input_channels` if made already (the OOD score shares them).
    """
    e = np.asarray(enhanced, dtype=np.float32)
    q = np.asarray(lq)
    if e.shape != q.shape:
        raise ValueError(f"enhanced shape {e.shape} != LQ shape {q.shape} (same grid needed)")
    if e.ndim == 2:
        e, q = e[None], q[None]
    if e.ndim != 3 or e.shape[0] != blur.channels:
        raise ValueError(f"blur has {blur.channels} channel(s); image shape {np.shape(enhanced)}")
    if lq_channels is None:
        lq_channels = input_channels(q)
    elif len(lq_channels) != e.shape[0]:
        raise ValueError(f"{len(lq_channels)} prepared LQ channels for {e.shape[0]} channel(s)")
    errs, zs = np.empty(e.shape, np.float32), np.empty(e.shape, np.float32)
    chans = map_beside(  # channels side by side: each writes its own planes of the maps
        lambda c: _channel(
            e[c], lq_channels[c], blur.sigma_px[c], smoothing_px, z_threshold, errs[c], zs[c]
        ),
        range(e.shape[0]),
    )
    reasons: list[str] = []
    for c, ch in enumerate(chans):
        if ch.inconsistent_fraction > fraction_max:
            reasons.append(
                f"channel {c}: {100 * ch.inconsistent_fraction:.2f} % of pixels "
                f"disagree with the input beyond {z_threshold:g}× the noise "
                f"(> {100 * fraction_max:.2f} %; RSP {ch.rsp:.3f}): shifted, wrong "
                f"channel or wrong content"
            )
        if ch.largest_region_px > region_max_px:
            reasons.append(
                f"channel {c}: a region of {ch.largest_region_px} px disagrees with "
                f"the input beyond {z_threshold:g}× the noise (> {region_max_px} px):"
                f" structure added or removed there"
            )
    return ConsistencyReport(
        channels=chans,
        error_map=errs,
        z_map=zs,
        flag=bool(reasons),
        reasons=reasons,
        thresholds={
            "largest_region_max_px": region_max_px,
            "inconsistent_fraction_max": fraction_max,
            "z_threshold": z_threshold,
            "smoothing_px": smoothing_px,
        },
    )
