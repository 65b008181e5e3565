"""Register a wide-field (LQ) image with a confocal (HQ) image of the same field.

Training a LQ -> HQ mapping needs pixel-aligned pairs, but the two images come from different
microscopes: different pixel size, a small rotation between cameras, a stage offset, and for
stacks different z ranges. :func:`align_pair` resamples LQ onto the HQ pixel grid, estimates
rotation and translation, matches z ranges, crops both to the common field of view and scores
the result so that a bad pair is rejected with a reason instead of poisoning a training set.

Conventions (all in HQ pixel units, ``(y, x)`` order, pixel centres at integer coordinates):

* Pixel-size resampling is edge-aligned (as ``skimage.transform.rescale``): LQ pixel ``p`` maps
  to ``scale * p + (scale - 1) / 2`` with ``scale = lq_pixel_um / hq_pixel_um``, so both images
  start at the same physical corner before rotation and translation.
* ``rotation_deg`` is a rotation about the centre of the (resampled) LQ field of view,
  counter-clockwise as displayed, the same sense as ``skimage.transform.rotate(img, angle)``.
* ``shift_yx`` is then added, the same sense as ``scipy.ndimage.shift``: content moves by it.
  So an LQ made by ``rotate(shift(hq_like, t), a)`` is corrected by ``rotation_deg = -a`` and
  ``shift_yx = -t``.

Estimation works on a *proxy*: per-channel percentile-normalised images summed over channels
(and averaged over z), band-passed (difference of Gaussians, 2 px to 1/16 of the field) and
windowed (Tukey), which keeps the very different noise, blur and background of wide-field and
confocal images from dominating.

* Rotation: log-polar transform of both Fourier magnitudes (translation invariant), whose
  angular shift gives the rotation modulo 180 deg; the candidates (that angle, +180 deg, and 0)
  are scored by the translation-invariant cross-correlation peak and the best one refined by a
  bounded search of +-1.5 deg on the same score.
* Translation: ``phase_cross_correlation`` with 1/50 px upsampling, first with each image's own
  window (any shift within half the field), then twice with the product of both windows so the
  windows do not pull it towards zero. Its unnormalised mode is used: phase whitening
  amplifies the wide-field noise (0.3 px errors on W2S against 0.1 px).
* Large images: rotation is searched on a grid of at most ``_ROTATION_SIZE`` px and translation
  on one of at most ``_SHIFT_SIZE`` px; the outputs are then warped once at full resolution
  (bicubic), only over the common field of view. A shift that is integral to within 0.1 px with
  no rotation and no scaling is applied as an exact copy, so registered pairs keep their noise.

Z stacks: the lateral alignment is estimated on z-averaged proxies; then every LQ plane is
compared with every HQ plane (NCC of the aligned, band-passed proxies). If both z steps are
given, LQ is first linearly interpolated along z onto the HQ step (z offsets are resolved to one
HQ step); otherwise the steps are taken as equal. Among contiguous overlaps sharing at least half
the depth of the shorter stack, the one whose planes are most nearly each other's best matches
wins (see ``_match_z``; plain mean NCC picks a neighbouring offset because all defocused planes
look alike). If only one side is a stack, its best-matching plane is used and outputs are CYX.

Score: per channel, the NCC of the aligned outputs over the common field of view after a
band-pass (DoG, sigma 2 and 32 HQ px), so it measures agreement of structure: without it any
two fields with a cell across the middle correlate (up to 0.8 per channel on mismatched W2S
fields). A pair is accepted if the *minimum* over channels is at least ``ncc_threshold``:
every channel is a training target, so one unrelated or empty channel rejects the pair.
Measured on W2S (512 px, 3 channels): the 80 registered pairs score 0.64-0.98 (min over
channels; 5th percentile 0.71, median 0.94), 80 mismatched pairs (field i against i + 37) at
most 0.13 (95th percentile 0.09); the default 0.4 sits in the middle of that gap and leaves
room for the lower scores of true wide-field/confocal pairs. Swapped channels are caught only
when they hold different structures: W2S channels 1 and 2 correlate up to 0.55 on one field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage, optimize
from skimage.filters import difference_of_gaussians, window
from skimage.registration import phase_cross_correlation
from skimage.transform import warp, warp_polar

from .image_io import MIN_SIZE  # pixels per side, for the inputs and for LQ once resampled

DEFAULT_NCC_THRESHOLD = 0.4
MIN_OVERLAP_FRACTION = 0.25  # common field of view / smaller field of view

_ROTATION_SIZE = 512  # longest side of the grid used for the rotation search
_SHIFT_SIZE = 1024  # longest side of the grid used for the translation
_ROTATION_SEARCH_DEG = 1.5  # half-width of the refinement around each rotation candidate
_SNAP_ROTATION_DEG = 0.05  # below the estimator's precision: not worth an interpolation
_SNAP_SHIFT_PX = 0.1
_SCORE_BAND = (2.0, 32.0)  # DoG sigmas (HQ px) of the score: structure, not background
_SIGMA_LOW = 2.0  # band-pass low cut, grid pixels
_WINDOW = ("tukey", 0.5)  # flat-topped: the periphery, where rotation shows most, counts
_TRUNCATE = 2.0  # Gaussian kernels cut at 2 sigma: the wide ones only estimate background
_PERCENTILES = (1.0, 99.5)
_PERCENTILE_SAMPLES = 1 << 20


@dataclass(frozen=True)
class Alignment:
    """What :func:`align_pair` found and applied; stored with the pair so it can be audited."""

    accepted: bool
    reason: str | None  # None when accepted; a sentence a person can act on otherwise
    scale: float  # LQ->HQ resampling factor applied
    rotation_deg: float  # rotation applied to the LQ image
    shift_yx: tuple[float, float]  # translation (px, in HQ pixel units) applied
    z_range_lq: tuple[int, int] | None  # [start, stop) planes used, None for 2-D
    z_range_hq: tuple[int, int] | None
    ncc: list[float]  # per channel, after alignment
    crop: tuple[int, int, int, int]  # y0, y1, x0, x1 in HQ coordinates of the common FOV

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (tuples become lists, numpy scalars become floats)."""
        d = asdict(self)
        d["scale"] = float(self.scale)
        d["rotation_deg"] = float(self.rotation_deg)
        d["shift_yx"] = [float(v) for v in self.shift_yx]
        for key in ("z_range_lq", "z_range_hq"):
            value = getattr(self, key)
            d[key] = None if value is None else [int(v) for v in value]
        d["ncc"] = [float(v) for v in self.ncc]
        d["crop"] = [int(v) for v in self.crop]
        return d


# ------------------------------------------------------------------------------ geometry
def _lq_to_hq_matrix(
    scale: float, rotation_deg: float, shift_yx: tuple[float, float], lq_shape: tuple[int, int]
) -> np.ndarray:
    """Homogeneous ``(x, y, 1)`` matrix mapping LQ pixel coordinates to HQ pixel coordinates."""
    sy = scale * lq_shape[0] / 2 - 0.5  # centre of the resampled LQ field of view
    sx = scale * lq_shape[1] / 2 - 0.5
    resample = np.array([[scale, 0, (scale - 1) / 2], [0, scale, (scale - 1) / 2], [0, 0, 1]])
    a = math.radians(rotation_deg)
    # Counter-clockwise on screen (y down) is this matrix in (x, y), as skimage's rotate.
    rot = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    to_c = np.array([[1, 0, -sx], [0, 1, -sy], [0, 0, 1]])
    back = np.array([[1, 0, sx + shift_yx[1]], [0, 1, sy + shift_yx[0]], [0, 0, 1]])
    return back @ rot @ to_c @ resample


def _downscale_matrix(factor: float) -> np.ndarray:
    """Edge-aligned map from HQ coordinates to a grid ``factor`` times coarser."""
    return np.array(
        [[1 / factor, 0, 0.5 / factor - 0.5], [0, 1 / factor, 0.5 / factor - 0.5], [0, 0, 1]]
    )


def _resample(
    image: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, int],
    order: int = 1,
    exact: bool = True,
    mode: str = "symmetric",
) -> np.ndarray:
    """Warp a 2-D image by ``matrix`` (input -> output coords), anti-aliased when shrinking."""
    zoom = math.sqrt(abs(np.linalg.det(matrix[:2, :2])))
    img = np.asarray(image, dtype=np.float32)
    if zoom < 1:
        # Same anti-aliasing sigma as skimage.transform.rescale.
        img = ndimage.gaussian_filter(img, (1 / zoom - 1) / 2, mode="mirror")
    if exact and (
        np.allclose(matrix[:2, :2], np.eye(2))
        and np.allclose(matrix[:2, 2], np.round(matrix[:2, 2]))
    ):
        # Pure integer translation: an exact copy, no interpolation of the noise texture.
        dy, dx = (int(round(v)) for v in matrix[[1, 0], 2])
        out = np.zeros(shape, np.float32)
        ys, xs = max(0, dy), max(0, dx)
        ye, xe = min(shape[0], img.shape[0] + dy), min(shape[1], img.shape[1] + dx)
        if ye > ys and xe > xs:
            out[ys:ye, xs:xe] = img[ys - dy : ye - dy, xs - dx : xe - dx]
        return out
    return warp(
        img,
        np.linalg.inv(matrix),
        output_shape=shape,
        order=order,
        mode=mode,
        preserve_range=True,
    ).astype(np.float32, copy=False)


def _row_intervals(
    matrix: np.ndarray, src_shape: tuple[int, int], dst_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per destination row, the first and last column whose source lies inside the source.

    The footprint of a rectangle under an affine map, clipped to the destination frame, is
    convex, so every row is one interval (empty when last < first).
    """
    inv = np.linalg.inv(matrix)
    rows = np.arange(dst_shape[0], dtype=float)
    lo = np.zeros_like(rows)
    hi = np.full_like(rows, dst_shape[1] - 1.0)
    for k, limit in ((0, src_shape[1] - 1.0), (1, src_shape[0] - 1.0)):
        a, b, c = inv[k]  # source_k = a * x + b * y + c
        const = b * rows + c
        if abs(a) < 1e-12:
            inside = (const >= -1e-9) & (const <= limit + 1e-9)
            hi = np.where(inside, hi, -1.0)
            continue
        x1, x2 = (-1e-9 - const) / a, (limit + 1e-9 - const) / a
        lo = np.maximum(lo, np.minimum(x1, x2))
        hi = np.minimum(hi, np.maximum(x1, x2))
    return np.ceil(lo).astype(int), np.floor(hi).astype(int)


def _largest_rectangle(first: np.ndarray, last: np.ndarray) -> tuple[int, int, int, int]:
    """Largest axis-aligned rectangle inside a convex region given by its row intervals."""
    best, crop = 0, (0, 0, 0, 0)
    for y0 in np.flatnonzero(last >= first):
        lo = np.maximum.accumulate(first[y0:])
        hi = np.minimum.accumulate(last[y0:])
        area = (hi - lo + 1) * np.arange(1, lo.size + 1)
        k = int(np.argmax(area))
        if area[k] > best and hi[k] >= lo[k]:
            best, crop = int(area[k]), (int(y0), int(y0 + k + 1), int(lo[k]), int(hi[k] + 1))
    return crop


# ------------------------------------------------------------------------------ proxies
def _normalise_channels(stack: np.ndarray) -> np.ndarray:
    """ZCYX -> ZYX: channels percentile-normalised then summed, so every channel counts."""
    z, c, h, w = stack.shape
    step = max(1, int(math.sqrt(z * h * w / _PERCENTILE_SAMPLES)))
    out = np.zeros((z, h, w), np.float32)
    for ch in range(c):
        lo, hi = np.percentile(stack[:, ch, ::step, ::step], _PERCENTILES)
        if hi > lo:
            out += np.clip((stack[:, ch].astype(np.float32) - lo) / (hi - lo), 0, 1)
    return out


class _Estimator:
    """Rotation and translation of a 2-D LQ proxy against a 2-D HQ proxy.

    Works on grids coarser than HQ when HQ is large, with both proxies band-passed once per
    grid; LQ is band-passed and windowed on its own unrotated canvas and only warped per trial.
    Both are placed on a canvas large enough for either, HQ at the origin.
    """

    def __init__(self, lq: np.ndarray, hq: np.ndarray, scale: float) -> None:
        self.lq, self.hq, self.scale = lq, hq, scale
        self._grids: dict[int, _Grid] = {}

    def grid(self, limit: int) -> _Grid:
        """Both proxies on a grid whose longest side is at most ``limit`` pixels."""
        if limit not in self._grids:
            factor = max(1.0, max(self.hq.shape) / limit)
            down = _downscale_matrix(factor)
            shape = (max(1, int(self.hq.shape[0] / factor)), max(1, int(self.hq.shape[1] / factor)))
            sigma_high = max(4.0, min(shape) / 16)
            hq = _band_pass(self.hq if factor == 1 else _resample(self.hq, down, shape), sigma_high)
            # LQ resampled (not rotated) onto its own canvas at the grid's pixel size.
            own = down @ _lq_to_hq_matrix(self.scale, 0.0, (0.0, 0.0), self.lq.shape)
            own_shape = (
                max(1, round(self.lq.shape[0] * self.scale / factor)),
                max(1, round(self.lq.shape[1] * self.scale / factor)),
            )
            lq = _band_pass(_resample(self.lq, own, own_shape), sigma_high)
            hq_window, lq_window = _window(shape), _window(own_shape)
            canvas = (max(shape[0], own_shape[0]), max(shape[1], own_shape[1]))
            self._grids[limit] = _Grid(
                factor=factor,
                shape=shape,
                canvas=canvas,
                own=own,
                sigma_high=sigma_high,
                hq=_pad(hq, canvas),
                hq_window=_pad(hq_window, canvas),
                hq_windowed=_pad(_windowed(hq, hq_window), canvas),
                lq=lq,
                lq_window=lq_window,
                lq_windowed=_windowed(lq, lq_window),
            )
        return self._grids[limit]

    def _render(
        self,
        g: _Grid,
        image: np.ndarray,
        rotation_deg: float,
        shift_yx: tuple[float, float],
        order: int = 3,
    ) -> np.ndarray:
        """An LQ own-canvas image, rotated and shifted onto the common canvas."""
        m = (
            _downscale_matrix(g.factor)
            @ _lq_to_hq_matrix(self.scale, rotation_deg, shift_yx, self.lq.shape)
            @ np.linalg.inv(g.own)
        )
        return _resample(image, m, g.canvas, order=order, exact=False, mode="constant")

    def correlation(self, rotation_deg: float) -> float:
        """Translation-invariant normalised cross-correlation peak at a given rotation.

        Each image keeps its own window (the LQ one turns with it), so the fields need not
        overlap yet.
        """
        g = self.grid(_ROTATION_SIZE)
        b = self._render(g, g.lq_windowed, rotation_deg, (0.0, 0.0))
        if not (g.hq_windowed.any() and b.any()):
            return 0.0
        _, error, _ = phase_cross_correlation(g.hq_windowed, b, normalization=None)
        return float(1 - error**2)

    def coarse_rotation(self) -> float:
        """Rotation from the log-polar transform of both Fourier magnitudes (mod 180 deg)."""
        g = self.grid(_ROTATION_SIZE)
        # Square, common size so that frequency bins are isotropic and identical on both sides.
        size = max(g.canvas)
        spectra = []
        for img in (g.hq_windowed, g.lq_windowed):
            spectra.append(np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(_pad(img, (size, size)))))))
        n_angles = 720
        polar = [
            warp_polar(
                s,
                center=(size // 2, size // 2),
                radius=size // 2,
                output_shape=(n_angles, size // 2),
                scaling="log",
            )[: n_angles // 2]
            for s in spectra
        ]
        shift, _, _ = phase_cross_correlation(
            polar[0], polar[1], upsample_factor=20, normalization=None
        )
        # One polar row is 360 / n_angles degrees; LQ content that must be turned
        # counter-clockwise to match appears at a higher polar angle.
        return -float(shift[0]) * 360.0 / n_angles

    def rotation(self) -> float:
        """Best rotation: candidates (log-polar estimate, +180, and 0) refined by a search."""
        coarse = self.coarse_rotation()
        candidates = {_wrap(coarse), _wrap(coarse + 180.0), 0.0}
        best, start = max((self.correlation(a), a) for a in candidates)
        result = optimize.minimize_scalar(
            lambda a: -self.correlation(a),
            bounds=(start - _ROTATION_SEARCH_DEG, start + _ROTATION_SEARCH_DEG),
            method="bounded",
            options={"xatol": 0.02},
        )
        return _wrap(float(result.x)) if -result.fun >= best else start

    def translation(self, rotation_deg: float) -> tuple[float, float]:
        """Sub-pixel cross-correlation: first with each image's own window (finds any shift
        within half the field), then twice with the product of both windows on both images,
        which removes the pull of the windows towards zero shift."""
        g = self.grid(_SHIFT_SIZE)
        b = self._render(g, g.lq_windowed, rotation_deg, (0.0, 0.0))
        if not (g.hq_windowed.any() and b.any()):
            return 0.0, 0.0
        # Unnormalised: phase whitening amplifies the LQ noise (0.3 px errors vs 0.1 px).
        shift, _, _ = phase_cross_correlation(
            g.hq_windowed, b, upsample_factor=50, normalization=None
        )
        for _ in range(2):
            t = (float(shift[0] * g.factor), float(shift[1] * g.factor))
            weight = g.hq_window * self._render(g, g.lq_window, rotation_deg, t, order=1)
            lq = self._render(g, g.lq, rotation_deg, t)
            a, b = _windowed(g.hq, weight), _windowed(lq, weight)
            if not (a.any() and b.any()):
                break
            delta, _, _ = phase_cross_correlation(a, b, upsample_factor=50, normalization=None)
            shift = shift + delta
        return float(shift[0] * g.factor), float(shift[1] * g.factor)


@dataclass(frozen=True)
class _Grid:
    """Proxies prepared for one working grid (``factor`` HQ pixels per grid pixel)."""

    factor: float
    shape: tuple[int, int]  # HQ on this grid
    canvas: tuple[int, int]  # large enough for HQ and the resampled LQ
    own: np.ndarray  # LQ pixel -> LQ own-canvas pixel at this grid's pixel size
    sigma_high: float  # band-pass high cut, grid pixels
    hq: np.ndarray  # band-passed, on the canvas
    hq_window: np.ndarray
    hq_windowed: np.ndarray
    lq: np.ndarray  # band-passed, on its own canvas
    lq_window: np.ndarray
    lq_windowed: np.ndarray


def _window(shape: tuple[int, int]) -> np.ndarray:
    return window(_WINDOW, shape).astype(np.float32)


def _windowed(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Image minus its weighted mean, times the weight: no edges, no DC peak."""
    total = float(weight.sum())
    mean = float((image * weight).sum()) / total if total > 0 else 0.0
    return ((image - mean) * weight).astype(np.float32)


def _pad(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-pad at the bottom and right (the origin stays put)."""
    return np.pad(image, [(0, shape[0] - image.shape[0]), (0, shape[1] - image.shape[1])])


def _band_pass(image: np.ndarray, sigma_high: float) -> np.ndarray:
    """Drop pixel noise and the slowly varying wide-field background (difference of Gaussians)."""
    return difference_of_gaussians(
        image, _SIGMA_LOW, sigma_high, mode="reflect", truncate=_TRUNCATE
    ).astype(np.float32)


def _wrap(angle: float) -> float:
    """Angle in (-180, 180]."""
    a = math.fmod(angle + 180.0, 360.0)
    return (a + 360.0 if a <= 0 else a) - 180.0


def _score(lq: np.ndarray, hq: np.ndarray) -> float:
    """NCC of one channel (ZYX) after a per-plane band-pass.

    Without the band-pass, any two fields with a cell across the middle correlate (up to 0.8 on
    mismatched W2S fields); with it, the minimum over channels stays below 0.15 for them.
    """
    sigmas = [(0, s, s) for s in _SCORE_BAND]
    return _ncc(
        difference_of_gaussians(lq, *sigmas, mode="reflect", truncate=_TRUNCATE),
        difference_of_gaussians(hq, *sigmas, mode="reflect", truncate=_TRUNCATE),
    )


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays; 0 when either is constant."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else 0.0


# ------------------------------------------------------------------------------ validation
def _as_stack(name: str, image: np.ndarray) -> np.ndarray:
    """CYX or ZCYX array -> ZCYX view (no float copy of a big stack), or a clear ValueError."""
    arr = np.asarray(image)
    if arr.ndim not in (3, 4):
        raise ValueError(f"{name} must be CYX or ZCYX (3-D or 4-D), got shape {arr.shape}")
    if not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or arr.dtype == bool
    ):
        raise ValueError(f"{name} must hold integers or floats, got dtype {arr.dtype}")
    if min(arr.shape[-2:]) < MIN_SIZE:
        raise ValueError(
            f"{name} is {arr.shape[-2]}x{arr.shape[-1]} pixels; at least {MIN_SIZE}x{MIN_SIZE} "
            "are needed to register it"
        )
    if 0 in arr.shape:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr if arr.ndim == 4 else arr[None]


def _positive(name: str, value: float | None, required: bool = True) -> float | None:
    if value is None and not required:
        return None
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------ z matching
def _match_z(
    lq_planes: np.ndarray, hq_planes: np.ndarray, min_overlap: int
) -> tuple[int, int, int]:
    """Best contiguous z overlap of two aligned stacks of proxies: (lq_start, hq_start, length).

    Plain NCC barely separates neighbouring defocused planes (all blurred planes look alike),
    so each pair is scored by how far its NCC falls short of the best NCC of its LQ plane and
    of its HQ plane; the overlap whose pairs are each other's best matches wins, and sharp,
    discriminative planes weigh the most. Ties go to the longer overlap.
    """

    def unit(p: np.ndarray) -> np.ndarray:
        v = p.reshape(p.shape[0], -1).astype(np.float64)
        v -= v.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)

    ncc = unit(lq_planes) @ unit(hq_planes).T  # [lq plane, hq plane]
    shortfall = (ncc - ncc.max(axis=1, keepdims=True)) + (ncc - ncc.max(axis=0, keepdims=True))
    nl, nh = ncc.shape
    best: tuple[float, int, int, int] | None = None
    for offset in range(-(nl - 1), nh):  # hq index = lq index + offset
        l0, h0 = max(0, -offset), max(0, offset)
        n = min(nl - l0, nh - h0)
        if n < min_overlap:
            continue
        score = float(np.mean(shortfall[np.arange(l0, l0 + n), np.arange(h0, h0 + n)]))
        if best is None or (score, n) > (best[0], best[3]):
            best = (score, l0, h0, n)
    assert best is not None  # min_overlap <= min(nl, nh) guarantees a candidate
    return best[1], best[2], best[3]


# ------------------------------------------------------------------------------ public API
def align_pair(
    lq: np.ndarray,
    hq: np.ndarray,
    lq_pixel_um: float,
    hq_pixel_um: float,
    lq_z_step_um: float | None = None,
    hq_z_step_um: float | None = None,
    ncc_threshold: float = DEFAULT_NCC_THRESHOLD,
) -> tuple[Alignment, np.ndarray | None, np.ndarray | None]:
    """Align a wide-field LQ image to a confocal HQ image of the same field.

    ``lq`` and ``hq`` are CYX or ZCYX arrays with the same channel count. Returns the alignment
    and the aligned float32 ``(lq, hq)`` on the HQ pixel grid, cropped to the common field of
    view, with identical shapes (ZCYX if both inputs are stacks, CYX otherwise) — also when the
    correlation gate rejects the pair, so that a person can review it and accept it by hand —
    or ``(alignment, None, None)`` when no alignment could be found at all. Intensities are not
    rescaled.
    Raises ValueError for inputs that cannot be a pair (see the module docstring for the method).
    """
    lq_stack, hq_stack, lq_px, hq_px, lq_dz, hq_dz, threshold = _checked_inputs(
        lq, hq, lq_pixel_um, hq_pixel_um, lq_z_step_um, hq_z_step_um, ncc_threshold
    )
    assert lq_px is not None and hq_px is not None
    scale = lq_px / hq_px
    lq_hw = (lq_stack.shape[2], lq_stack.shape[3])
    hq_hw = (hq_stack.shape[2], hq_stack.shape[3])
    if min(lq_hw) * scale < MIN_SIZE:
        raise ValueError(
            f"lq is only {lq_hw[0] * scale:.1f}x{lq_hw[1] * scale:.1f} HQ pixels once resampled "
            f"(scale {scale:.3g}); check the pixel sizes"
        )
    both_stacks = np.ndim(lq) == 4 and np.ndim(hq) == 4

    # Lateral alignment on z-averaged proxies.
    lq_planes, hq_planes = _normalise_channels(lq_stack), _normalise_channels(hq_stack)
    lq_proxy, hq_proxy = lq_planes.mean(axis=0), hq_planes.mean(axis=0)
    for name, proxy in (("lq", lq_proxy), ("hq", hq_proxy)):
        if not proxy.std() > 1e-6:
            reason = (
                f"{name} shows no structure (every channel is nearly constant), so it "
                "cannot be aligned; check the file"
            )
            return (
                Alignment(False, reason, scale, 0.0, (0.0, 0.0), None, None, [], (0, 0, 0, 0)),
                None,
                None,
            )
    est = _Estimator(lq_proxy, hq_proxy, scale)
    rotation = est.rotation()
    shift = est.translation(rotation)
    if (
        scale == 1
        and abs(rotation) < _SNAP_ROTATION_DEG
        and max(abs(v - round(v)) for v in shift) < _SNAP_SHIFT_PX
    ):
        rotation, shift = 0.0, (float(round(shift[0])), float(round(shift[1])))
    matrix = _lq_to_hq_matrix(scale, rotation, shift, lq_hw)

    first, last = _row_intervals(matrix, lq_hw, hq_hw)
    crop = _largest_rectangle(first, last)
    y0, y1, x0, x1 = crop
    partial = Alignment(False, None, scale, rotation, shift, None, None, [], crop)
    overlap = (y1 - y0) * (x1 - x0) / min(hq_hw[0] * hq_hw[1], lq_hw[0] * lq_hw[1] * scale**2)
    if overlap < MIN_OVERLAP_FRACTION or min(y1 - y0, x1 - x0) < MIN_SIZE:
        reason = (
            f"the images share only {100 * overlap:.0f}% of the smaller field of view after "
            f"alignment (shift {shift[0]:.1f}, {shift[1]:.1f} px, rotation {rotation:.1f} deg); "
            "check that they show the same field and that the pixel sizes are right"
        )
        return replace(partial, reason=reason), None, None

    # Z matching on aligned per-plane proxies, on the coarse grid.
    z_interp = _lq_z_positions(lq_stack.shape[0], lq_dz, hq_dz, both_stacks)
    l0, h0, nz = _match_planes(est, matrix, lq_planes, hq_planes, z_interp, lq_hw)

    # Apply: warp only the common field of view, cropping HQ alike.
    out_matrix = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ matrix
    lq_out = np.stack(
        [
            np.stack(
                [
                    _resample(
                        _interp_plane(lq_stack[:, ch], z), out_matrix, (y1 - y0, x1 - x0), order=3
                    )
                    for ch in range(lq_stack.shape[1])
                ]
            )
            for z in z_interp[l0 : l0 + nz]
        ]
    )
    hq_out = np.ascontiguousarray(hq_stack[h0 : h0 + nz, :, y0:y1, x0:x1], dtype=np.float32)

    ncc = [_score(lq_out[:, ch], hq_out[:, ch]) for ch in range(lq_out.shape[1])]
    zi = z_interp[l0 : l0 + nz]
    z_lq = (int(math.floor(zi[0] + 1e-9)), int(math.ceil(zi[-1] - 1e-9)) + 1)
    alignment = replace(
        partial,
        ncc=ncc,
        z_range_lq=z_lq if np.ndim(lq) == 4 else None,
        z_range_hq=(h0, h0 + nz) if np.ndim(hq) == 4 else None,
    )
    alignment = _gate(alignment, ncc, threshold)
    if not both_stacks:
        return alignment, lq_out[0], hq_out[0]
    return alignment, lq_out, hq_out


def _checked_inputs(  # type: ignore[no-untyped-def]
    lq, hq, lq_pixel_um, hq_pixel_um, lq_z_step_um, hq_z_step_um, ncc_threshold
):
    """ZCYX stacks, positive sizes and a threshold in [-1, 1], or a ValueError naming the input."""
    lq_stack, hq_stack = _as_stack("lq", lq), _as_stack("hq", hq)
    if lq_stack.shape[1] != hq_stack.shape[1]:
        raise ValueError(
            f"lq has {lq_stack.shape[1]} channels but hq has {hq_stack.shape[1]}; "
            "a pair needs the same channels on both sides"
        )
    lq_px = _positive("lq_pixel_um", lq_pixel_um)
    hq_px = _positive("hq_pixel_um", hq_pixel_um)
    lq_dz = _positive("lq_z_step_um", lq_z_step_um, required=False)
    hq_dz = _positive("hq_z_step_um", hq_z_step_um, required=False)
    if (lq_dz is None) != (hq_dz is None):
        raise ValueError("give both lq_z_step_um and hq_z_step_um, or neither (equal steps)")
    try:
        threshold = float(ncc_threshold)
    except (TypeError, ValueError):
        threshold = math.nan
    if not -1 <= threshold <= 1:
        raise ValueError(f"ncc_threshold must be a number in [-1, 1], got {ncc_threshold!r}")
    assert lq_px is not None and hq_px is not None
    return lq_stack, hq_stack, lq_px, hq_px, lq_dz, hq_dz, threshold


def _lq_z_positions(
    nz_l: int, lq_dz: float | None, hq_dz: float | None, both_stacks: bool
) -> np.ndarray:
    """Fractional LQ plane indices at the HQ z step (every LQ plane when steps are unknown)."""
    if lq_dz is not None and hq_dz is not None and both_stacks and nz_l > 1:
        depth = (nz_l - 1) * lq_dz
        return np.minimum(np.arange(0.0, depth + 1e-6 * hq_dz, hq_dz) / lq_dz, nz_l - 1)
    return np.arange(nz_l, dtype=float)


def _match_planes(  # type: ignore[no-untyped-def]
    est, matrix: np.ndarray, lq_planes, hq_planes, z_interp: np.ndarray, lq_hw: tuple[int, int]
) -> tuple[int, int, int]:
    """(lq_start, hq_start, length) of the best z overlap, scored on the coarse grid."""
    nz_l, nz_h = len(lq_planes), len(hq_planes)
    if nz_l == 1 and nz_h == 1:
        return 0, 0, 1
    g = est.grid(_ROTATION_SIZE)
    factor, shape = g.factor, g.shape
    m = _downscale_matrix(factor) @ matrix
    fw, lw = _row_intervals(m, lq_hw, shape)
    mask = np.zeros(shape, bool)
    for row in np.flatnonzero(lw >= fw):
        mask[row, fw[row] : lw[row] + 1] = True
    lq_rendered = np.stack(
        [
            _band_pass(_resample(_interp_plane(lq_planes, z), m, shape), g.sigma_high)[mask]
            for z in z_interp
        ]
    )
    hq_rendered = np.stack(
        [
            _band_pass(
                p if factor == 1 else _resample(p, _downscale_matrix(factor), shape),
                g.sigma_high,
            )[mask]
            for p in hq_planes
        ]
    )
    min_overlap = max(1, math.ceil(min(len(z_interp), nz_h) / 2))
    return _match_z(lq_rendered, hq_rendered, min_overlap)


def _gate(alignment: Alignment, ncc: list[float], threshold: float) -> Alignment:
    """Accept when every channel's NCC reaches the threshold; otherwise say which fell short."""
    worst = int(np.argmin(ncc))
    if ncc[worst] < threshold:
        reason = (
            f"alignment score too low: NCC {ncc[worst]:.2f} in channel {worst} is below the "
            f"threshold {threshold:.2f} (per channel: "
            + ", ".join(f"{v:.2f}" for v in ncc)
            + "); the images may not show the same field, or a channel may be empty or swapped"
        )
        # Keep the arrays: a person may look at the pair and accept it against the gate.
        return replace(alignment, reason=reason)
    return replace(alignment, accepted=True)


def _interp_plane(stack: np.ndarray, z: float) -> np.ndarray:
    """Plane at fractional index ``z`` of a stack (linear in z), without copying whole planes."""
    k = min(int(math.floor(z)), stack.shape[0] - 1)
    t = z - k
    if t < 1e-6 or k + 1 >= stack.shape[0]:
        return stack[k]
    return (1 - t) * stack[k] + t * stack[k + 1]
