"""Files that appear whole or not at all, their content hashes, and which paths are Zarr stores
(standard library only: the client imports it).

A reader never sees a half-written file: every write goes to a temporary sibling that is renamed
onto the target only when it is complete, and removed when the write fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHUNK = 1024 * 1024


@contextmanager
def atomic_write(
    path: str | os.PathLike[str], suffix: str = ".tmp", durable: bool = False
) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` when the block ends
    normally, remove it when the block raises. ``durable`` flushes it to disk before the rename
    (worth it for stored objects and checkpoints, not for scratch files). ``suffix`` keeps an
    extension that a writer inspects (``np.savez``, ``tifffile``)."""
    target = Path(path)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            with temporary.open("rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: object) -> None:
    """``data`` as indented JSON at ``path`` (folders made), whole or not at all."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, suffix=".json") as temporary:
        temporary.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def sha256_file(path: Path) -> str:
    """The file's SHA-256 as hex, read in chunks (memory stays flat for large images)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(path: Path) -> str:
    """The SHA-256 of a folder (an OME-Zarr store): every file's relative path and content,
    in sorted order, so the same store gives the same digest wherever it lies."""
    digest = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def replace_dir(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Move directory ``src`` to ``dst``, replacing an existing ``dst`` (old kept until done):
    a folder written in a temporary sibling appears whole or not at all."""
    if os.path.isdir(dst):
        old = f"{dst}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dst, old)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(old, dst)
            raise
        shutil.rmtree(old, ignore_errors=True)
    elif os.path.exists(dst):
        raise FileExistsError(f"{dst} exists and is not a directory")
    else:
        os.replace(src, dst)


def looks_like_zarr(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is meant as a Zarr store: its name ends in ``.zarr``, or it is a folder
    holding Zarr metadata (``.zattrs``/``.zgroup`` of Zarr v2, ``zarr.json`` of v3)."""
    p = Path(path)
    if p.name.lower().rstrip("/").endswith(".zarr"):
        return True
    return p.is_dir() and any((p / m).is_file() for m in (".zattrs", ".zgroup", "zarr.json"))
