"""The physics consistency check: blur fitting on known PSFs, and the flag on synthetic and real
outputs (the HQ passes; invented, shifted and wrong-channel outputs are flagged)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import ndimage
from scipy.signal import fftconvolve

from models.baselines import born_wolf_profile, born_wolf_psf
from models.consistency import Blur, consistency, fit_blur
from models.synthetic import specimen

W2S = "/work/shared/data/w2s-widefield-denoise"


def _camera(x: np.ndarray, rng: np.random.Generator, photons: float = 200.0) -> np.ndarray:
    """Poisson + read noise on an image scaled to ``photons`` at its 99.9th percentile, plus an
    offset (a different intensity scale than the HQ's, as between two microscopes)."""
    ph = np.clip(x, 0, None) / np.percentile(x, 99.9) * photons
    return rng.poisson(ph) + rng.normal(0.0, 2.0, x.shape) + 100.0


def _pairs(blur_fn, n: int = 4, shape=(192, 192), seed: int = 0):
    rng = np.random.default_rng(seed)
    hq, lq = [], []
    for _ in range(n):
        obj = specimen(shape, rng, n_cells=2)[1:]  # actin and microtubules: fine structure
        hq.append(obj)
        lq.append(np.stack([_camera(blur_fn(ch), rng) for ch in obj]))
    return hq, lq


def _airy_fwhm_um(na: float, wavelength_nm: float) -> float:
    r = np.linspace(0.0, 1.0, 20001)
    prof = born_wolf_profile(r, na, 1.515, wavelength_nm)
    return 2.0 * float(r[np.argmax(prof < prof[0] / 2)])


def test_fit_recovers_a_gaussian_blur():
    hq, lq = _pairs(lambda ch: ndimage.gaussian_filter(ch, 2.0))
    blur = fit_blur(hq, lq, pixel_size_um=0.1)
    assert blur.channels == 2 and blur.n_fields == 4
    for fwhm in blur.fwhm_px:
        assert fwhm == pytest.approx(2.3548 * 2.0, rel=0.1)
    assert blur.fwhm_um[0] == pytest.approx(blur.fwhm_px[0] * 0.1)


def test_fit_recovers_a_born_wolf_fwhm():
    na, px, wl = 0.8, 0.1, 520.0
    psf = born_wolf_psf(na, 1.515, px, wl)
    hq, lq = _pairs(lambda ch: fftconvolve(ch, psf, mode="same"), seed=1)
    blur = fit_blur(hq, lq, pixel_size_um=px)
    truth = _airy_fwhm_um(na, wl)
    for fwhm in blur.fwhm_um:
        assert fwhm == pytest.approx(truth, rel=0.1)


def test_same_optics_fit_no_blur():
    """A denoising pairing (LQ = one noisy frame of the HQ's optics) has a near-delta kernel."""
    hq, lq = _pairs(lambda ch: ch, seed=2)
    blur = fit_blur(hq, lq)
    assert max(blur.fwhm_px) < 1.0


def test_blur_json_round_trip_and_kernel():
    blur = Blur(sigma_px=(0.0, 1.5), pixel_size_um=0.1, fit_residual=(0.3, 0.4), n_fields=60)
    back = Blur.from_json(blur.to_json())
    assert back == blur
    assert blur.to_dict()["fwhm_um"][1] == pytest.approx(2.3548 * 1.5 * 0.1, rel=1e-3)
    k0, k1 = blur.kernel(0), blur.kernel(1)
    assert k0.shape == (1, 1) and k0.sum() == 1.0
    assert k1.shape[0] % 2 == 1 and k1.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="format"):
        Blur.from_dict({"sigma_px": [1.0]})


def _synthetic_check_setup():
    hq, lq = _pairs(lambda ch: ndimage.gaussian_filter(ch, 1.5), n=5, shape=(160, 160), seed=4)
    blur = fit_blur(hq[:4], lq[:4])
    return blur, hq[4], lq[4]


def test_hq_is_consistent_and_corrupted_outputs_are_flagged():
    blur, hq, lq = _synthetic_check_setup()
    ok = consistency(hq, lq, blur)
    assert not ok.flag, ok.reasons
    assert min(ok.rsp) > 0.8
    assert min(c.rsp_corrected for c in ok.channels) > 0.95
    assert ok.error_map.shape == hq.shape and ok.z_map.shape == hq.shape

    invented = hq.copy()
    yy, xx = np.mgrid[0:160, 0:160]
    invented[0] += 0.8 * np.exp(-((yy - 60) ** 2 + (xx - 90) ** 2) / (2 * 3.0**2))
    bad = consistency(invented, lq, blur)
    assert bad.flag and any("channel 0" in r and "region" in r for r in bad.reasons)
    assert not any("channel 1" in r for r in bad.reasons)  # channel 1 untouched

    shifted = np.roll(hq, 3, axis=2)
    assert consistency(shifted, lq, blur).flag
    swapped = hq[::-1]
    assert consistency(swapped, lq, blur).flag


def test_shapes_must_match():
    blur = Blur(sigma_px=(1.0,))
    with pytest.raises(ValueError, match="same grid"):
        consistency(np.zeros((1, 8, 8)), np.zeros((1, 9, 9)), blur)
    with pytest.raises(ValueError, match="channel"):
        consistency(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), blur)


@pytest.mark.skipif(
    not os.path.exists(os.path.join(W2S, "lq", "field_061.tif")), reason="W2S data not available"
)
def test_w2s_validation_field_hq_passes_and_wrong_channel_fails():
    import tifffile

    lq = tifffile.imread(os.path.join(W2S, "lq", "field_061.tif"))
    hq = tifffile.imread(os.path.join(W2S, "hq", "field_061.tif"))
    blur = Blur(sigma_px=(0.1, 0.1, 0.1))  # W2S: same optics on both sides (bench/trust.py)
    ok = consistency(hq, lq, blur)
    assert not ok.flag, ok.reasons
    assert min(c.rsp_corrected for c in ok.channels) > 0.97
    assert consistency(hq[[1, 2, 0]], lq, blur).flag
