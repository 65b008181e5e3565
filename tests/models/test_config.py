import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.config import PRESETS, Config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_round_trip(name):
    c = Config.preset(name)
    assert Config.from_json(c.to_json()) == c
    assert Config.from_dict(json.loads(c.to_json())) == c


def test_paper_preset_matches_the_paper():
    c = Config.preset("paper")
    assert (c.patch_size, c.base_filters, c.depth, c.convs_per_block) == (256, 64, 4, 3)
    assert c.learning_rate == 1e-5 and c.lr_schedule == "constant"
    assert (c.disc_blocks, c.disc_convs_per_block) == (10, 4)
    share = (c.mse_weight + c.ssim_weight) / (c.mse_weight + c.ssim_weight + c.adv_weight)
    assert share == pytest.approx(0.10)


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="'bogus'"):
        Config.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="'nope'"):
        Config.preset("tiny").with_overrides({"nope": 3})
    with pytest.raises(ValueError, match="'nope'"):
        Config.preset("tiny", nope=3)


@pytest.mark.parametrize(
    "key,value",
    [
        ("learning_rate", -1.0),
        ("learning_rate", "fast"),
        ("patch_size", 30),
        ("precision", "float8"),
        ("depth", 0),
        ("batch_size", True),
        ("minutes", 0),
        ("lr_schedule", "step"),
        ("ssim_filter_size", 4),
        ("clipnorm", -1.0),
        ("steps", 1.5),
        ("val_fraction", 1.0),
    ],
)
def test_bad_value_is_named(key, value):
    with pytest.raises(ValueError, match=repr(key)):
        Config.preset("cpu-small").with_overrides({key: value})


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset"):
        Config.preset("huge")


def test_overrides_return_a_new_validated_config():
    base = Config.preset("cpu-small")
    c = base.with_overrides({"minutes": 3, "seed": 7})
    assert (c.minutes, c.seed) == (3, 7)
    assert base.minutes == 15.0


def test_bad_json():
    with pytest.raises(ValueError, match="JSON"):
        Config.from_json("{not json")


def test_light_modules_do_not_import_tensorflow():
    code = (
        "import sys, models, models.config, models.metrics, models.synthetic, "
        "models.baselines, models.data, models.precision, models.image_io, models.ome_tiff, "
        "models.output_metadata, "
        "models.files, "
        "models.cli_science; "
        "bad = [m for m in ('tensorflow', 'keras', 'fastapi', 'celery', 'api', 'worker') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_per_channel_step_draws_about_batch_size_single_channel_patches():
    """A per-channel generator runs its network on every channel of a patch, so it draws
    ``batch_size / channels`` patches per step (a step costs what its base's did)."""
    c = Config.preset("cpu-small")
    assert c.samples_per_step(3) == 8
    pc = c.with_overrides(per_channel=True)
    assert [pc.samples_per_step(n) for n in (1, 2, 3, 4, 16)] == [8, 4, 3, 2, 1]
