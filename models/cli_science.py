"""The scientist's commands without the service: ``train-local`` and ``enhance``.

The ``pairscope`` console script parses the arguments and calls :func:`train_local` /
:func:`enhance`. Both show tqdm progress bars, end bad input with a :class:`ScienceInputError`
whose message names the file and the problem, and write their output atomically (temporary
sibling + rename): on any failure nothing is left at the output path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .tiff_io import ScienceInputError, read_tiff, write_ome_tiff

__all__ = ["ScienceInputError", "train_local", "enhance", "pair_folders"]

MODEL_MARKER = "metadata.json"


def _stem(p: Path) -> str:
    name = p.name
    for suf in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _list_images(folder: Path, role: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise ScienceInputError(f"{folder}: the {role} folder does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ScienceInputError(f"{folder}: the {role} folder holds no images")
    out: dict[str, Path] = {}
    for p in files:
        s = _stem(p)
        if s in out:
            raise ScienceInputError(f"{p}: two files in {folder} share the name {s!r}")
        out[s] = p
    return out


def pair_folders(lq_dir: str | os.PathLike, hq_dir: str | os.PathLike
                 ) -> list[tuple[str, Path, Path]]:
    """Pair the files of two folders by name (``field_001.tif`` ↔ ``field_001.tif``; the
    ``.tif``/``.tiff``/``.ome.tif`` suffix may differ). Every file must have a partner."""
    lq = _list_images(Path(lq_dir), "LQ")
    hq = _list_images(Path(hq_dir), "HQ")
    only_lq = sorted(set(lq) - set(hq))
    only_hq = sorted(set(hq) - set(lq))
    if only_lq:
        raise ScienceInputError(f"{lq[only_lq[0]]}: no file of that name in the HQ folder "
                                f"{hq_dir} ({len(only_lq)} LQ file(s) without a partner)")
    if only_hq:
        raise ScienceInputError(f"{hq[only_hq[0]]}: no file of that name in the LQ folder "
                                f"{lq_dir} ({len(only_hq)} HQ file(s) without a partner)")
    return [(s, lq[s], hq[s]) for s in sorted(lq)]


def _planes(arr: np.ndarray, axes: str) -> list[np.ndarray]:
    """Split a canonical image into CYX planes."""
    if axes == "YX":
        return [arr[None]]
    if axes == "CYX":
        return [arr]
    if axes == "ZYX":
        return [p[None] for p in arr]
    return list(arr)  # ZCYX


def load_pairs(lq_dir, hq_dir):
    """Read and check all pairs; returns ``(lq_planes, hq_planes, field_ids)``."""
    lq_list, hq_list, ids = [], [], []
    n_channels = None
    first = None
    for stem, lp, hp in pair_folders(lq_dir, hq_dir):
        a, ax_a = read_tiff(lp)
        b, ax_b = read_tiff(hp)
        if a.shape != b.shape or ax_a != ax_b:
            raise ScienceInputError(f"{lp}: shape {a.shape} ({ax_a}) differs from its HQ "
                                    f"partner {hp}: {b.shape} ({ax_b})")
        pa, pb = _planes(a, ax_a), _planes(b, ax_b)
        c = pa[0].shape[0]
        if n_channels is None:
            n_channels, first = c, lp
        elif c != n_channels:
            raise ScienceInputError(f"{lp}: {c} channel(s), but {first} has {n_channels}")
        for x, y in zip(pa, pb, strict=True):
            lq_list.append(x)
            hq_list.append(y)
            ids.append(stem)
    return lq_list, hq_list, ids


def _check_output_dir(out: Path) -> None:
    if out.exists() and not (out.is_dir() and (out / MODEL_MARKER).exists()):
        raise ScienceInputError(f"{out}: exists and is not a Pairscope model; "
                                "choose another output path")
    if not out.parent.exists():
        raise ScienceInputError(f"{out}: the folder {out.parent} does not exist")


def train_local(lq_dir: str | os.PathLike, hq_dir: str | os.PathLike, out: str | os.PathLike,
                preset: str = "cpu-small", minutes: float | None = None, seed: int = 0,
                steps: int | None = None) -> None:
    """Train a model on the aligned pairs of two folders and save it to ``out``.

    Files pair by name; every pair must have one shape and all pairs one channel count
    (Z stacks contribute their planes). ``minutes`` overrides the preset's wall-clock budget,
    ``steps`` its step count. The model directory appears at ``out`` only when training
    finished (an existing Pairscope model there is replaced).
    """
    from tqdm.auto import tqdm

    from .config import Config
    from .model import EnhancementModel

    out = Path(out)
    _check_output_dir(out)
    try:
        config = Config.preset(preset, seed=int(seed))
        if minutes is not None:
            config = config.with_overrides(minutes=float(minutes))
        if steps is not None:
            config = config.with_overrides(steps=int(steps))
    except ValueError as e:
        raise ScienceInputError(f"settings: {e}") from e
    lq, hq, ids = load_pairs(lq_dir, hq_dir)
    ps = config.patch_size
    for i, a in enumerate(lq):
        if min(a.shape[1:]) < ps:
            raise ScienceInputError(f"{Path(lq_dir) / ids[i]}: image {a.shape[1:]} is smaller "
                                    f"than the {preset} patch size {ps}")
    model = EnhancementModel(config, name=out.name)
    bar = tqdm(total=100, unit="%", desc="training", bar_format="{l_bar}{bar}| {n:.0f}% "
               "[{elapsed}<{remaining}{postfix}]")

    def progress(p: dict) -> None:
        bar.n = min(100.0, p["percent"])
        post = {"step": p["step"], "loss": f"{p['losses'].get('g_total', 0):.4f}"}
        if p.get("val_psnr") is not None:
            post["val_psnr"] = f"{p['val_psnr']:.2f}"
        bar.set_postfix(post, refresh=False)
        bar.refresh()

    with tempfile.TemporaryDirectory(prefix="pairscope-ckpt-") as ckpt:
        try:
            model.train(lq, hq, ids, progress=progress, checkpoint_dir=ckpt, resume=False)
        finally:
            bar.close()
    model.metadata["source"] = {"lq_dir": str(lq_dir), "hq_dir": str(hq_dir),
                                "preset": preset}
    model.save(out)


def enhance(model_path: str | os.PathLike, input_path: str | os.PathLike,
            output_path: str | os.PathLike, ensemble: bool = False,
            out_dtype: str = "float32") -> None:
    """Enhance one TIFF with a saved model and write an OME-TIFF with the model's identity.

    ``out_dtype``: ``"float32"`` (the input's intensity scale) or ``"uint16"``. ``ensemble``:
    average the 8 flips / rotations (8× slower, slightly better).
    """
    from tqdm.auto import tqdm

    from .model import EnhancementModel
    from .networks import receptive_field_margin
    from .predict import count_tiles

    model_path, input_path, output_path = Path(model_path), Path(input_path), Path(output_path)
    if out_dtype not in ("float32", "uint16"):
        raise ScienceInputError(f"{output_path}: out_dtype must be float32 or uint16, "
                                f"not {out_dtype!r}")
    if not output_path.name.lower().endswith((".tif", ".tiff")):
        raise ScienceInputError(f"{output_path}: the output must be a .tif / .ome.tif file")
    if output_path.exists() and output_path.is_dir():
        raise ScienceInputError(f"{output_path}: is a folder")
    if not output_path.parent.exists():
        raise ScienceInputError(f"{output_path}: the folder {output_path.parent} does not exist")
    if not model_path.exists():
        raise ScienceInputError(f"{model_path}: no such model")
    try:
        model = EnhancementModel.load(model_path)
    except (ValueError, OSError, KeyError) as e:
        raise ScienceInputError(f"{model_path}: not a Pairscope model ({e})") from e
    arr, axes = read_tiff(input_path)
    n_c = 1 if "C" not in axes else arr.shape[axes.index("C")]
    if n_c != model.n_channels:
        raise ScienceInputError(f"{input_path}: {n_c} channel(s) (shape {arr.shape}, axes "
                                f"{axes}), but the model {model_path} takes "
                                f"{model.n_channels}")
    if model.n_channels == 1 and axes == "CYX":
        axes = "YX"
        arr = arr[0]
    c = model.config
    n_planes = arr.shape[0] if axes.startswith("Z") else 1
    yx = arr.shape[-2:]
    total = n_planes * (8 if ensemble else 1) * count_tiles(
        yx, c.multiple, receptive_field_margin(c), c.tile_size)
    with tqdm(total=total, unit="tile", desc="enhancing") as bar:
        out = model.predict(arr, axes=axes, ensemble=ensemble, out_dtype=out_dtype,
                            progress=bar.update)
    ident = model.identity
    annotations = {"software": "pairscope", "model_name": ident["name"],
                   "model_id": ident["id"], "model_created": ident["created"],
                   "source_file": input_path.name, "ensemble": bool(ensemble),
                   "out_dtype": out_dtype}
    write_ome_tiff(output_path, out, axes, name=f"{input_path.name} enhanced by "
                   f"{ident['name']}", annotations=annotations)
