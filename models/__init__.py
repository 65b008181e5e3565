"""Pairscope's science core: networks, training, tiled prediction, metrics, baselines, simulator.

Importing ``models`` (or ``models.config``, ``models.metrics``, ``models.synthetic``,
``models.baselines``, ``models.data``, ``models.precision``) does not import TensorFlow; the
names below that need it (``EnhancementModel``, ``TrainingCancelled``, ``TrainingResult``) are
loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import PRESETS, Config

__all__ = ["Config", "PRESETS", "EnhancementModel", "TrainingCancelled", "TrainingResult"]

_LAZY = {
    "EnhancementModel": "models.model",
    "TrainingCancelled": "models.training",
    "TrainingResult": "models.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
