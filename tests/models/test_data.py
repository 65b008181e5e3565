import numpy as np
import pytest

from models.data import (
    ALIGN,
    HISTOGRAM_CHUNK,
    Normalization,
    PatchSampler,
    as_cyx,
    fit_to_input,
    percentiles_of_integers,
    rng_from_state,
    rng_state,
    split_by_field,
)


def test_normalization_round_trip_and_params():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 20, (2, 64, 64)).astype(np.float32)
    img[1] *= 5
    n = Normalization(1.0, 99.8)
    lo, hi = n.params(img)
    assert lo.shape == hi.shape == (2,)
    assert lo[0] == pytest.approx(np.percentile(img[0], 1.0), rel=1e-5)
    x = n.apply(img, lo, hi)
    assert np.percentile(x[1], 99.8) == pytest.approx(1.0, abs=1e-4)
    back = np.empty_like(img)
    n.invert_hwc_into(np.moveaxis(x, 0, -1), lo, hi, back)
    np.testing.assert_allclose(back, img, rtol=1e-5, atol=1e-3)
    assert Normalization.from_dict(n.to_dict()) == n


@pytest.mark.parametrize(
    "dtype,low,high",
    [("uint8", 0, 256), ("uint16", 90, 4000), ("int16", -300, 300), ("uint16", 7, 8)],
)
def test_integer_images_take_a_histogram_with_numpys_percentiles(dtype, low, high):
    """The histogram path gives exactly what ``np.percentile`` gives (so training on floats
    and predicting on the camera's integers normalise alike)."""
    rng = np.random.default_rng(1)
    img = rng.integers(low, high, (3, 123, 77)).astype(dtype)
    qs = (0.1, 1.0, 50.0, 99.8, 100.0)
    for ch in img:
        np.testing.assert_allclose(
            percentiles_of_integers(ch, qs), np.percentile(ch, qs), rtol=1e-12
        )
    n = Normalization(1.0, 99.8)
    for got, want in zip(n.params(img), n.params(img.astype(np.float32)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "dtype,low,high",
    [("int32", -5, 10**6), ("int64", -(10**6), 10**6), ("uint64", 2**63, 2**63 + 999)],
)
def test_histogram_percentiles_of_wide_integers_counted_in_chunks(dtype, low, high):
    """More values than one chunk, wide dtypes (uint64 cannot be shifted as a signed index):
    still exactly ``np.percentile``."""
    rng = np.random.default_rng(4)
    n = HISTOGRAM_CHUNK + 123
    v = rng.integers(low, high, n, dtype=np.uint64 if dtype == "uint64" else np.int64)
    v = v.astype(dtype)
    qs = (0.0, 1.0, 50.0, 99.8, 100.0)
    assert percentiles_of_integers(v, qs) == [float(x) for x in np.percentile(v, qs)]


def test_normalisation_straight_into_the_network_layout():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 4096, (3, 40, 24)).astype(np.uint16)
    n = Normalization(1.0, 99.8)
    lo, hi = n.params(img)
    hwc = n.apply_hwc(img, lo, hi)
    assert hwc.shape == (40, 24, 3) and hwc.flags.c_contiguous and hwc.dtype == np.float32
    assert hwc.ctypes.data % ALIGN == 0  # the network call takes it without a copy
    np.testing.assert_allclose(hwc, np.moveaxis(n.apply(img, lo, hi), 0, -1), rtol=1e-6)
    back = np.empty((3, 40, 24), np.float32)
    n.invert_hwc_into(hwc, lo, hi, back)
    np.testing.assert_allclose(back, img, rtol=1e-5, atol=1e-2)


def test_targets_fitted_to_the_input_scale():
    """The HQ target takes the LQ's intensity scale (scale and offset recovered from the noisy
    LQ without attenuation); a channel with nothing in common keeps its own normalisation."""
    rng = np.random.default_rng(3)
    clean = rng.random((2, 96, 96)).astype(np.float32)
    hq = clean.copy()
    lq = np.empty_like(clean)
    lq[0] = 0.6 * clean[0] + 0.05 + rng.normal(0, 0.2, clean[0].shape)  # noisy, other scale
    lq[1] = -clean[1] + rng.normal(0, 0.01, clean[1].shape)  # anti-correlated: no fit
    fitted = fit_to_input(hq, lq)
    assert fitted.dtype == np.float32 and fitted.shape == hq.shape
    np.testing.assert_allclose(fitted[0], 0.6 * clean[0] + 0.05, atol=0.01)
    np.testing.assert_array_equal(fitted[1], hq[1])
    np.testing.assert_array_equal(hq, clean)  # the caller's array is left alone


def test_as_cyx():
    assert as_cyx(np.zeros((5, 6))).shape == (1, 5, 6)
    with pytest.raises(ValueError, match="lq"):
        as_cyx(np.zeros((2, 3, 4, 5)), "lq")
    with pytest.raises(ValueError, match="NaN"):
        as_cyx(np.full((3, 3), np.nan))


@pytest.mark.parametrize("seed", range(20))
def test_split_never_shares_a_field(seed):
    rng = np.random.default_rng(seed)
    ids = [f"f{int(v)}" for v in rng.integers(0, 12, size=40)]
    train, val = split_by_field(ids, 0.25, seed)
    assert sorted(train + val) == list(range(len(ids)))
    assert not ({ids[i] for i in train} & {ids[i] for i in val})
    assert val and train


def test_split_edge_cases():
    assert split_by_field(["a", "a"], 0.5) == ([0, 1], [])
    assert split_by_field(["a", "b", "c"], 0.0) == ([0, 1, 2], [])
    tr, va = split_by_field(["a", "b"], 0.9)
    assert len(tr) == 1 and len(va) == 1


def _pair():
    hq = np.zeros((2, 96, 96), np.float32)
    hq[:, 60:90, 60:90] = 1.0  # the only foreground
    lq = hq * 2.0 + 0.5
    return lq, hq


def test_patches_are_biased_to_foreground():
    lq, hq = _pair()
    s = PatchSampler([lq], [hq], 32, 16, threshold=0.2, min_fraction=0.05)
    rng = np.random.default_rng(1)
    for _ in range(10):
        _, y = s.sample(rng)
        assert (y.reshape(16, -1).mean(axis=1) >= 0.05).all()  # no near-empty patch


def test_augmentation_is_identical_for_lq_and_hq():
    rng = np.random.default_rng(2)
    hq = rng.random((2, 64, 64)).astype(np.float32)
    lq = hq * 2.0 + 0.5
    s = PatchSampler([lq], [hq], 32, 16, threshold=0.0, min_fraction=0.0, translate=4)
    seen = set()
    for _ in range(5):
        x, y = s.sample(rng)
        assert x.shape == y.shape == (16, 32, 32, 2)
        np.testing.assert_allclose(x, y * 2.0 + 0.5, rtol=1e-6)
        seen.update(float(v) for v in y[:, 0, 0, 0])
    assert len(seen) > 40  # positions and transforms vary


def test_sampler_without_foreground_falls_back_to_all_positions():
    lq = np.zeros((1, 40, 40), np.float32)
    s = PatchSampler([lq], [lq], 32, 2, threshold=0.5, min_fraction=0.5)
    x, _ = s.sample(np.random.default_rng(0))
    assert x.shape == (2, 32, 32, 1)


def test_sampler_rejects_bad_pairs():
    with pytest.raises(ValueError, match="shape"):
        PatchSampler([np.zeros((1, 40, 40))], [np.zeros((1, 40, 41))], 32, 2)
    with pytest.raises(ValueError, match="smaller"):
        PatchSampler([np.zeros((1, 20, 40))], [np.zeros((1, 20, 40))], 32, 2)


def test_rng_state_round_trip():
    rng = np.random.default_rng(5)
    rng.random(3)
    st = rng_state(rng)
    a = rng.random(4)
    b = rng_from_state(st).random(4)
    np.testing.assert_array_equal(a, b)
