"""A physics-based simulator of cross-system pairs (wide-field LQ, confocal HQ) – numpy/scipy only.

Specimen: three channels like the paper's fibroblasts – nuclei with textured chromatin
(Hoechst, 461 nm), actin filaments and stress-fibre bundles (AF488, 520 nm), curved microtubules
radiating from the nucleus (AF555, 565 nm) – in the focal plane, plus out-of-focus structures
2 µm above and below it.

Wide-field system (LQ): Born–Wolf PSF at NA 1.3 (oil, n = 1.515) for the in-focus plane and the
defocused Born–Wolf PSF for the other planes, whose light all reaches the camera as haze; a
camera with Poisson shot noise, Gaussian read noise and an offset.

Confocal system (HQ): NA 1.4, PSF = excitation × emission Born–Wolf PSFs (≈ 1 Airy unit pinhole),
which is narrower; the pinhole rejects most out-of-focus light (a small leak remains); more
photons and low read noise.

Misregistration: the HQ side may see the specimen shifted (pixels), rotated (degrees, about the
image centre) and at a different pixel size (``scale`` = HQ pixel size / LQ pixel size).
``meta["hq_to_lq"]`` is the 3 × 3 homogeneous matrix mapping an HQ pixel coordinate ``(y, x, 1)``
to the LQ pixel coordinate of the same specimen point; the ideal aligner recovers it.

Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve
from skimage.draw import line_aa

from .baselines import born_wolf_psf

WAVELENGTHS_NM = (461.0, 520.0, 565.0)
EXCITATION_NM = (405.0, 488.0, 555.0)
CHANNEL_NAMES = ("nuclei", "actin", "microtubules")
DEFOCUS_UM = (-2.0, 2.0)


def _draw_curve(
    img: np.ndarray,
    rng: np.random.Generator,
    start,
    angle: float,
    length: int,
    curvature: float,
    intensity: float,
    step: float = 1.5,
) -> None:
    h, w = img.shape
    y, x = start
    for _ in range(int(length / step)):
        angle += rng.normal(0.0, curvature)
        y2, x2 = y + step * math.sin(angle), x + step * math.cos(angle)
        rr, cc, val = line_aa(int(round(y)), int(round(x)), int(round(y2)), int(round(x2)))
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        img[rr[ok], cc[ok]] += intensity * val[ok]
        y, x = y2, x2
        if not (-20 < y < h + 20 and -20 < x < w + 20):
            break


def _cells(shape, rng, n_cells):
    h, w = shape
    return [
        (
            rng.uniform(0.15, 0.85) * h,
            rng.uniform(0.15, 0.85) * w,
            rng.uniform(0.06, 0.1) * min(h, w),
            rng.uniform(0, math.pi),
        )
        for _ in range(n_cells)
    ]


def specimen(
    shape: tuple[int, int], rng: np.random.Generator, n_cells: int = 2, density: float = 1.0
) -> np.ndarray:
    """A 3-channel fluorophore density (float64, CYX, roughly 0..1) on the given grid."""
    h, w = shape
    out = np.zeros((3, h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    for cy, cx, r, th in _cells(shape, rng, n_cells):
        # nucleus: an ellipse with chromatin texture
        a, b = r, r * rng.uniform(0.6, 0.9)
        dy, dx = yy - cy, xx - cx
        u = (dx * math.cos(th) + dy * math.sin(th)) / a
        v = (-dx * math.sin(th) + dy * math.cos(th)) / b
        mask = ndimage.gaussian_filter((u * u + v * v <= 1).astype(float), 1.0)
        tex = ndimage.gaussian_filter(rng.random((h, w)), 1.5)
        tex = (tex - tex.min()) / (np.ptp(tex) + 1e-9)
        out[0] += mask * (0.5 + 0.8 * tex)
        # actin: straight-ish bundles across the cell, some bright stress fibres
        for _ in range(int(12 * density)):
            ang = th + rng.normal(0, 0.35)
            off = rng.normal(0, 1.6 * r)
            sy = cy + off * math.cos(ang) - 2.5 * r * math.sin(ang)
            sx = cx - off * math.sin(ang) - 2.5 * r * math.cos(ang)
            _draw_curve(
                out[1],
                rng,
                (sy, sx),
                ang,
                int(5 * r),
                0.01,
                rng.uniform(0.4, 1.0) * (2.0 if rng.random() < 0.25 else 1.0),
            )
        # microtubules: curved filaments radiating from near the nucleus
        for _ in range(int(25 * density)):
            ang = rng.uniform(0, 2 * math.pi)
            sy, sx = cy + 0.8 * r * math.sin(ang), cx + 0.8 * r * math.cos(ang)
            _draw_curve(
                out[2], rng, (sy, sx), ang, int(rng.uniform(2, 4) * r), 0.08, rng.uniform(0.5, 1.0)
            )
    # cytoplasmic background for the filament channels
    cyto = ndimage.gaussian_filter(out[0] > 0.05, 6 * max(1, min(h, w) // 128)).astype(float)
    out[1] += 0.05 * cyto
    out[2] += 0.05 * cyto
    for c in range(3):
        m = np.percentile(out[c], 99.9)
        if m > 0:
            out[c] /= m
    return out


def _confocal_psf(na, n, px, em, ex):
    a = born_wolf_psf(na, n, px, em)
    b = born_wolf_psf(na, n, px, ex, size=a.shape[0])
    p = a * b
    return p / p.sum()


def _transform(img: np.ndarray, mat: np.ndarray, out_shape) -> np.ndarray:
    # mat maps output (HQ) pixel coords -> input (LQ / specimen) coords
    return ndimage.affine_transform(
        img,
        mat[:2, :2],
        offset=mat[:2, 2],
        output_shape=out_shape,
        order=1,
        mode="constant",
        cval=0.0,
    )


def hq_to_lq_matrix(
    shape_lq, shape_hq, shift=(0.0, 0.0), rotation_deg=0.0, scale=1.0
) -> np.ndarray:
    """Homogeneous matrix: HQ pixel ``(y, x, 1)`` -> LQ pixel of the same specimen point.

    The HQ grid has pixels ``scale`` times the LQ's, is rotated by ``rotation_deg`` about the
    image centre, and is shifted by ``shift`` LQ pixels.
    """
    th = math.radians(rotation_deg)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]) * scale
    c_hq = (np.asarray(shape_hq, float) - 1) / 2
    c_lq = (np.asarray(shape_lq, float) - 1) / 2
    m = np.eye(3)
    m[:2, :2] = rot
    m[:2, 2] = c_lq + np.asarray(shift, float) - rot @ c_hq
    return m


def make_pair(
    shape: tuple[int, int] = (256, 256),
    seed: int = 0,
    *,
    n_cells: int = 2,
    pixel_size_um: float = 0.1,
    shift: Sequence[float] = (0.0, 0.0),
    rotation_deg: float = 0.0,
    scale: float = 1.0,
    wf_na: float = 1.3,
    cf_na: float = 1.4,
    immersion_index: float = 1.515,
    wf_photons: float = 60.0,
    cf_photons: float = 400.0,
    haze: float = 1.0,
    read_noise_e: float = 2.0,
    camera_offset: float = 100.0,
    dtype: str = "uint16",
    hq_system: str = "confocal",
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Simulate one wide-field (LQ) / confocal (HQ) pair of the same field.

    ``hq_system="widefield"`` makes a denoising pair instead: the HQ side is the LQ's own
    wide-field image (same optics, haze and grid; ``shift``/``rotation_deg``/``scale`` still
    apply) recorded with ``cf_photons`` photons and low read noise, as a frame average is.

    Returns ``(lq, hq, meta)``: ``CYX`` arrays with 3 channels (uint16 camera counts by default,
    or float32 with ``dtype="float32"``); ``lq`` has ``shape``, ``hq`` has
    ``round(shape / scale)``; ``meta`` holds the optics, noise settings, the misregistration
    (``shift``, ``rotation_deg``, ``scale``, ``hq_to_lq``) and the noise-free images'
    statistics. ``wf_photons`` / ``cf_photons``: expected photons at a bright in-focus structure.
    """
    if dtype not in ("uint16", "float32"):
        raise ValueError(f"dtype must be 'uint16' or 'float32', got {dtype!r}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0 (got {scale})")
    if hq_system not in ("confocal", "widefield"):
        raise ValueError(f"hq_system must be 'confocal' or 'widefield', got {hq_system!r}")
    rng = np.random.default_rng(seed)
    h, w = shape
    # simulate on a margin so the PSF and the misregistration do not see the border
    pad = int(math.ceil(0.1 * max(h, w) + abs(shift[0]) + abs(shift[1]) + 16))
    big = (h + 2 * pad, w + 2 * pad)
    focal = specimen(big, rng, n_cells=n_cells)
    off_planes = [specimen(big, rng, n_cells=max(1, n_cells), density=0.6) for _ in DEFOCUS_UM]

    lq = np.empty((3, h, w), np.float64)
    hq_shape = (int(round(h / scale)), int(round(w / scale)))
    hq = np.empty((3, *hq_shape), np.float64)
    # HQ coords -> big-grid coords: the LQ crop starts at (pad, pad)
    m_lq = hq_to_lq_matrix(shape, hq_shape, shift, rotation_deg, scale)
    m_big = m_lq.copy()
    m_big[:2, 2] += pad
    for c in range(3):
        em, ex = WAVELENGTHS_NM[c], EXCITATION_NM[c]
        psf0 = born_wolf_psf(wf_na, immersion_index, pixel_size_um, em)
        wf = fftconvolve(focal[c], psf0, mode="same")
        for z, plane in zip(DEFOCUS_UM, off_planes, strict=True):
            pz = born_wolf_psf(wf_na, immersion_index, pixel_size_um, em, z_um=z)
            wf += haze * fftconvolve(plane[c], pz, mode="same")
        lq[c] = np.clip(wf[pad : pad + h, pad : pad + w], 0, None)
        if hq_system == "widefield":  # denoising: the same wide-field image, many photons
            hq[c] = np.clip(_transform(wf, m_big, hq_shape), 0, None)
            continue
        # confocal: transform the specimen onto the HQ grid, then image it
        px_hq = pixel_size_um * scale
        pc = _confocal_psf(cf_na, immersion_index, px_hq, em, ex)
        obj = _transform(focal[c], m_big, hq_shape)
        leak = sum(_transform(p[c], m_big, hq_shape) for p in off_planes)
        cf = fftconvolve(obj, pc, mode="same") + 0.03 * fftconvolve(
            ndimage.gaussian_filter(leak, 4.0), pc, mode="same"
        )
        hq[c] = np.clip(cf, 0, None)
    clean = {"lq_max": float(lq.max()), "hq_max": float(hq.max())}
    # cameras
    lq_ph = lq / max(np.percentile(lq, 99.9), 1e-9) * wf_photons
    lq_e = rng.poisson(lq_ph).astype(np.float64) + rng.normal(0, read_noise_e, lq.shape)
    lq_adu = lq_e + camera_offset
    hq_ph = hq / max(np.percentile(hq, 99.9), 1e-9) * cf_photons
    hq_e = rng.poisson(hq_ph).astype(np.float64) + rng.normal(0, 0.5, hq.shape)
    meta = {
        "seed": seed,
        "channels": list(CHANNEL_NAMES),
        "emission_nm": list(WAVELENGTHS_NM),
        "pixel_size_um": {"lq": pixel_size_um, "hq": pixel_size_um * scale},
        "lq_system": {
            "kind": "wide-field",
            "na": wf_na,
            "immersion_index": immersion_index,
            "photons": wf_photons,
            "read_noise_e": read_noise_e,
            "camera_offset": camera_offset,
            "haze": haze,
            "defocus_planes_um": list(DEFOCUS_UM),
        },
        "hq_system": {
            "kind": "confocal" if hq_system == "confocal" else "wide-field",
            "na": cf_na if hq_system == "confocal" else wf_na,
            "immersion_index": immersion_index,
            "photons": cf_photons,
            "pinhole_airy_units": 1.0 if hq_system == "confocal" else None,
        },
        "shift": [float(s) for s in shift],
        "rotation_deg": float(rotation_deg),
        "scale": float(scale),
        "hq_to_lq": m_lq.tolist(),
        "clean": clean,
    }
    if dtype == "uint16":
        return (
            np.clip(np.rint(lq_adu), 0, 65535).astype(np.uint16),
            np.clip(np.rint(hq_e), 0, 65535).astype(np.uint16),
            meta,
        )
    return lq_adu.astype(np.float32), hq_e.astype(np.float32), meta


def make_dataset(
    n: int, shape: tuple[int, int] = (128, 128), seed: int = 0, **kw
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """``n`` registered pairs with field ids ``field_000``…; extra keywords go to
    :func:`make_pair`."""
    lq, hq, ids = [], [], []
    for i in range(n):
        a, b, _ = make_pair(shape, seed=seed * 100_003 + i, **kw)
        lq.append(a)
        hq.append(b)
        ids.append(f"field_{i:03d}")
    return lq, hq, ids
