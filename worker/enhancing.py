"""An enhancement job: each input through the version's generator (tiled, Z plane by plane),
written as an OME-TIFF with its pixel size and provenance, plus a preview. One failed image does
not stop the others."""

from __future__ import annotations

import socket
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.storage import ObjectStore, sha256_file
from api.tables import EnhancementItem, EnhancementJob, JobState, ModelVersion, Pairing, utcnow
from api.tiff_inspect import read_canonical
from models.tiff_io import write_ome_tiff
from pairscope import __version__
from worker.devices import prepare_tensorflow
from worker.objects import download_verified, put_bytes
from worker.previews import side_by_side_png

_MODELS: OrderedDict[int, Any] = OrderedDict()
MODEL_CACHE = 2


def load_version(store: ObjectStore, version: ModelVersion) -> Any:
    """The version's model, kept in memory for the next job (a few versions at most)."""
    from models import EnhancementModel

    if version.id in _MODELS:
        _MODELS.move_to_end(version.id)
        return _MODELS[version.id]
    with tempfile.TemporaryDirectory(prefix="pairscope-model-") as folder:
        path = download_verified(
            store, version.model_key, version.model_sha256, Path(folder) / "model.zip"
        )
        model = EnhancementModel.load(path)
    _MODELS[version.id] = model
    while len(_MODELS) > MODEL_CACHE:
        _MODELS.popitem(last=False)
    return model


def enhance_item(
    store: ObjectStore,
    model: Any,
    pairing: Pairing,
    version: ModelVersion,
    job: EnhancementJob,
    item: EnhancementItem,
    folder: Path,
) -> None:
    source = download_verified(
        store, item.input_key, item.input_sha256, folder / f"in-{item.id}.tif"
    )
    image, axes = read_canonical(source, channels=item.input_shape[item.input_axes.index("C")])
    output = model.predict(
        image.astype(np.float32), axes, ensemble=job.ensemble, out_dtype=job.out_dtype
    )
    provenance = {
        "pairing": f"{pairing.id} {pairing.name}",
        "version": version.number,
        "model_sha256": version.model_sha256,
        "weights_sha256": version.weights_sha256,
        "input_sha256": item.input_sha256,
        "input_filename": item.filename,
        "out_dtype": job.out_dtype,
        "ensemble": job.ensemble,
        "software": f"pairscope {__version__}",
        "enhancement": job.id,
    }
    target = folder / f"out-{item.id}.ome.tif"
    write_ome_tiff(
        target,
        output,
        axes,
        name=f"{item.filename} enhanced",
        annotations=provenance,
        physical_size_um=item.pixel_size_um,
        compression=None,  # float outputs barely compress; writing them plain is much faster
    )
    digest = sha256_file(target)
    key = f"pairings/{pairing.id}/enhancements/{job.id}/{item.id}.ome.tif"
    stored = store.put_file(key, target, digest)
    emission = [c.emission_nm for c in pairing.lq_microscope.channels]
    preview = side_by_side_png([image, output.astype(np.float32)], emission)
    item.preview_key = put_bytes(store, key.replace(".ome.tif", "-preview.png"), preview).key
    item.output_key, item.output_sha256, item.output_size = stored.key, stored.sha256, stored.size


def run(factory: sessionmaker[Session], store: ObjectStore, job_id: int) -> dict[str, Any]:
    prepare_tensorflow()
    with session_scope(factory) as session:
        job = session.get(EnhancementJob, job_id)
        if job is None or job.state in (JobState.succeeded, JobState.failed):
            return {"job_id": job_id, "skipped": "already finished or gone"}
        job.state, job.worker_host = JobState.running, socket.gethostname()
        session.commit()
        version = session.get_one(ModelVersion, job.version_id)
        pairing = session.get_one(Pairing, job.pairing_id)
        model = load_version(store, version)
        with tempfile.TemporaryDirectory(prefix="pairscope-enhance-") as folder:
            for item in job.items:
                if item.state == JobState.succeeded:
                    continue
                item.state = JobState.running
                session.commit()
                try:
                    enhance_item(store, model, pairing, version, job, item, Path(folder))
                    item.state, item.reason = JobState.succeeded, None
                except Exception as exc:  # one bad image must not stop the others
                    item.state = JobState.failed
                    item.reason = f"{type(exc).__name__}: {exc}"[:2000]
                item.finished_at = utcnow()
                session.commit()
        states = {item.state for item in job.items}
        job.state = JobState.failed if states == {JobState.failed} else JobState.succeeded
        job.finished_at = utcnow()
        return {
            "job_id": job_id,
            "state": job.state.value,
            "failed": sum(i.state == JobState.failed for i in job.items),
        }
