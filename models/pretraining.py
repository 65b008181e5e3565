"""Training a base model: the synthetic recipe's pairs and any given aligned pairs, every
channel a single-channel field of its own (:mod:`models.base_models`), one generator for all.
The service's pretraining job and ``pairscope pretrain`` both call :func:`pretrain`.

Example::

    from models import Config
    from models.base_models import SyntheticRecipe
    from models.pretraining import pretrain
    base = pretrain(Config.preset("tiny"), SyntheticRecipe(fields=8), [])
    base.save("base.zip")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .base_models import (
    Field,
    SyntheticRecipe,
    pixel_size_range,
    single_channel_fields,
    synthetic_fields,
)
from .config import Config
from .model import EnhancementModel

BASE_METADATA = "base"  # the key of a base's lineage in its saved metadata


def pretraining_fields(
    recipe: SyntheticRecipe, pairs: Sequence[tuple[Field, float]]
) -> tuple[list[Field], list[float]]:
    """The recipe's synthetic fields followed by ``pairs`` (each with its aligned grid's pixel
    size), all split into single-channel fields; and the pixel sizes they cover."""
    chosen = [*synthetic_fields(recipe), *pairs]
    pixels = [pixel for _, pixel in chosen]
    return list(single_channel_fields(f for f, _ in chosen)), pixels


def pretrain(
    config: Config,
    recipe: SyntheticRecipe,
    pairs: Sequence[tuple[Field, float]],
    *,
    lineage: dict[str, Any] | None = None,
    progress: Callable[[dict], None] | None = None,
    name: str = "pairscope base",
) -> EnhancementModel:
    """A single-channel base trained on the recipe's synthetic pairs and ``pairs``. Its
    metadata ``"base"`` holds the recipe, the pixel sizes it learned on and ``lineage``."""
    fields, pixels = pretraining_fields(recipe, pairs)
    if not fields:
        raise ValueError("nothing to pretrain on: no synthetic fields and no pairs")
    model = EnhancementModel(config.with_overrides(n_channels=1), n_channels=1, name=name)
    groups = [field_id.rsplit("/c", 1)[0] for field_id, _, _ in fields]  # a field's channels
    model.train(
        [lq for _, lq, _ in fields],
        [hq for _, _, hq in fields],
        groups,
        progress=progress,
    )
    low, high = pixel_size_range(pixels)
    model.metadata[BASE_METADATA] = {
        "recipe": recipe.to_dict(),
        "pixel_size_range_um": [low, high],
        "fields": len(fields),
        **(lineage or {}),
    }
    return model
