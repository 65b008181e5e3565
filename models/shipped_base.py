"""The base generator that ships inside the package (``models/bases/base.zip``), so that the
first pairing of a brand-new network, and ``pairscope train-local --init base``, fine-tune too.

It was made by ``pairscope pretrain``'s general recipe on synthetic pairs and the training
fields of the shared real pairs (W2S 001–012; ``bench/shipped_base.py``, recipe and figures in
docs/benchmarks.md, "Transfer"): the simulator spans optics and noise, the real fields teach
what cells look like. The learning-curve benchmark starts from a synthetic-only base instead
(``bench/bases/synthetic-only.zip``), so that its figures measure transfer to data never seen.
Everything here reads the archive's JSON members with :mod:`zipfile`, so the API can judge and
record the base without TensorFlow; the worker loads the weights and checks them against
:attr:`ShippedBase.weights_sha256`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SHIPPED_BASE = Path(__file__).resolve().parent / "bases" / "base.zip"
SHIPPED_INIT = "base:shipped"  # Config.init of a model started from it


@dataclass(frozen=True)
class ShippedBase:
    """What a training job needs to know about the shipped base before it loads it."""

    path: Path
    config: dict[str, Any]
    weights_sha256: str
    n_channels: int
    pixel_size_range_um: tuple[float, float]
    recipe: dict[str, Any]


@lru_cache(maxsize=4)
def _read(path: Path, mtime: float) -> ShippedBase:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        meta = json.loads(archive.read("metadata.json"))
    base = meta.get("base") or {}
    low, high = base.get("pixel_size_range_um") or (0.0, 1e9)
    return ShippedBase(
        path=path,
        config=config,
        weights_sha256=meta["weights_sha256"],
        n_channels=int(meta.get("n_channels") or config.get("n_channels") or 1),
        pixel_size_range_um=(float(low), float(high)),
        recipe=base.get("recipe") or {},
    )


def shipped_base(path: Path = SHIPPED_BASE) -> ShippedBase | None:
    """The shipped base's description, or None when this installation carries none."""
    if not path.is_file():
        return None
    return _read(path, path.stat().st_mtime)
