"""The scientist's commands without the service: ``train-local`` and ``enhance``.

The ``pairscope`` console script parses the arguments and calls :func:`train_local` /
:func:`enhance`. Both show tqdm progress bars, end bad input with a :class:`ScienceInputError`
whose message names the file and the problem, and write their output atomically (temporary
sibling + rename): on any failure nothing is left at the output path.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import Config
from .files import looks_like_zarr, sha256_file, sha256_tree
from .image_io import ImageInfo, InvalidImage, inspect_tiff, read_image
from .ome_tiff import write_ome_tiff
from .ome_zarr import open_ome_zarr, write_ome_zarr
from .output_metadata import Imaging, OutputMetadata, Provenance, imaging_of_tiff

__all__ = [
    "ScienceInputError",
    "train_local",
    "enhance",
    "enhance_files",
    "load_model",
    "output_format_of",
    "pair_folders",
    "read_input_image",
]

MODEL_MARKER = "metadata.json"
FORMATS = ("ome-tiff", "ome-zarr")
UNKNOWN_PIXEL_UM = 1.0  # the trust checks' pixel size when neither training nor input has one


class ScienceInputError(ValueError):
    """Bad input to the science CLI; the message names the file and the problem."""


def read_input_image(
    path: str | os.PathLike, channels: int | None = None
) -> tuple[np.ndarray, str]:
    """The image in canonical axes (CYX or ZCYX), read by the reader the service uses, so the
    command line refuses what an upload would, with the same words after the file's path."""
    array, info = _read_with_info(path, channels)
    return array, info.axes


def _read_with_info(
    path: str | os.PathLike, channels: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    try:
        return read_image(path, channels=channels)
    except InvalidImage as e:
        raise ScienceInputError(f"{path}: {e}") from e


def _training_imaging(lq_dir: str | os.PathLike, hq_dir: str | os.PathLike) -> Imaging:
    """What the input files say about the images a local model learns on: the first HQ
    file's OME channels and objective, its pixel size and Z step (else the LQ file's)."""
    _, lq_path, hq_path = pair_folders(lq_dir, hq_dir)[0]
    sizes = inspect_tiff(hq_path)
    if sizes.pixel_size_um is None:
        sizes = inspect_tiff(lq_path)
    return imaging_of_tiff(hq_path, sizes.pixel_size_um, sizes.z_step_um)


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


def pair_folders(
    lq_dir: str | os.PathLike, hq_dir: str | os.PathLike
) -> list[tuple[str, Path, Path]]:
    """Pair the files of two folders by name (``field_001.tif`` ↔ ``field_001.tif``; the
    ``.tif``/``.tiff``/``.ome.tif`` suffix may differ). Every file must have a partner."""
    lq = _list_images(Path(lq_dir), "LQ")
    hq = _list_images(Path(hq_dir), "HQ")
    only_lq = sorted(set(lq) - set(hq))
    only_hq = sorted(set(hq) - set(lq))
    if only_lq:
        raise ScienceInputError(
            f"{lq[only_lq[0]]}: no file of that name in the HQ folder "
            f"{hq_dir} ({len(only_lq)} LQ file(s) without a partner)"
        )
    if only_hq:
        raise ScienceInputError(
            f"{hq[only_hq[0]]}: no file of that name in the LQ folder "
            f"{lq_dir} ({len(only_hq)} HQ file(s) without a partner)"
        )
    return [(s, lq[s], hq[s]) for s in sorted(lq)]


def _planes(arr: np.ndarray, axes: str) -> list[np.ndarray]:
    """Split a canonical image into CYX planes."""
    return [arr] if axes == "CYX" else list(arr)  # ZCYX


def load_pairs(lq_dir, hq_dir):
    """Read and check all pairs; returns ``(lq_planes, hq_planes, field_ids)``."""
    lq_list, hq_list, ids = [], [], []
    n_channels = None
    first = None
    for stem, lp, hp in pair_folders(lq_dir, hq_dir):
        a, ax_a = read_input_image(lp)
        b, ax_b = read_input_image(hp)
        if a.shape != b.shape or ax_a != ax_b:
            raise ScienceInputError(
                f"{lp}: shape {a.shape} ({ax_a}) differs from its HQ "
                f"partner {hp}: {b.shape} ({ax_b})"
            )
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
        raise ScienceInputError(
            f"{out}: exists and is not a Pairscope model; choose another output path"
        )
    if not out.parent.exists():
        raise ScienceInputError(f"{out}: the folder {out.parent} does not exist")


def run_config(preset: str, seed: int, minutes: float | None, steps: int | None) -> Config:
    """The preset with this run's seed, budget and step count; bad settings are the user's."""
    try:
        config = Config.preset(preset, seed=int(seed))
        if minutes is not None:
            config = config.with_overrides(minutes=float(minutes))
        if steps is not None:
            config = config.with_overrides(steps=int(steps))
    except ValueError as e:
        raise ScienceInputError(f"settings: {e}") from e
    return config


def train_local(
    lq_dir: str | os.PathLike,
    hq_dir: str | os.PathLike,
    out: str | os.PathLike,
    preset: str = "cpu-small",
    minutes: float | None = None,
    seed: int = 0,
    steps: int | None = None,
    init: str | None = None,
) -> None:
    """Train a model on the aligned pairs of two folders and save it to ``out``.

    ``init``: start from a base (``"base"``: the one shipped with the package; or the path of
    a model folder, e.g. one made by ``pairscope pretrain``), see :mod:`models.base_init`.

    Files pair by name; every pair must have one shape and all pairs one channel count
    (Z stacks contribute their planes). ``minutes`` overrides the preset's wall-clock budget,
    ``steps`` its step count. The model directory appears at ``out`` only when training
    finished (an existing Pairscope model there is replaced).
    """
    from tqdm.auto import tqdm

    from .model import EnhancementModel

    out = Path(out)
    _check_output_dir(out)
    config = run_config(preset, seed, minutes, steps)
    lq, hq, ids = load_pairs(lq_dir, hq_dir)
    ps = config.patch_size
    for i, a in enumerate(lq):
        if min(a.shape[1:]) < ps:
            raise ScienceInputError(
                f"{Path(lq_dir) / ids[i]}: image {a.shape[1:]} is smaller "
                f"than the {preset} patch size {ps}"
            )
    imaging = _training_imaging(lq_dir, hq_dir)
    if init is None:
        model = EnhancementModel(config, name=out.name)
    else:
        from .base_init import initialise_from_base
        from .cli_pretraining import check_start, load_start, start_config

        start, label = load_start(init)
        check_start(start, lq[0].shape[0], imaging.pixel_size_um)
        config = start_config(config, start, label)
        model = EnhancementModel(config, n_channels=lq[0].shape[0], name=out.name)
        initialise_from_base(model, start)
    bar = tqdm(
        total=100,
        unit="%",
        desc="training",
        bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}{postfix}]",
    )

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
    model.metadata["source"] = {"lq_dir": str(lq_dir), "hq_dir": str(hq_dir), "preset": preset}
    model.metadata["imaging"] = imaging.to_dict()
    _save_trust_reference(model, lq, hq, ids, imaging)
    _save_uncertainty_calibration(model, lq, hq, ids)
    model.save(out)


def _save_trust_reference(model, lq, hq, ids, imaging: Imaging) -> None:
    """The checks' reference of a local model: blur and statistics from the fields it trained
    on, the OOD threshold from those it validated on (as the service does at publish time)."""
    from .trust import METADATA_KEY, fit_trust_reference

    val = set(model.metadata.get("training", {}).get("val_fields") or ())
    train = [i for i, f in enumerate(ids) if f not in val] or list(range(len(ids)))
    reference = fit_trust_reference(
        [lq[i] for i in train],
        [hq[i] for i in train],
        [lq[i] for i, f in enumerate(ids) if f in val],
        imaging.pixel_size_um or UNKNOWN_PIXEL_UM,
    )
    model.metadata[METADATA_KEY] = reference.to_dict()


def _save_uncertainty_calibration(model, lq, hq, ids) -> None:
    """The intervals' calibration of a local model, on the fields it validated on (the
    training fields, with a note, when it had none), as the service does at publish time."""
    from .trust import UNCERTAINTY_KEY
    from .uncertainty_evaluation import calibrate

    val = set(model.metadata.get("training", {}).get("val_fields") or ())
    validation = [i for i, f in enumerate(ids) if f in val]
    train = [i for i, f in enumerate(ids) if f not in val]
    calibration = calibrate(
        model,
        [lq[i] for i in validation],
        [hq[i] for i in validation],
        [lq[i] for i in train],
        [hq[i] for i in train],
    )
    model.metadata[UNCERTAINTY_KEY] = calibration.to_dict()


def load_model(model_path: str | os.PathLike):  # -> EnhancementModel (imports TensorFlow)
    """Load a saved model once, for as many inputs as there are; a bad path is the user's."""
    from .model import EnhancementModel

    model_path = Path(model_path)
    if not model_path.exists():
        raise ScienceInputError(f"{model_path}: no such model")
    try:
        return EnhancementModel.load(model_path)
    except (ValueError, OSError, KeyError) as e:
        raise ScienceInputError(f"{model_path}: not a Pairscope model ({e})") from e


def enhance_files(
    model_path: str | os.PathLike,
    jobs: list[tuple[str | os.PathLike, str | os.PathLike]],
    ensemble: bool = False,
    out_dtype: str = "float32",
    output_format: str | None = None,
    consistency_dir: str | os.PathLike | None = None,
    uncertainty_dir: str | os.PathLike | None = None,
) -> dict[Path, str]:
    """Enhance each ``(input, output)`` of ``jobs`` with one model, loaded once.

    A bad model ends it (:class:`ScienceInputError`); an input that cannot be enhanced does
    not stop the others. Returns the failures: input path → why. ``consistency_dir`` /
    ``uncertainty_dir``: folders for each output's trust maps (``<output stem>_trust.ome.tif``).
    """
    from .trust_maps import trust_name

    model = load_model(model_path)
    _check_trust_available(model, model_path, consistency_dir, uncertainty_dir)
    failed: dict[Path, str] = {}
    for input_path, output_path in jobs:
        name = trust_name(Path(output_path).name)
        try:
            enhance(
                model_path,
                input_path,
                output_path,
                ensemble,
                out_dtype,
                model=model,
                output_format=output_format,
                consistency_path=Path(consistency_dir) / name if consistency_dir else None,
                uncertainty_path=Path(uncertainty_dir) / name if uncertainty_dir else None,
            )
        except (ScienceInputError, OSError) as e:
            failed[Path(input_path)] = str(e)
    return failed


def output_format_of(output_path: Path, output_format: str | None = None) -> str:
    """``ome-zarr`` or ``ome-tiff``: as asked, else by the output's suffix (``.zarr`` /
    ``.tif``)."""
    if output_format is not None:
        if output_format not in FORMATS:
            raise ScienceInputError(
                f"{output_path}: format must be one of {', '.join(FORMATS)}, not {output_format!r}"
            )
        return output_format
    name = output_path.name.lower()
    if name.endswith(".zarr"):
        return "ome-zarr"
    if name.endswith((".tif", ".tiff")):
        return "ome-tiff"
    raise ScienceInputError(
        f"{output_path}: the output must be a .tif / .ome.tif file or a "
        ".zarr / .ome.zarr store (or give the format)"
    )


def _check_output(output_path: Path, fmt: str) -> None:
    if not output_path.parent.exists():
        raise ScienceInputError(f"{output_path}: the folder {output_path.parent} does not exist")
    if fmt == "ome-tiff" and output_path.is_dir():
        raise ScienceInputError(f"{output_path}: is a folder")
    if (
        fmt == "ome-zarr"
        and output_path.exists()
        and not (output_path.is_dir() and looks_like_zarr(output_path))
    ):
        raise ScienceInputError(
            f"{output_path}: exists and is not a Zarr store; choose another output path"
        )


def enhance(
    model_path: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    ensemble: bool = False,
    out_dtype: str = "float32",
    model=None,
    output_format: str | None = None,
    block: int | None = None,
    consistency_path: str | os.PathLike | None = None,
    uncertainty_path: str | os.PathLike | None = None,
) -> dict | None:
    """Enhance one image (TIFF or OME-Zarr) with a saved model and write it as OME-TIFF or
    OME-Zarr with the model's identity.

    ``out_dtype``: ``"float32"`` (the input's intensity scale) or ``"uint16"``. ``ensemble``:
    average the 8 flips / rotations (8× slower, slightly better). ``model``: the model already
    loaded from ``model_path`` (:func:`enhance_files` loads it once for many inputs).
    ``output_format``: ``ome-tiff`` or ``ome-zarr`` (default: by the output's suffix). An
    OME-Zarr input or output is enhanced block by block (``block`` pixels a side, default 1280 for
    ``cpu-small``; :mod:`models.chunked_predict`): with both, the image is never whole in
    memory. A TIFF is read whole, and an OME-TIFF output is assembled whole before writing.
    ``consistency_path`` / ``uncertainty_path``: where to write the output's trust maps (an
    OME-TIFF of named channels, models/trust_maps.py; TIFF in, OME-TIFF out); then returns the
    trust summary and prints its verdict.
    """
    model_path, input_path, output_path = Path(model_path), Path(input_path), Path(output_path)
    if out_dtype not in ("float32", "uint16"):
        raise ScienceInputError(
            f"{output_path}: out_dtype must be float32 or uint16, not {out_dtype!r}"
        )
    fmt = output_format_of(output_path, output_format)
    _check_output(output_path, fmt)
    trust_paths = [Path(p) for p in (consistency_path, uncertainty_path) if p is not None]
    for extra in trust_paths:
        if not extra.parent.exists():
            raise ScienceInputError(f"{extra}: the folder {extra.parent} does not exist")
    if model is None:
        model = load_model(model_path)
    _check_trust_available(model, model_path, consistency_path, uncertainty_path)
    zarr_input = looks_like_zarr(input_path)
    if trust_paths and (zarr_input or fmt != "ome-tiff"):
        raise ScienceInputError(
            f"{input_path}: trust maps are made for a TIFF input and an "
            "OME-TIFF output (the OME-Zarr path never holds the whole image)"
        )
    if zarr_input:
        try:
            source, info = open_ome_zarr(input_path, channels=model.n_channels)
        except InvalidImage as e:
            raise ScienceInputError(f"{input_path}: {e}") from e
    else:
        source, info = _read_with_info(input_path, channels=model.n_channels)
        n_c = source.shape[info.axes.index("C")]
        if n_c != model.n_channels:
            raise ScienceInputError(
                f"{input_path}: {n_c} channel(s) (shape {source.shape}, "
                f"axes {info.axes}), but the model {model_path} takes "
                f"{model.n_channels}"
            )
    meta = _output_metadata(model, model_path, input_path, info, ensemble, out_dtype)
    if fmt == "ome-tiff" and not zarr_input:
        arr, out, axes = _enhance_in_memory(
            model, source, info.axes, output_path, meta, ensemble, out_dtype
        )
        if trust_paths:
            return _write_trust(model, arr, out, axes, meta, input_path, trust_paths)
        return None
    _enhance_by_blocks(model, source, info.axes, output_path, fmt, meta, ensemble, out_dtype, block)
    return None


def _enhance_in_memory(
    model,
    arr: np.ndarray,
    axes: str,
    output_path: Path,
    meta: OutputMetadata,
    ensemble: bool,
    out_dtype: str,
) -> tuple[np.ndarray, np.ndarray, str]:
    from tqdm.auto import tqdm

    from .networks import receptive_field_margin
    from .predict import count_tiles

    if model.n_channels == 1:  # a single-channel result keeps no channel axis
        arr = arr.squeeze(axes.index("C"))
        axes = axes.replace("C", "")
    c = model.config
    n_planes = arr.shape[0] if axes.startswith("Z") else 1
    yx = arr.shape[-2:]
    total = (
        n_planes
        * (8 if ensemble else 1)
        * count_tiles(yx, c.multiple, receptive_field_margin(c), c.tile_size)
    )
    with tqdm(total=total, unit="tile", desc="enhancing") as bar:
        out = model.predict(
            arr, axes=axes, ensemble=ensemble, out_dtype=out_dtype, progress=bar.update
        )
    write_ome_tiff(output_path, out, axes, meta)
    return arr, out, axes


def _enhance_by_blocks(
    model,
    source,
    axes: str,
    output_path: Path,
    fmt: str,
    meta: OutputMetadata,
    ensemble: bool,
    out_dtype: str,
    block: int | None,
) -> None:
    from tqdm.auto import tqdm

    from .chunked_predict import enhance_lazily

    bar = tqdm(unit="block", desc="enhancing")
    try:
        lazy = enhance_lazily(
            model,
            source,
            axes,
            block=block,
            ensemble=ensemble,
            out_dtype=out_dtype,
            progress=bar.update,
        )
        bar.total = lazy.n_blocks
        bar.refresh()
        if fmt == "ome-zarr":
            window = (lazy.lo.min(axis=0), lazy.hi.max(axis=0))
            write_ome_zarr(output_path, lazy.data, axes, meta, window=window)
            return
        out = lazy.data.compute(scheduler="synchronous")
    finally:
        bar.close()
    if model.n_channels == 1:
        out = out.squeeze(axes.index("C"))
        axes = axes.replace("C", "")
    write_ome_tiff(output_path, out, axes, meta)


def _check_trust_available(model, model_path, consistency, uncertainty) -> None:
    """Refuse, before any work, trust maps the model cannot make."""
    from .trust import calibration_of, reference_of

    if consistency is not None and reference_of(model.metadata) is None:
        raise ScienceInputError(
            f"{model_path}: --consistency is not available for this model "
            "(saved before trust checks: it has no reference blur)"
        )
    if uncertainty is not None and calibration_of(model.metadata) is None:
        raise ScienceInputError(
            f"{model_path}: --uncertainty is not available for this model "
            "(it carries no calibrated uncertainty)"
        )


def _write_trust(
    model,
    image: np.ndarray,
    output: np.ndarray,
    axes: str,
    metadata: OutputMetadata,
    input_path: Path,
    paths: list,
) -> dict:
    """Check one output, write its maps to each of ``paths``, print the verdict."""
    from .trust import check_output
    from .trust_maps import write_trust_tiff

    pixel = metadata.imaging.pixel_size_um or UNKNOWN_PIXEL_UM
    names = [c.name for c in metadata.imaging.channels]
    assessment = check_output(model, image, output, axes, pixel, names)
    for path in paths:
        write_trust_tiff(path, assessment, axes, metadata)
    summary = assessment.summary()
    rsp = ", ".join(f"{v:.3f}" for v in summary["consistency"]["rsp"] if v is not None)
    verdict = "review: " + "; ".join(summary["review_reasons"]) if summary["review"] else "ok"
    print(
        f"{input_path.name}: consistency RSP {rsp}; OOD score {summary['ood']['score']} "
        f"(threshold {summary['ood']['threshold']}): {verdict}"
    )
    return summary


def _output_metadata(
    model, model_path: Path, input_path: Path, info: ImageInfo, ensemble: bool, out_dtype: str
) -> OutputMetadata:
    """The keys the service writes, filled from the saved model: its imaging description
    (channels, objective, training pixel grid) under the input's own pixel size and date."""
    saved = Imaging.from_dict(model.metadata.get("imaging"))
    imaging = replace(
        saved,
        pixel_size_um=info.pixel_size_um or saved.pixel_size_um,
        z_step_um=info.z_step_um or saved.z_step_um,
    )
    ident = model.identity
    provenance = Provenance(
        pairing=saved.pairing or "",
        version="",  # a model file does not know the version number the service gave it
        model_id=ident["id"] or "",
        model_sha256=sha256_file(model_path) if model_path.is_file() else "",
        weights_sha256=model.metadata.get("weights_sha256", ""),
        input_file=input_path.name,
        input_sha256=sha256_tree(input_path) if input_path.is_dir() else sha256_file(input_path),
        ensemble=bool(ensemble),
        precision=model.policy,
        out_dtype=out_dtype,
    )
    return OutputMetadata(
        name=f"{input_path.name} enhanced by {ident['name']}",
        imaging=imaging,
        provenance=provenance,
        acquisition_date=info.acquisition_date,
    )
