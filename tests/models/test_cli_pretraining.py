"""Base models on the command line and the channel-by-channel start they give a generator:
`pairscope pretrain` makes a single-channel base that `train-local --init DIR` starts from
(recorded in the model's config), `--init base` starts from the base shipped in the package; a
base-started
multi-channel model computes, on equal channels, exactly what the base computes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.base_init import initialise_from_base
from models.base_models import (
    IncompatibleBase,
    SyntheticRecipe,
    generator_overrides,
    synthetic_fields,
)
from models.cli_pretraining import folder_pairs
from models.config import Config
from models.files import sha256_tree
from models.model import EnhancementModel
from models.shipped_base import shipped_base
from tests.models.test_cli_science import _describe_reference, _pairscope, _quiet, _write_pairs


@pytest.mark.parametrize("stem", ["none", "space_to_depth"])
def test_a_started_model_is_the_base_on_equal_channels(stem: str) -> None:
    config = Config.preset("tiny", stem=stem, precision="float32")  # exact, not bfloat16
    base = EnhancementModel(config, n_channels=1)
    model = EnhancementModel(config.with_overrides(seed=9), n_channels=3)
    initialise_from_base(model, base)
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 1)).astype(np.float32)
    one = base.generator(x).numpy()
    three = model.generator(np.repeat(x, 3, axis=-1)).numpy()
    for c in range(3):
        np.testing.assert_allclose(three[..., c], one[..., 0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stem", ["none", "space_to_depth"])
def test_a_per_channel_start_is_the_base_on_every_channel(stem: str) -> None:
    """A single-channel base starts a per-channel generator (chosen for it), whose every
    channel is exactly the base on that channel, however different the channels are; saved and
    loaded it stays so."""
    config = Config.preset("tiny", stem=stem, precision="float32")
    base = EnhancementModel(config, n_channels=1)
    overrides = generator_overrides(base.config.with_overrides(n_channels=1).to_dict(), {})
    assert overrides["per_channel"] is True
    model = EnhancementModel(config.with_overrides(seed=9, **overrides), n_channels=3)
    assert model.generator.count_params() == base.generator.count_params()
    initialise_from_base(model, base)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    x *= np.asarray([1.0, 5.0, 0.2], np.float32)
    three = model.generator(x).numpy()
    assert three.shape == x.shape
    for c in range(3):
        one = base.generator(x[..., c : c + 1]).numpy()
        np.testing.assert_allclose(three[..., c], one[..., 0], rtol=1e-5, atol=1e-5)
    with pytest.raises(IncompatibleBase, match="per_channel"):
        generator_overrides(
            base.config.with_overrides(n_channels=1).to_dict(), {"per_channel": False}
        )


def test_a_base_of_another_architecture_or_channel_layout_is_refused() -> None:
    base = EnhancementModel(Config.preset("tiny", depth=3), n_channels=1)
    with pytest.raises(IncompatibleBase, match="architecture"):
        initialise_from_base(EnhancementModel(Config.preset("tiny"), n_channels=2), base)
    two = EnhancementModel(Config.preset("tiny"), n_channels=2)
    with pytest.raises(IncompatibleBase, match="2 channels together"):
        initialise_from_base(EnhancementModel(Config.preset("tiny"), n_channels=3), two)


def test_pretrain_then_train_local_from_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pairs = tmp_path / "lab"
    pairs.mkdir()
    lq_dir, hq_dir = _write_pairs(pairs, n=2)
    _describe_reference(hq_dir)
    assert {pixel for _, pixel in folder_pairs(pairs)} == {0.1}

    made = _pairscope(
        "pretrain", "--out", "base", "--synthetic", "1", "--pairs-dir", pairs,
        "--preset", "tiny", "--steps", "3", cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert _quiet(made.stderr), made.stderr
    base = EnhancementModel.load(tmp_path / "base")
    assert base.n_channels == 1
    assert base.metadata["base"]["recipe"]["fields"] == 1
    assert base.metadata["base"]["recipe"]["denoise_fraction"] == 0.5  # the general recipe
    low, high = base.metadata["base"]["pixel_size_range_um"]
    assert low <= 0.1 <= high
    # the lineage names the data by content, not by a path of this machine
    (source,) = base.metadata["base"]["sources"]
    assert source["pairs_dir"] == "lab" and source["pairs"] == 2
    assert source["sha256"] == sha256_tree(pairs)

    trained = _pairscope(
        "train-local", "--lq", lq_dir, "--hq", hq_dir, "--out", "model", "--preset", "tiny",
        "--steps", "3", "--init", "base", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr  # the base shipped inside the package
    shipped = shipped_base()
    assert shipped is not None
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["init"] == "base:shipped"
    assert config["init_sha256"] == shipped.weights_sha256
    assert config["base_filters"] == shipped.config["base_filters"]  # its architecture, kept

    trained = _pairscope(
        "train-local", "--lq", lq_dir, "--hq", hq_dir, "--out", "model", "--preset", "tiny",
        "--steps", "3", "--init", tmp_path / "base", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["init"] == "file:base"
    assert config["init_sha256"] == base.weights_digest()
    assert config["n_channels"] == 3


def test_a_recipe_with_denoising_pairs_mixes_both_kinds_and_keeps_old_recipes() -> None:
    """``denoise_fraction`` turns some fields into denoising pairs; a recipe written before the
    setting existed (no such key) still makes exactly the fields it made then."""
    old = SyntheticRecipe.from_dict({"fields": 3, "shape": [48, 48], "seed": 4})
    again = SyntheticRecipe(fields=3, shape=(48, 48), seed=4, denoise_fraction=0.0)
    for (a, pa), (b, pb) in zip(synthetic_fields(old), synthetic_fields(again), strict=True):
        assert pa == pb
        np.testing.assert_array_equal(a[2], b[2])
    mixed = SyntheticRecipe(fields=6, shape=(48, 48), seed=0, denoise_fraction=0.5)
    kinds = {field_id.split(":")[0] for (field_id, _, _), _ in synthetic_fields(mixed)}
    assert kinds == {"synthetic", "synthetic-denoise"}
    with pytest.raises(ValueError, match="denoise_fraction"):
        SyntheticRecipe(denoise_fraction=1.5)
