"""Fixtures for the science core: small synthetic pairs and one trained ``tiny`` model."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from models import synthetic  # noqa: E402

W2S = "/work/shared/data/w2s-widefield-denoise"


@pytest.fixture(scope="session")
def pairs():
    """Six registered synthetic pairs (3 × 64 × 64, uint16) with field ids."""
    return synthetic.make_dataset(6, (64, 64), seed=3)


@pytest.fixture(scope="session")
def trained_tiny(pairs, tmp_path_factory):
    """A ``tiny`` model trained for 20 steps in float32, and its saved directory."""
    from models import Config, EnhancementModel

    lq, hq, ids = pairs
    model = EnhancementModel(Config.preset("tiny", precision="float32"), name="tiny-test")
    model.train(lq, hq, ids, steps=20)
    path = tmp_path_factory.mktemp("model") / "tiny"
    model.save(path)
    return model, path


@pytest.fixture(scope="session")
def w2s_field():
    """One real W2S LQ field (3, 512, 512) uint8, or a skip when the data is absent."""
    path = os.path.join(W2S, "lq", "field_065.tif")
    if not os.path.exists(path):
        pytest.skip("W2S data not available")
    import tifffile

    return np.asarray(tifffile.imread(path))
