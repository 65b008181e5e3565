import json

import numpy as np
import pytest

from models import Config, EnhancementModel


def test_save_load_round_trip(trained_tiny, tmp_path):
    model, path = trained_tiny
    img = np.random.default_rng(0).random((3, 48, 40)).astype(np.float32) * 300
    a = model.predict(img)
    loaded = EnhancementModel.load(path)
    np.testing.assert_array_equal(loaded.predict(img), a)
    assert loaded.identity["id"] == model.identity["id"] and loaded.identity["id"]
    assert loaded.config == model.config.with_overrides(n_channels=3)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["training"]["steps"] == 20 and "versions" in meta
    assert json.loads((path / "normalization.json").read_text())["high"] == 99.8
    # a .zip archive holds the same model
    z = model.save(tmp_path / "m.zip")
    np.testing.assert_array_equal(EnhancementModel.load(z).predict(img), a)
    # saving again over a model directory replaces it
    model.save(path)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "generator.weights.h5",
        "metadata.json",
        "normalization.json",
    ]


@pytest.mark.parametrize(
    "train_prec,load_prec,tol",
    [("mixed_bfloat16", "float32", 0.05), ("float32", "mixed_bfloat16", 0.05)],
)
def test_round_trip_across_precisions(pairs, tmp_path, train_prec, load_prec, tol):
    lq, hq, ids = pairs
    m = EnhancementModel(Config.preset("tiny", precision=train_prec))
    m.train(lq, hq, ids, steps=10)
    m.save(tmp_path / "m")
    other = EnhancementModel.load(tmp_path / "m", precision=load_prec)
    assert other.policy == load_prec
    img = lq[0]
    a, b = m.predict(img), other.predict(img)
    span = float(np.percentile(a, 99.8) - np.percentile(a, 1))
    assert np.abs(a - b).mean() / span < tol / 5
    assert np.abs(a - b).max() / span < tol
    same = EnhancementModel.load(tmp_path / "m")
    np.testing.assert_array_equal(same.predict(img), a)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        EnhancementModel.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="lacks"):
        EnhancementModel.load(tmp_path / "empty")
    (tmp_path / "junk.zip").write_text("junk")
    with pytest.raises(ValueError, match="neither"):
        EnhancementModel.load(tmp_path / "junk.zip")


def test_untrained_model_needs_channels():
    with pytest.raises(ValueError, match="channels"):
        EnhancementModel(Config.preset("tiny")).predict(np.zeros((3, 32, 32)))
