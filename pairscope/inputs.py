"""Which local TIFF files a command works on, and where their results go. Shared by `upload`,
`enhance-remote` and local `enhance`, so a folder means the same files to all three and a bad
path is one line (a `ClientError`, exit 2) before anything is sent or computed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from models.files import looks_like_zarr
from pairscope.client import ClientError

TIFF = re.compile(r"\.(ome\.)?tiff?$", re.I)
IMAGE_SUFFIX = re.compile(r"\.(ome\.)?(tiff?|zarr)$", re.I)


def tiffs_in(folder: Path) -> list[Path]:
    """The folder's TIFF files, sorted; other files are ignored, an empty or missing folder is
    an error that names it."""
    if not folder.exists():
        raise ClientError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ClientError(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and TIFF.search(p.name))
    if not found:
        raise ClientError(f"{folder}: no TIFF files")
    return found


def collect_tiffs(inputs: Sequence[Path], zarr: bool = False) -> list[Path]:
    """Files as given, folders as their TIFFs (sorted); output names must not collide.
    ``zarr``: a Zarr store given by name (``x.ome.zarr``) is an input, not a folder to list."""
    files: list[Path] = []
    for path in inputs:
        if zarr and path.is_dir() and looks_like_zarr(path):
            files.append(path)
        elif path.is_dir():
            files += tiffs_in(path)
        elif path.is_file():
            files.append(path)
        else:
            raise ClientError(f"{path}: no such file or folder")
    seen: dict[str, Path] = {}
    for path in files:
        stem = output_name(path.name)
        if stem in seen:
            raise ClientError(
                f"{seen[stem]} and {path} would both be written as {stem}; rename one"
            )
        seen[stem] = path
    return files


def output_name(filename: str, output_format: str = "ome-tiff") -> str:
    """Where an input's result goes: `<stem>_enhanced.ome.tif`, as the service names it (or
    `<stem>_enhanced.ome.zarr` for the ome-zarr format)."""
    suffix = "ome.zarr" if output_format == "ome-zarr" else "ome.tif"
    return f"{IMAGE_SUFFIX.sub('', filename)}_enhanced.{suffix}"


def output_folder(out_dir: Path) -> Path:
    """Create the results folder (and its parents); a file in the way is an error naming it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ClientError(
            f"{out_dir}: cannot be a folder for the results ({exc.strerror})"
        ) from exc
    except PermissionError as exc:
        raise ClientError(f"{out_dir}: cannot create it ({exc.strerror})") from exc
    return out_dir
