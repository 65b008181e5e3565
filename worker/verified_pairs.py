"""Reading one stored pair's two images back for training, each checked against its recorded
hash before it is decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from api.storage import ObjectStore
from models.image_io import read_image
from worker.objects import download_verified


def read_verified_pair(
    store: ObjectStore,
    lq: tuple[str, str],
    hq: tuple[str, str],
    folder: Path,
    stem: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The (LQ, HQ) arrays as float32 from their (key, sha256); the downloads, named after
    `stem` in `folder`, are removed once read."""
    arrays = []
    for side, (key, sha) in (("lq", lq), ("hq", hq)):
        path = download_verified(store, key, sha, folder / f"{stem}-{side}.tif")
        arrays.append(read_image(path)[0].astype(np.float32))
        path.unlink()
    return arrays[0], arrays[1]
