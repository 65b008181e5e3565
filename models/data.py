"""Data preparation: normalisation, the split by field, patch sampling and augmentation.

Numpy only (no TensorFlow). Images are ``CYX`` float arrays here; the training loop converts
batches to the networks' ``NHWC`` layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

EPS = 1e-6
ALIGN = 64  # bytes: TensorFlow's CPU kernels need their tensors aligned to this (Eigen)
HISTOGRAM_CHUNK = 1 << 16  # values cast to indices at a time: the cast stays in cache


def aligned_empty(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an :data:`ALIGN` boundary, so
    TensorFlow can take it without a copy (``models.call_paths.to_tensor``)."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + nbytes].view(dt).reshape(shape)


# ---------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class Normalization:
    """Per-image, per-channel percentile normalisation ``(x − p_low) / (p_high − p_low)``.

    Its parameters (the percentiles) are saved with a model, so inference normalises a new image
    exactly as the training images were, and maps the output back with the *input's* own
    percentiles (``invert_hwc_into``), i.e. into the input's intensity scale.
    """

    low: float = 1.0
    high: float = 99.8

    def params(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``(lo, hi)`` of a ``CYX`` image, each of shape ``(C,)``.

        Camera images hold integers: pass them in their integer dtype and the percentiles come
        from a histogram (the same values as ``np.percentile``, about 5× faster on a 2048²
        channel, where sorting was a tenth of the whole prediction's time).
        """
        a = np.asarray(image)
        flat = a.reshape(a.shape[0], -1)
        qs = (self.low, self.high)
        if np.issubdtype(a.dtype, np.integer) and a.size:
            lohi = np.array([percentiles_of_integers(ch, qs) for ch in flat], np.float64).T
        else:
            lohi = np.percentile(flat.astype(np.float32, copy=False), qs, axis=1)
        lo, hi = lohi.astype(np.float32)
        return lo, hi

    def apply_hwc(self, image: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """:meth:`apply` written straight into a contiguous ``YXC`` array (the networks'
        layout), without an intermediate ``CYX`` copy. Each channel is normalised in a
        contiguous scratch plane and written once into the interleaved result (a strided pass
        fewer), which is :data:`ALIGN`-ed so the network call need not copy it."""
        scale = np.maximum(hi - lo, EPS)
        out = aligned_empty((*image.shape[1:], image.shape[0]))
        plane = np.empty(image.shape[1:], np.float32)
        for c in range(image.shape[0]):
            np.subtract(image[c], lo[c], out=plane, dtype=np.float32, casting="unsafe")
            plane /= scale[c]
            out[..., c] = plane
        return out

    @staticmethod
    def invert_hwc_into(
        image_hwc: np.ndarray, lo: np.ndarray, hi: np.ndarray, out_cyx: np.ndarray
    ) -> None:
        """Undo :meth:`apply` on a ``YXC`` prediction, writing the ``CYX`` result into
        ``out_cyx`` (the caller's output array: no intermediate copy)."""
        scale = np.maximum(hi - lo, EPS)
        for c in range(out_cyx.shape[0]):
            np.multiply(image_hwc[..., c], scale[c], out=out_cyx[c])
            out_cyx[c] += lo[c]

    @staticmethod
    def apply(image: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        scale = np.maximum(hi - lo, EPS)
        return ((np.asarray(image, np.float32) - lo[:, None, None]) / scale[:, None, None]).astype(
            np.float32
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        lo, hi = self.params(image)
        return self.apply(image, lo, hi)

    def to_dict(self) -> dict:
        return {"method": "percentile", "per": "image-channel", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        return cls(low=float(d["low"]), high=float(d["high"]))


def percentiles_of_integers(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """``np.percentile(values, qs)`` (linear interpolation) of integer ``values`` from their
    histogram: linear time instead of a partial sort.

    The values are shifted to indices and counted :data:`HISTOGRAM_CHUNK` at a time, so the
    index array stays in cache (on a 2048² ``uint16`` channel 5 ms instead of 9 ms).
    """
    v = np.asarray(values).ravel()
    lo_v = int(v.min())
    span = int(v.max()) - lo_v
    if span >= 1 << 24:  # a histogram that large costs more than it saves
        return [float(x) for x in np.percentile(v, qs)]
    if not np.can_cast(v.dtype, np.intp):  # uint64: shift in its own dtype first
        v = v - v.dtype.type(lo_v)
        lo_v, offset = 0, lo_v
    else:
        offset = lo_v
    counts = np.zeros(span + 1, np.intp)
    idx = np.empty(min(v.size, HISTOGRAM_CHUNK), np.intp)
    for start in range(0, v.size, HISTOGRAM_CHUNK):
        part = v[start : start + HISTOGRAM_CHUNK]
        k = idx[: part.size]
        np.subtract(part, lo_v, out=k, dtype=np.intp, casting="unsafe")
        counts += np.bincount(k, minlength=span + 1)
    return percentiles_of_counts(counts, offset, qs)


def percentiles_of_counts(counts: np.ndarray, offset: int, qs: Sequence[float]) -> list[float]:
    """``np.percentile`` (linear interpolation) of the integers whose histogram is ``counts``
    (``counts[i]`` values equal to ``offset + i``): what an image read block by block adds up
    to gives the same percentiles as the whole image in memory."""
    cum = np.cumsum(counts)
    n = int(cum[-1])

    def kth(k: int) -> float:  # the k-th smallest value (0-based)
        return float(offset + int(np.searchsorted(cum, k, side="right")))

    result = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        k = int(math.floor(pos))
        t = pos - k
        a = kth(k)
        b = kth(min(k + 1, n - 1))
        # numpy's lerp: exact at both ends
        result.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))
    return result


def fit_to_input(target: np.ndarray, lq: np.ndarray) -> np.ndarray:
    """The ``CYX`` HQ ``target`` mapped, channel by channel, by the scale and offset that best
    fit it to the normalised LQ input ``lq`` (least squares: the noisy LQ regressed on the
    nearly clean HQ, so the scale is not attenuated by the LQ's noise).

    Why: each side is normalised by its own percentiles, and the LQ's are stretched by its
    noise, so between pairs the HQ-to-LQ intensity ratio varies (on the W2S training fields
    from 0.42 to 0.95, 5th to 95th percentile). A network trained on such targets must guess
    that per-image ratio from a patch, and does so at the cost of structure: on W2S its
    training loss fell by 40 % while the protocol's PSNR (which refits scale and offset) fell
    by 1.4 dB. Fitted targets leave only what the score measures. A channel whose fit is not
    positive (no shared structure, e.g. misregistered) keeps its percentile normalisation.
    """
    from .metrics import minmse_scale_offset

    out = np.array(target, dtype=np.float32, copy=True)
    for c in range(out.shape[0]):
        scale, offset = minmse_scale_offset(out[c], lq[c])
        if scale > 0 and math.isfinite(scale):
            out[c] = scale * out[c] + offset
    return out


def as_cyx(image: np.ndarray, name: str = "image") -> np.ndarray:
    """A 2-D ``YX`` or 3-D ``CYX`` array as float32 ``CYX``."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name}: expected a YX or CYX array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected a real-valued array, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return a


# ---------------------------------------------------------------------- split
def split_by_field(
    field_ids: Sequence, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Indices ``(train, val)`` such that no field appears on both sides.

    All images that share a field id go to the same side; the split is done on the original
    images, before any augmentation or patch sampling. With ``val_fraction > 0`` and at least two
    fields, at least one field goes to validation.
    """
    ids = [str(f) for f in field_ids]
    fields_ = sorted(set(ids))
    if val_fraction <= 0 or len(fields_) < 2:
        return list(range(len(ids))), []
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(fields_)))
    n_val = min(len(fields_) - 1, max(1, int(math.ceil(val_fraction * len(fields_)))))
    val_fields = {fields_[i] for i in order[:n_val]}
    train = [i for i, f in enumerate(ids) if f not in val_fields]
    val = [i for i, f in enumerate(ids) if f in val_fields]
    return train, val


# ---------------------------------------------------------------------- patches
class PatchSampler:
    """Random, foreground-biased, identically augmented ``(lq, hq)`` patch batches.

    A patch position is eligible when at least ``min_fraction`` of its pixels have a normalised
    HQ value (maximum over channels) above ``threshold``; near-empty background patches are
    skipped. If an image has no eligible position, all its positions are eligible. Images are
    drawn in proportion to their number of eligible positions.

    Augmentation is applied identically to LQ and HQ: random flips of both axes, random 90°
    rotations and (``translate > 0``) a random integer shift of the content with reflected
    borders. Random crop positions already realise every integer translation of the image.

    ``sample(rng)`` returns ``(lq, hq)`` float32 arrays of shape ``(batch, P, P, C)``.
    """

    def __init__(
        self,
        lq: Sequence[np.ndarray],
        hq: Sequence[np.ndarray],
        patch_size: int,
        batch_size: int,
        threshold: float = 0.2,
        min_fraction: float = 0.02,
        flips: bool = True,
        rot90: bool = True,
        translate: int = 0,
    ) -> None:
        if len(lq) != len(hq) or not lq:
            raise ValueError("need the same, non-zero number of LQ and HQ images")
        self.lq = [np.ascontiguousarray(a, dtype=np.float32) for a in lq]
        self.hq = [np.ascontiguousarray(a, dtype=np.float32) for a in hq]
        self.p = int(patch_size)
        self.batch_size = int(batch_size)
        self.flips, self.rot90, self.translate = flips, rot90, int(translate)
        self.positions: list[np.ndarray] = []
        self.shapes: list[tuple[int, int]] = []
        for i, (a, b) in enumerate(zip(self.lq, self.hq, strict=True)):
            if a.shape != b.shape:
                raise ValueError(f"pair {i}: LQ shape {a.shape} != HQ shape {b.shape}")
            if min(a.shape[1:]) < self.p:
                raise ValueError(f"pair {i}: image {a.shape[1:]} smaller than patch {self.p}")
            self.positions.append(self._eligible(b, threshold, min_fraction))
            self.shapes.append(a.shape[1:])
        counts = np.array([len(p) for p in self.positions], dtype=np.float64)
        self.weights = counts / counts.sum()

    def _eligible(self, hq: np.ndarray, threshold: float, min_fraction: float) -> np.ndarray:
        p = self.p
        h, w = hq.shape[1:]
        mask = (hq.max(axis=0) > threshold).astype(np.float32)
        frac = ndimage.uniform_filter(mask, size=p, mode="constant")
        # uniform_filter centres the window: top-left (y, x) <-> centre (y + p//2, x + p//2)
        c0 = p // 2
        frac = frac[c0 : c0 + h - p + 1, c0 : c0 + w - p + 1]
        ok = np.flatnonzero(frac.ravel() >= min_fraction - 1e-6)
        if ok.size == 0:
            ok = np.arange(frac.size)
        return ok.astype(np.int64)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p, c = self.p, self.lq[0].shape[0]
        x = np.empty((self.batch_size, p, p, c), np.float32)
        y = np.empty_like(x)
        imgs = rng.choice(len(self.lq), size=self.batch_size, p=self.weights)
        for k, i in enumerate(imgs):
            pos = self.positions[i][rng.integers(len(self.positions[i]))]
            w_valid = self.shapes[i][1] - p + 1
            y0, x0 = divmod(int(pos), w_valid)
            a = self.lq[i][:, y0 : y0 + p, x0 : x0 + p]
            b = self.hq[i][:, y0 : y0 + p, x0 : x0 + p]
            a, b = self._augment(a, b, rng)
            x[k] = np.moveaxis(a, 0, -1)
            y[k] = np.moveaxis(b, 0, -1)
        return x, y

    def _augment(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator):
        if self.flips:
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            if rng.random() < 0.5:
                a, b = a[:, :, ::-1], b[:, :, ::-1]
        if self.rot90:
            k = int(rng.integers(4))
            if k:
                a, b = np.rot90(a, k, axes=(1, 2)), np.rot90(b, k, axes=(1, 2))
        if self.translate:
            dy, dx = (int(v) for v in rng.integers(-self.translate, self.translate + 1, 2))
            if dy or dx:
                a, b = _shift_reflect(a, dy, dx), _shift_reflect(b, dy, dx)
        return a, b


def _shift_reflect(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    p = max(abs(dy), abs(dx))
    padded = np.pad(a, ((0, 0), (p, p), (p, p)), mode="reflect")
    h, w = a.shape[1:]
    return padded[:, p - dy : p - dy + h, p - dx : p - dx + w]


def rng_state(rng: np.random.Generator) -> dict:
    """JSON-serialisable state of a numpy Generator."""
    return rng.bit_generator.state


def rng_from_state(state: dict) -> np.random.Generator:
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)
