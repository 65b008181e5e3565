"""The local side of base models: ``pairscope pretrain`` (a base from synthetic pairs and
folders of aligned pairs, no server) and ``pairscope train-local --init base|DIR``.

``--init base`` starts from the base shipped inside the package (:mod:`models.shipped_base`);
an installation without it says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base_models import (
    IncompatibleBase,
    SyntheticRecipe,
    check_compatible,
    generator_overrides,
)
from .cli_science import (
    ScienceInputError,
    _check_output_dir,
    _planes,
    _read_with_info,
    pair_folders,
    run_config,
)
from .config import Config
from .files import sha256_tree
from .shipped_base import SHIPPED_BASE, SHIPPED_INIT, shipped_base

# `pairscope pretrain`'s synthetic recipe beyond fields/shape/seed: half the fields denoising
# pairs (HQ = the same wide-field optics, 100x the photons) beside the wide-field -> confocal
# ones, over 5-500 photons drawn log-uniformly. Chosen to stay general (a lab that only
# denoises and one that crosses systems both start from it), not from any data set's
# statistics; the shipped base was made with it (docs/benchmarks.md, "Transfer").
PRETRAIN_RECIPE: dict[str, Any] = {
    "denoise_fraction": 0.5,
    "denoise_photon_factor": 100.0,
    "wf_photons": (5.0, 500.0),
    "log_photons": True,
}


def shipped_base_path() -> Path:
    """The base shipped with this installation; says so when there is none."""
    shipped = shipped_base()
    if shipped is None:
        raise ScienceInputError(
            f"no base model ships with this installation (looked for {SHIPPED_BASE}); give a "
            "base folder made by `pairscope pretrain`: --init DIR"
        )
    return shipped.path


def load_start(init: str) -> tuple[Any, str]:
    """The model ``--init`` names (``base`` or a path) and the label Config records."""
    from .cli_science import load_model

    if init == "base":
        return load_model(shipped_base_path()), SHIPPED_INIT
    path = Path(init)
    return load_model(path), f"file:{path.resolve().name}"


def start_config(config: Config, start: Any, label: str) -> Config:
    """``config`` with the starting model's generator architecture and its digest recorded."""
    try:
        overrides = generator_overrides(start.config.to_dict(), {})
    except IncompatibleBase as exc:  # pragma: no cover - no explicit request to conflict with
        raise ScienceInputError(str(exc)) from exc
    return config.with_overrides(
        {**overrides, "init": label, "init_sha256": start.weights_digest()}
    )


def check_start(start: Any, n_channels: int, grid_pixel_um: float | None) -> None:
    """Refuse a base whose channel layout, or recorded pixel sizes, cannot start this model."""
    recorded = (start.metadata.get("base") or {}).get("pixel_size_range_um")
    try:
        check_compatible(
            base_channels=start.n_channels,
            base_pixel_range=tuple(recorded) if recorded and grid_pixel_um else (0.0, 1e9),
            n_channels=n_channels,
            grid_pixel_um=grid_pixel_um or 1.0,
        )
    except IncompatibleBase as exc:
        raise ScienceInputError(f"--init: {exc}") from exc


def folder_pairs(pairs_dir: str | os.PathLike) -> list[tuple[tuple[str, Any, Any], float]]:
    """A folder with ``lq/`` and ``hq/`` subfolders of aligned pairs (paired by name, as for
    train-local), each pair with the HQ file's pixel size (the aligned grid)."""
    import numpy as np

    folder = Path(pairs_dir)
    pairs = []
    for stem, lq_path, hq_path in pair_folders(folder / "lq", folder / "hq"):
        lq, lq_info = _read_with_info(lq_path)
        hq, hq_info = _read_with_info(hq_path)
        if lq.shape != hq.shape:
            raise ScienceInputError(f"{lq_path}: shape {lq.shape} differs from {hq_path}")
        pixel = hq_info.pixel_size_um or lq_info.pixel_size_um
        if pixel is None:
            raise ScienceInputError(f"{hq_path}: no pixel size in the file; a base records it")
        for z, (a, b) in enumerate(
            zip(_planes(lq, lq_info.axes), _planes(hq, hq_info.axes), strict=True)
        ):
            field_id = f"{folder.name}:{stem}" + (f"/z{z}" if lq.ndim == 4 else "")
            pairs.append(((field_id, a.astype(np.float32), b.astype(np.float32)), pixel))
    return pairs


def pairs_source(pairs_dir: str | os.PathLike) -> dict[str, Any]:
    """A folder of pairs as a base's lineage records it: its name, how many pairs, and the
    folder's :func:`~models.files.sha256_tree` — what identifies the data on any machine,
    where the folder's path would not."""
    folder = Path(pairs_dir)
    pairs = pair_folders(folder / "lq", folder / "hq")
    return {"pairs_dir": folder.resolve().name, "pairs": len(pairs), "sha256": sha256_tree(folder)}


def pretrain_local(
    out: str | os.PathLike,
    *,
    minutes: float | None,
    synthetic: int,
    pairs_dirs: list[str],
    preset: str = "cpu-small",
    seed: int = 0,
    steps: int | None = None,
    shape: int = 96,
    recipe_options: dict[str, Any] | None = None,
) -> None:
    """Train a base on ``synthetic`` simulated fields and the pairs of ``pairs_dirs``; save
    it to ``out`` (a model folder that ``train-local --init`` takes). ``recipe_options``: the
    other :class:`SyntheticRecipe` settings (default :data:`PRETRAIN_RECIPE`)."""
    from .pretraining import pretrain

    out = Path(out)
    _check_output_dir(out)
    config = run_config(preset, seed, minutes, steps)
    try:
        recipe = SyntheticRecipe.from_dict(
            {
                **(PRETRAIN_RECIPE if recipe_options is None else recipe_options),
                "fields": synthetic,
                "shape": (shape, shape),
                "seed": int(seed),
            }
        )
    except ValueError as exc:
        raise ScienceInputError(f"settings: {exc}") from exc
    pairs = [pair for folder in pairs_dirs for pair in folder_pairs(folder)]
    if not pairs and synthetic == 0:
        raise ScienceInputError("nothing to pretrain on: give --synthetic N or --pairs-dir")
    lineage = {"sources": [pairs_source(d) for d in pairs_dirs]}
    base = pretrain(config, recipe, pairs, lineage=lineage, name=out.name)
    base.save(out)
