"""Per-pixel uncertainty: calibrated coverage on a known heteroscedastic noise model, the
half-width following the true noise level, the calibration's JSON form, and the point
prediction left untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import spearmanr

from models.uncertainty import (
    Calibration,
    evaluate,
    fit_calibration,
    model_members,
    uncertainty,
)


def noisy_field(seed: int, n: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lq, truth, σ)``: sparse bright structures, Gaussian noise of standard deviation
    ``σ = 0.01 + 0.15 · truth`` (shot-noise-like: brighter is noisier)."""
    rng = np.random.default_rng(seed)
    truth = ndimage.gaussian_filter(rng.random((n, n)) ** 8, 2.0)
    truth /= truth.max()
    sigma = 0.01 + 0.15 * truth
    lq = truth + sigma * rng.standard_normal(truth.shape)
    return lq.astype(np.float32), truth.astype(np.float32), sigma


def smoothing_members(n_members: int):
    """A denoiser (Gaussian smoothing) and, as further members, smoothings of other widths."""

    def predict(image: np.ndarray) -> list[np.ndarray]:
        widths = (1.0, 1.6, 0.7)[:n_members]
        return [ndimage.gaussian_filter(image, s) for s in widths]

    return predict


@pytest.mark.parametrize("n_members", [1, 2])
def test_interval_covers_nominal_fraction_on_held_out_data(n_members):
    predict = smoothing_members(n_members)
    cal_fields = [noisy_field(s) for s in range(6)]
    cal = fit_calibration(predict, [f[0] for f in cal_fields], [f[1] for f in cal_fields], 0.9)
    inside = total = 0
    rhos = []
    for lq, truth, sigma in (noisy_field(100 + s) for s in range(6)):
        res = uncertainty(predict, lq, cal)
        ev = evaluate(res, truth)
        inside += ev["coverage"] * truth.size
        total += truth.size
        rhos.append(spearmanr(res.half_width.ravel(), sigma.ravel()).statistic)
    assert abs(inside / total - 0.9) <= 0.03
    assert np.median(rhos) >= 0.7  # wider where the noise is stronger


def test_half_width_scales_with_the_image_intensity_units():
    predict = smoothing_members(1)
    fields = [noisy_field(s) for s in range(4)]
    cal = fit_calibration(predict, [f[0] for f in fields], [f[1] for f in fields])
    lq = noisy_field(50)[0]
    a = uncertainty(predict, lq, cal)
    b = uncertainty(predict, 1000.0 * lq + 20.0, cal)
    np.testing.assert_allclose(b.half_width, 1000.0 * a.half_width, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(a.relative_half_width, b.relative_half_width, rtol=1e-3, atol=1e-6)


def test_calibration_round_trips_through_json():
    fields = [noisy_field(s, 64) for s in range(3)]
    cal = fit_calibration(smoothing_members(2), [f[0] for f in fields], [f[1] for f in fields])
    text = cal.to_json()
    assert len(text) < 1000
    assert Calibration.from_json(text) == cal
    assert Calibration.from_dict(json.loads(text)).weights == cal.weights
    with pytest.raises(ValueError, match="method"):
        Calibration.from_dict({**cal.to_dict(), "method": "something-else"})


def test_member_count_must_match_the_calibration():
    fields = [noisy_field(s, 64) for s in range(2)]
    cal = fit_calibration(smoothing_members(1), [f[0] for f in fields], [f[1] for f in fields])
    with pytest.raises(ValueError, match="member"):
        uncertainty(smoothing_members(2), fields[0][0], cal)


def test_summary_reports_the_map():
    fields = [noisy_field(s, 64) for s in range(2)]
    cal = fit_calibration(smoothing_members(1), [f[0] for f in fields], [f[1] for f in fields])
    s = uncertainty(smoothing_members(1), fields[0][0], cal).summary(bound=0.05)
    assert s["coverage_nominal"] == 0.9
    assert s["median_half_width"] > 0
    assert 0 <= s["fraction_above_bound"] <= 1
    assert s["p90_relative_half_width"] >= s["median_relative_half_width"]


def test_point_is_the_plain_prediction_of_a_real_model(trained_tiny, pairs):
    model, _ = trained_tiny
    lq, hq, _ = pairs
    predict = model_members(model, 2)
    cal = fit_calibration(predict, lq[:2], hq[:2])
    image = lq[4]
    res = uncertainty(predict, image, cal)
    assert np.array_equal(res.point, model.predict(image))
    assert res.half_width.shape == image.shape
    assert np.all(np.isfinite(res.half_width)) and np.all(res.half_width > 0)
    # the extra members are the test-time ensemble's views: all eight average to its output
    members = model_members(model, 8)(image)
    np.testing.assert_allclose(
        np.mean(members, axis=0), model.predict(image, ensemble=True), rtol=1e-4, atol=1e-2
    )


def test_binned_features_keep_odd_planes_and_old_calibrations():
    """New calibrations take their features on 2 × 2 bins; an odd-sized plane gets a map of
    its own size, and a calibration saved before binning (no ``bin_px``) keeps the
    full-resolution features it was fitted on."""
    predict = smoothing_members(1)
    fields = [noisy_field(s, 64) for s in range(3)]
    cal = fit_calibration(predict, [f[0] for f in fields], [f[1] for f in fields])
    assert cal.bin_px == 2
    odd = noisy_field(9, 67)[0][:, :65]
    res = uncertainty(predict, odd, cal)
    assert res.half_width.shape == odd.shape and np.all(res.half_width > 0)
    old = {k: v for k, v in cal.to_dict().items() if k != "bin_px"}
    full = uncertainty(predict, odd, Calibration.from_dict(old))
    assert Calibration.from_dict(old).bin_px == 1
    rho = spearmanr(full.half_width.ravel(), res.half_width.ravel()).statistic
    assert 0.7 < rho < 1.0  # the same scale model, on features of another grid
