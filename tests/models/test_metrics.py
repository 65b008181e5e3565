import math

import numpy as np
import pytest

from models.metrics import normalize_minmse, normalize_percentile, score_channel, score_image


def test_minmse_fit_hand_computed():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    t = np.array([1.0, 3.0, 5.0, 7.0])  # t = 2 x + 1
    np.testing.assert_allclose(normalize_minmse(x, t), t)
    # least squares by hand: x = [0, 1], t = [0, 3] -> a = 3, b = 0
    np.testing.assert_allclose(
        normalize_minmse(np.array([0.0, 1.0]), np.array([0.0, 3.0])), [0.0, 3.0]
    )
    # constant input: the best fit is the target's mean
    np.testing.assert_allclose(normalize_minmse(np.ones(3), np.array([1.0, 2.0, 6.0])), 3.0)


def test_percentile_normalisation():
    x = np.linspace(0, 1000, 100001)
    n = normalize_percentile(x, 0.1, 99.9)
    assert n.min() == pytest.approx(-0.1 / 99.8, rel=1e-3)
    assert np.percentile(n, 99.9) == pytest.approx(1.0)


def test_scale_and_offset_do_not_matter():
    rng = np.random.default_rng(0)
    gt = rng.random((64, 64))
    s = score_channel(gt * 7.0 - 3.0, gt)
    assert s["mse"] == pytest.approx(0.0, abs=1e-20)
    assert s["ssim"] == pytest.approx(1.0)
    assert s["psnr"] > 200


def test_hand_computed_scores():
    # gt normalised to g; prediction = g + e, e orthogonal to constants and to g
    g = np.zeros((32, 32))
    g[:, 16:] = 1.0
    # percentiles 0.1 / 99.9 of a two-valued image are 0 and 1: g is already normalised
    np.testing.assert_allclose(normalize_percentile(g), g)
    e = np.zeros((32, 32))
    e[::2, :8] = 0.1
    e[1::2, :8] = -0.1
    e[::2, 16:24] = 0.1
    e[1::2, 16:24] = -0.1
    s = score_channel(g + e, g)
    # least squares of x = g + e onto g: a = cov(x, g) / var(x) = var_g / (var_g + var_e),
    # residual variance var_g - var_g**2 / (var_g + var_e)
    var_g, var_e = 0.25, float(np.mean(e**2))
    want_mse = var_g - var_g**2 / (var_g + var_e)
    assert s["mse"] == pytest.approx(want_mse, rel=1e-9)
    assert s["psnr"] == pytest.approx(10 * math.log10(1.0 / want_mse), rel=1e-9)
    assert s["nrmse"] == pytest.approx(math.sqrt(g.size * want_mse / np.sum(g**2)), rel=1e-9)
    assert 0 < s["ssim"] < 1


def test_score_image_per_channel():
    rng = np.random.default_rng(1)
    gt = rng.random((3, 32, 32))
    pred = gt.copy()
    pred[1] += rng.normal(0, 0.1, (32, 32))
    s = score_image(pred, gt)
    assert len(s["per_channel"]) == 3
    assert s["per_channel"][0]["mse"] == pytest.approx(0.0, abs=1e-20)
    assert s["mse"] == pytest.approx(np.mean([c["mse"] for c in s["per_channel"]]))
    assert set(s) >= {"mse", "nrmse", "ssim", "psnr"}
    with pytest.raises(ValueError):
        score_image(pred, gt[:2])
    assert score_image(gt[0], gt[0])["ssim"] == pytest.approx(1.0)
