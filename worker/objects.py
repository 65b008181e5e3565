"""Moving objects between the store and a worker's scratch space, checking content hashes."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from api.storage import ObjectStore, StoredObject


class CorruptObject(Exception):
    """An object's bytes no longer match the hash recorded when it was stored."""


def download_verified(store: ObjectStore, key: str, sha256: str, path: Path) -> Path:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for chunk in store.iter_bytes(key):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        path.unlink(missing_ok=True)
        raise CorruptObject(f"object {key} does not match its recorded sha256 {sha256[:12]}…")
    return path


def put_tiff(
    store: ObjectStore, key: str, array: np.ndarray, axes: str, metadata: dict | None = None
) -> StoredObject:
    """Write an array as a TIFF (ImageJ-readable axes in the description) and store it."""
    with tempfile.NamedTemporaryFile(suffix=".tif") as tmp:
        tifffile.imwrite(
            tmp,
            array,
            metadata={"axes": axes, **(metadata or {})},
            compression="zlib",
            bigtiff=array.nbytes > 2**31 - 2**25,
        )
        tmp.seek(0)
        return store.put(key, tmp)


def put_bytes(store: ObjectStore, key: str, data: bytes) -> StoredObject:
    return store.put(key, io.BytesIO(data))
