"""The cheaper trust checks compute what the plain formulas do: the LQ's normalisation and noise
model shared by OOD and consistency, the real-FFT spectrum bands, the percentiles from one
partial sort, the radius-0 blur, the float32 arrays and the filters by cosine transform
(:mod:`models.reflect_filter`) agree with straightforward float64 versions (maps within 1e-5 of
their largest value, numbers within 1e-6 relative)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from models.consistency import Blur, consistency, gaussian_blur
from models.input_channels import input_channels
from models.metrics import minmse_scale_offset, normalize_percentile
from models.noise import noise_variance_map, variance_from
from models.ood import N_BANDS, OodReference, _band_edges, _percentiles_of_variance, image_features
from models.synthetic import specimen
from models.uncertainty import UncertaintyResult


def _field(seed: int, shape=(96, 128), dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    obj = specimen(shape, rng, n_cells=2)[1]  # one channel (actin): fine structure
    ph = np.clip(obj, 0, None) / np.percentile(obj, 99.9) * 300.0
    img = rng.poisson(ph) + rng.normal(0.0, 2.0, obj.shape) + 100.0
    return np.clip(img, 0, np.iinfo(dtype).max).astype(dtype)


def _plain_consistency(enhanced, lq, sigma, smoothing_px=2.0, z_threshold=5.0):
    """The check as first written: float64 throughout, each quantity on its own."""
    ref = normalize_percentile(lq)
    deg = ndimage.gaussian_filter(enhanced.astype(np.float64), sigma) if sigma > 0 else enhanced
    a, b = minmse_scale_offset(deg, ref)
    resid = ref - (a * deg + b)
    rsp = float(np.mean((ref - ref.mean()) * (deg - deg.mean())) / (ref.std() * deg.std()))
    var = noise_variance_map(ref, smoothing_px)
    smooth = ndimage.gaussian_filter(resid, smoothing_px, mode="reflect")
    z = smooth / (np.sqrt(var) * (1.0 / (2.0 * math.sqrt(math.pi) * smoothing_px)))
    return {
        "rsp": rsp,
        "rse": float(np.sqrt(np.mean(resid**2))),
        "scale": a,
        "noise_sigma": float(np.sqrt(var.mean())),
        "inconsistent_fraction": float(np.mean(np.abs(z) > z_threshold)),
        "error": np.abs(smooth),
        "z": z,
    }


@pytest.mark.parametrize("sigmas", [(0.08, 0.13, 1.5), (0.0, 0.6, 2.0)])
def test_consistency_matches_the_plain_float64_formulas(sigmas):
    lq = np.stack([_field(s) for s in range(3)])
    rng = np.random.default_rng(5)
    enhanced = ndimage.gaussian_filter(lq.astype(np.float32), (0, 1, 1)) * 1.7 + 3.0
    enhanced[:, 40:52, 60:70] += rng.normal(0, 200.0, (3, 12, 10))  # something inconsistent
    report = consistency(enhanced, lq, Blur(sigma_px=sigmas))
    for c, sigma in enumerate(sigmas):
        want = _plain_consistency(enhanced[c], lq[c], sigma)
        got = report.channels[c]
        for key in ("rsp", "rse", "scale", "noise_sigma", "inconsistent_fraction"):
            assert getattr(got, key) == pytest.approx(want[key], rel=1e-6, abs=1e-12), key
        for name, m in (("error", report.error_map[c]), ("z", report.z_map[c])):
            assert m.dtype == np.float32
            assert np.max(np.abs(m - want[name])) <= 1e-5 * np.max(np.abs(want[name])), name


def test_shared_channels_give_the_same_checks_as_each_check_alone():
    lq = np.stack([_field(s) for s in (1, 2)])
    enhanced = lq.astype(np.float32) * 2.0
    shared = input_channels(lq)
    blur = Blur(sigma_px=(0.1, 0.7))
    alone, given = (
        consistency(enhanced, lq, blur),
        consistency(enhanced, lq, blur, lq_channels=shared),
    )
    assert np.array_equal(alone.z_map, given.z_map)
    assert [c.to_dict() for c in alone.channels] == [c.to_dict() for c in given.channels]
    ref = OodReference.fit([np.stack([_field(s) for s in (3 + i, 4 + i)]) for i in range(4)], 0.1)
    assert ref.score(lq, 0.1).to_dict() == ref.score(lq, 0.1, channels=shared).to_dict()
    with pytest.raises(ValueError, match="prepared"):
        consistency(enhanced, lq, blur, lq_channels=shared[:1])


def test_input_channel_is_the_normalised_channel_and_its_noise_model():
    ch = _field(7)
    (ic,) = input_channels(ch)
    assert ic.x.dtype == ic.mu.dtype == ic.var.dtype == np.float32
    want_x = normalize_percentile(ch)
    assert np.max(np.abs(ic.x - want_x)) <= 1e-6 * np.max(np.abs(want_x))
    want_var = noise_variance_map(want_x, 2.0)
    assert np.max(np.abs(ic.var - want_var)) <= 1e-5 * np.max(want_var)
    assert np.allclose(ic.var, variance_from(ic.mu, ic.highpass), rtol=1e-6, atol=0)


def test_spectrum_bands_match_the_full_fft():
    for shape in ((96, 128), (97, 131)):  # even and odd widths: the Nyquist column
        x = _field(3, shape).astype(np.float64)
        h, w = shape
        xn = (x - x.mean()) * np.outer(np.hanning(h), np.hanning(w))
        f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
        idx = np.digitize(f, _band_edges(min(h, w))) - 1
        p = np.abs(np.fft.fft2(xn)) ** 2
        ok = (idx >= 0) & (idx < N_BANDS)
        power = np.bincount(idx[ok], weights=p[ok], minlength=N_BANDS)
        logp = np.log10(power / np.maximum(np.bincount(idx[ok], minlength=N_BANDS), 1) + 1e-20)
        feats = image_features(x, 0.1)["spectrum"]
        got = [feats[f"c0_band{b}"] for b in range(1, N_BANDS)]
        assert np.allclose(got, logp[1:] - logp[0], rtol=0, atol=1e-5)  # float32 FFT


@pytest.mark.parametrize("alpha", [0.02, -0.01, 0.0])
def test_variance_percentiles_from_one_partition(alpha):
    mu = np.random.default_rng(0).gamma(2.0, 0.1, (64, 80))
    model = (alpha, 0.003, 0.0025)
    var = np.maximum(alpha * mu + model[1], model[2])
    got_mu, got_var = _percentiles_of_variance(mu, model, (1.0, 99.0))
    assert np.allclose(got_mu, np.percentile(mu, (1, 99)), rtol=1e-14)
    assert np.allclose(got_var, np.percentile(var, (1, 99)), rtol=1e-14)


def test_radius_zero_blur_is_the_identity_scipy_gives():
    x = _field(2).astype(np.float64)
    for s in (0.05, 0.124, 0.126, 0.9):
        assert np.array_equal(gaussian_blur(x, s), ndimage.gaussian_filter(x, s, mode="reflect"))


def test_uncertainty_summary_percentiles():
    half = np.random.default_rng(1).gamma(2.0, 1.0, (2, 40, 50)).astype(np.float32)
    res = UncertaintyResult(half, half, 0.9, np.array([3.0, 5.0]))
    s = res.summary()
    assert s["median_half_width"] == pytest.approx(float(np.median(half)), rel=1e-6)
    assert s["p90_half_width"] == pytest.approx(float(np.percentile(half, 90)), rel=1e-6)
    rel = res.relative_half_width
    assert s["median_relative_half_width"] == pytest.approx(float(np.median(rel)), rel=1e-6)


def test_checks_called_from_the_check_threads_themselves_run_inline_and_agree():
    """The channels run side by side in a shared pool; a check called from one of its threads
    (or several at once) runs inline instead of waiting for a full pool, with the same maps."""
    from models.check_threads import check_threads

    lq = np.stack([_field(s) for s in range(3)])
    enhanced = lq.astype(np.float32) * 1.5 + 2.0
    blur = Blur(sigma_px=(0.2, 0.5, 1.0))
    want = consistency(enhanced, lq, blur)
    pool = check_threads()
    busy = 2 * pool._max_workers  # every thread busy with a check, as many more waiting
    jobs = [pool.submit(consistency, enhanced, lq, blur) for _ in range(busy)]
    for job in jobs:
        got = job.result(timeout=60)
        assert np.array_equal(got.z_map, want.z_map)
        assert [c.to_dict() for c in got.channels] == [c.to_dict() for c in want.channels]
