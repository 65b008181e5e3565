import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.special import j1

from models.baselines import (
    PAPER_OPTICS,
    Optics,
    born_wolf_profile,
    born_wolf_psf,
    gaussian_smooth,
    richardson_lucy,
)


def test_in_focus_profile_is_the_airy_pattern():
    na, n, lam = 1.4, 1.515, 520.0
    r = np.linspace(0.01, 1.0, 50)
    v = 2 * np.pi / (lam * 1e-3) * na * r
    airy = (2 * j1(v) / v) ** 2
    prof = born_wolf_profile(r, na, n, lam) / born_wolf_profile(np.array([0.0]), na, n, lam)
    np.testing.assert_allclose(prof, airy, atol=2e-3)


def test_psf_properties():
    psf = born_wolf_psf(1.4, 1.515, 0.08, 520.0)
    assert psf.shape[0] % 2 == 1 and psf.shape[0] == psf.shape[1]
    assert psf.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(psf, psf.T, atol=1e-12)
    c = psf.shape[0] // 2
    assert psf.argmax() == c * psf.shape[0] + c
    # defocus spreads the light: lower peak
    assert born_wolf_psf(1.4, 1.515, 0.08, 520.0, size=psf.shape[0], z_um=1.0).max() < psf.max()
    # larger NA -> narrower
    assert (
        born_wolf_psf(1.4, 1.515, 0.08, 520.0).max() > born_wolf_psf(0.8, 1.515, 0.08, 520.0).max()
    )


def test_optics_validation():
    with pytest.raises(ValueError, match="NA"):
        Optics(1.6, 1.515, 0.1, (500,))
    with pytest.raises(ValueError, match="pixel"):
        Optics(1.4, 1.515, 0.0, (500,))
    with pytest.raises(ValueError, match="wavelength"):
        richardson_lucy(np.zeros((2, 8, 8)), Optics(1.4, 1.515, 0.1, (500,)))


def test_richardson_lucy_improves_a_blurred_image():
    rng = np.random.default_rng(0)
    truth = np.zeros((3, 96, 96))
    for c in range(3):
        ys, xs = rng.integers(10, 86, (2, 25))
        truth[c, ys, xs] = 1.0
        truth[c, 40:44, 20:70] = 0.5
    blurred = np.stack(
        [
            fftconvolve(
                truth[c],
                born_wolf_psf(
                    PAPER_OPTICS.na,
                    PAPER_OPTICS.immersion_index,
                    PAPER_OPTICS.pixel_size_um,
                    PAPER_OPTICS.wavelengths_nm[c],
                ),
                mode="same",
            )
            for c in range(3)
        ]
    )
    blurred = np.clip(blurred, 0, None) + 1e-3
    out = richardson_lucy(blurred, PAPER_OPTICS, iterations=10)
    assert out.shape == truth.shape and out.dtype == np.float32

    def err(x):
        x = x / x.sum(axis=(1, 2), keepdims=True)
        t = truth / truth.sum(axis=(1, 2), keepdims=True)
        return float(np.sum((x - t) ** 2))

    assert err(out) < 0.8 * err(blurred)
    # 2-D input works too
    assert richardson_lucy(blurred[0], PAPER_OPTICS).shape == (96, 96)


def test_gaussian_smooth_shapes():
    assert gaussian_smooth(np.ones((2, 8, 8)), 1.0).shape == (2, 8, 8)
    assert gaussian_smooth(np.ones((8, 8)), 1.0).shape == (8, 8)
