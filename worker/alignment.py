"""Aligning one pair: fetch both images (hash-checked), map channels, register with
models.registration, store the aligned arrays and a preview, and record the verdict."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.storage import ObjectStore
from api.tables import Image, Pair, Pairing, PairStatus
from models.image_io import read_image
from models.registration import align_pair
from worker.objects import download_verified, put_bytes, put_tiff
from worker.previews import side_by_side_png
from worker.transient import TRANSIENT_ERRORS


def _channel_indices(pairing: Pairing) -> tuple[list[int], list[int]]:
    lq_names = [c.name for c in pairing.lq_microscope.channels]
    hq_names = [c.name for c in pairing.hq_microscope.channels]
    lq = [lq_names.index(p["lq_channel"]) for p in pairing.channel_map]
    hq = [hq_names.index(p["hq_channel"]) for p in pairing.channel_map]
    return lq, hq


def _load(store: ObjectStore, image: Image, folder: Path) -> np.ndarray:
    path = download_verified(store, image.object_key, image.sha256, folder / f"{image.id}.tif")
    data, _ = read_image(path, channels=image.shape[image.axes.index("C")])
    return data


def aligned_key(pair: Pair, side: str, suffix: str = "tif") -> str:
    return f"pairings/{pair.pairing_id}/aligned/pair-{pair.id}-{side}.{suffix}"


def align_stored_pair(
    session: Session, store: ObjectStore, pair: Pair, ncc_threshold: float
) -> dict[str, Any]:
    """Align and record; the pair ends accepted or rejected with its reason and score."""
    pairing = session.get_one(Pairing, pair.pairing_id)
    lq_image, hq_image = pair.lq_image, pair.hq_image
    lq_idx, hq_idx = _channel_indices(pairing)
    with tempfile.TemporaryDirectory(prefix="pairscope-align-") as folder:
        lq = _load(store, lq_image, Path(folder))
        hq = _load(store, hq_image, Path(folder))
    channel_axis = lq.ndim - 3
    lq = np.take(lq, lq_idx, axis=channel_axis)
    hq = np.take(hq, hq_idx, axis=hq.ndim - 3)
    if lq.ndim != hq.ndim:
        reason = (
            f"the LQ image is {'a Z stack' if lq.ndim == 4 else '2-D'} and the HQ image "
            f"{'a Z stack' if hq.ndim == 4 else '2-D'}; both must be alike"
        )
        pair.status, pair.reason, pair.transform = PairStatus.rejected, reason, None
        return {"pair_id": pair.id, "status": pair.status.value, "reason": reason}
    alignment, lq_aligned, hq_aligned = align_pair(
        lq,
        hq,
        lq_image.pixel_size_um,
        hq_image.pixel_size_um,
        lq_z_step_um=lq_image.z_step_um,
        hq_z_step_um=hq_image.z_step_um,
        ncc_threshold=ncc_threshold,
    )
    pair.transform = alignment.to_dict()
    pair.score = float(min(alignment.ncc)) if alignment.ncc else None
    if lq_aligned is not None and hq_aligned is not None:
        axes = "ZCYX" if lq_aligned.ndim == 4 else "CYX"
        lq_obj = put_tiff(store, aligned_key(pair, "lq"), lq_aligned.astype(np.float32), axes)
        hq_obj = put_tiff(store, aligned_key(pair, "hq"), hq_aligned.astype(np.float32), axes)
        pair.lq_aligned_key, pair.lq_aligned_sha256 = lq_obj.key, lq_obj.sha256
        pair.hq_aligned_key, pair.hq_aligned_sha256 = hq_obj.key, hq_obj.sha256
        emission = [c.emission_nm for c in pairing.hq_microscope.channels]
        emission = [emission[i] for i in hq_idx]
        png = side_by_side_png([lq_aligned, hq_aligned], emission)
        pair.preview_key = put_bytes(store, aligned_key(pair, "preview", "png"), png).key
    else:
        pair.lq_aligned_key = pair.hq_aligned_key = pair.preview_key = None
        pair.lq_aligned_sha256 = pair.hq_aligned_sha256 = None
    pair.status = PairStatus.accepted if alignment.accepted else PairStatus.rejected
    pair.reason = alignment.reason
    return {
        "pair_id": pair.id,
        "status": pair.status.value,
        "reason": pair.reason,
        "score": pair.score,
    }


def run(
    factory: sessionmaker[Session], store: ObjectStore, pair_id: int, ncc_threshold: float
) -> dict[str, Any]:
    """Align one pair and record the verdict; a pair already decided is left as it is, and one
    whose alignment raised ends rejected with the error as its reason."""
    with session_scope(factory) as session:
        pair = session.get(Pair, pair_id)
        if pair is None:
            return {"pair_id": pair_id, "skipped": "the pair no longer exists"}
        if pair.status in (PairStatus.accepted, PairStatus.rejected):
            return {"pair_id": pair_id, "status": pair.status.value, "skipped": "already decided"}
        pair.status, pair.reason = PairStatus.aligning, None
        pair.attempts += 1
        session.commit()
        try:
            return align_stored_pair(session, store, pair, ncc_threshold)
        except TRANSIENT_ERRORS:
            raise  # the database or store is unreachable: retried, not rejected
        except Exception as exc:
            session.rollback()
            pair = session.get_one(Pair, pair_id)
            pair.status = PairStatus.rejected
            pair.reason = f"alignment failed: {type(exc).__name__}: {exc}"[:1000]
            return {"pair_id": pair_id, "status": "rejected", "reason": pair.reason}
