import numpy as np
import pytest
from skimage.registration import phase_cross_correlation

from models import synthetic


def test_deterministic_by_seed_and_typed():
    a = synthetic.make_pair((64, 64), seed=4)
    b = synthetic.make_pair((64, 64), seed=4)
    c = synthetic.make_pair((64, 64), seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    lq, hq, meta = a
    assert lq.shape == hq.shape == (3, 64, 64) and lq.dtype == np.uint16
    assert lq.min() > 50  # camera offset
    f = synthetic.make_pair((64, 64), seed=4, dtype="float32")
    assert f[0].dtype == np.float32
    assert meta["lq_system"]["na"] == 1.3 and meta["hq_system"]["na"] == 1.4


def test_wide_field_is_hazier_and_noisier():
    lq, hq, _ = synthetic.make_pair((128, 128), seed=1, dtype="float32")
    lq = lq - 100.0
    for c in range(3):
        # out-of-focus haze raises the mean relative to the bright in-focus structures
        assert lq[c].mean() / np.percentile(lq[c], 99.5) > 1.3 * (
            hq[c].mean() / np.percentile(hq[c], 99.5)
        )
        # and the wide-field camera is noisier: larger pixel-to-pixel differences
        nl = np.std(np.diff(lq[c], axis=1)) / np.percentile(lq[c], 99.5)
        nh = np.std(np.diff(hq[c], axis=1)) / np.percentile(hq[c], 99.5)
        assert nl > nh


def test_misregistration_is_reported():
    lq, hq, meta = synthetic.make_pair((128, 128), seed=2, shift=(5.0, -3.0), dtype="float32")
    m = np.asarray(meta["hq_to_lq"])
    np.testing.assert_allclose(m[:2, 2], [5.0, -3.0])
    # HQ pixel (y, x) shows LQ point (y + 5, x - 3): LQ shifted by (-5, 3) matches HQ
    est, _, _ = phase_cross_correlation(hq.sum(0), lq.sum(0) - lq.sum(0).mean(), upsample_factor=4)
    np.testing.assert_allclose(est, [-5.0, 3.0], atol=1.0)


def test_scale_changes_the_hq_grid():
    lq, hq, meta = synthetic.make_pair((64, 64), seed=3, scale=0.5, rotation_deg=10.0)
    assert hq.shape == (3, 128, 128)
    assert meta["pixel_size_um"]["hq"] == pytest.approx(0.05)
    m = np.asarray(meta["hq_to_lq"])
    assert np.linalg.det(m[:2, :2]) == pytest.approx(0.25)


def test_dataset_ids():
    lq, hq, ids = synthetic.make_dataset(3, (32, 32))
    assert ids == ["field_000", "field_001", "field_002"] and len(lq) == len(hq) == 3


def test_a_denoising_pair_keeps_the_wide_field_optics():
    """``hq_system="widefield"``: the HQ is the LQ's own optics with many photons (a frame
    average), so it correlates with the LQ far better than a confocal HQ does."""
    kw = dict(seed=3, wf_photons=10.0, dtype="float32")
    lq, hq, meta = synthetic.make_pair((64, 64), hq_system="widefield", cf_photons=5000.0, **kw)
    lq_c, hq_c, _ = synthetic.make_pair((64, 64), **kw)
    assert meta["hq_system"]["kind"] == "wide-field" and hq.shape == lq.shape
    np.testing.assert_array_equal(lq, lq_c)  # the same specimen and LQ camera
    for c in range(3):
        same = np.corrcoef(hq[c].ravel(), lq[c].ravel())[0, 1]
        other = np.corrcoef(hq_c[c].ravel(), lq[c].ravel())[0, 1]
        assert same > other
    with pytest.raises(ValueError, match="hq_system"):
        synthetic.make_pair((64, 64), hq_system="sted")
