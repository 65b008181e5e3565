"""The generator's call path is chosen by measurement, cached per machine, and may be forced."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import call_paths


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRSCOPE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PAIRSCOPE_CALL_PATH", raising=False)
    return tmp_path


def test_every_path_computes_what_the_model_computes(trained_tiny):
    model, _ = trained_tiny
    generator = model._ensure_built().generator
    rng = np.random.default_rng(5)
    for name, build in call_paths.CALL_PATHS.items():
        call = build(generator)
        for shape in [(1, 32, 32, 3), (2, 48, 64, 3), (1, 32, 32, 3)]:
            x = rng.random(shape, dtype=np.float32)
            np.testing.assert_allclose(
                call(x), np.asarray(generator(x)), atol=1e-5, err_msg=f"path {name!r}"
            )


def test_the_fastest_path_is_measured_once_and_kept(trained_tiny, cache_dir):
    model, _ = trained_tiny
    generator = model._ensure_built().generator
    probe = call_paths.probe_shape_for(64, 4, 3)
    timings = call_paths.measure(generator, probe, repeats=1)
    assert set(timings) == set(call_paths.CALL_PATHS)
    assert all(t > 0 for t in timings.values())

    first = call_paths.chosen_path(generator, probe, "float32")
    assert first in call_paths.CALL_PATHS
    kept = json.loads(call_paths.cache_path().read_text())
    assert list(kept.values()) == [first]
    (key,) = kept
    assert "tf " in key and "float32" in key and "x".join(map(str, probe)) in key
    # another policy is another measurement
    call_paths.chosen_path(generator, probe, "mixed_bfloat16")
    assert len(json.loads(call_paths.cache_path().read_text())) == 2

    # the next process reads the choice instead of measuring: a kept choice is what it gets
    other = next(name for name in call_paths.CALL_PATHS if name != first)
    call_paths.cache_path().write_text(json.dumps({key: other}))
    assert call_paths.chosen_path(generator, probe, "float32") == other


def test_a_setting_forces_a_path_and_a_wrong_name_is_refused(trained_tiny, cache_dir, monkeypatch):
    model, _ = trained_tiny
    generator = model._ensure_built().generator
    probe = call_paths.probe_shape_for(64, 4, 3)
    monkeypatch.setenv("PAIRSCOPE_CALL_PATH", "eager call")
    assert call_paths.chosen_path(generator, probe, "float32") == "eager call"
    assert not call_paths.cache_path().exists()  # nothing measured
    monkeypatch.setenv("PAIRSCOPE_CALL_PATH", "fast please")
    with pytest.raises(ValueError, match="graph per shape"):
        call_paths.chosen_path(generator, probe, "float32")


def test_prediction_uses_the_chosen_path(trained_tiny, cache_dir, monkeypatch):
    from models import EnhancementModel

    _, path = trained_tiny
    monkeypatch.setenv("PAIRSCOPE_CALL_PATH", "graph, dynamic shape")
    model = EnhancementModel.load(path)
    image = np.random.default_rng(1).integers(0, 255, (3, 40, 52)).astype(np.uint8)
    out = model.predict(image)
    assert model._ensure_built().call_path == "graph, dynamic shape"
    monkeypatch.setenv("PAIRSCOPE_CALL_PATH", "graph per shape")
    again = EnhancementModel.load(path).predict(image)
    np.testing.assert_allclose(out, again, atol=1e-4)


def test_probe_is_the_tile_size_capped_and_on_the_network_multiple():
    assert call_paths.probe_shape_for(2048, 16, 3) == (1, 1024, 1024, 3)
    assert call_paths.probe_shape_for(100, 16, 2) == (1, 96, 96, 2)
    assert call_paths.probe_shape_for(8, 16, 1) == (1, 16, 16, 1)


def test_aligned_tiles_reach_tensorflow_without_a_copy_and_others_are_copied():
    """An aligned tile is shared (the network reads the caller's buffer, no 48 MB copy per
    2048² × 3 tile); an unaligned or read-only one is copied (sharing it would abort
    TensorFlow), with the same values either way."""
    from models.data import ALIGN, aligned_empty

    tile = aligned_empty((1, 32, 48, 3))
    assert tile.ctypes.data % ALIGN == 0 and tile.flags.c_contiguous
    tile[:] = np.arange(tile.size, dtype=np.float32).reshape(tile.shape)
    shared = call_paths.to_tensor(tile)
    tile[0, 0, 0, 0] = -1.0
    assert float(shared[0, 0, 0, 0]) == -1.0
    raw = np.zeros(tile.size + 1, np.float32)
    unaligned = raw[1:].reshape(tile.shape)
    assert unaligned.ctypes.data % ALIGN != 0
    unaligned[:] = tile
    copied = call_paths.to_tensor(unaligned)
    np.testing.assert_array_equal(copied.numpy(), tile)
    unaligned[0, 0, 0, 0] = 5.0
    assert float(copied[0, 0, 0, 0]) == -1.0
    frozen = tile.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(call_paths.to_tensor(frozen).numpy(), tile)
