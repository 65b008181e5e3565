"""An enhancement job: each input through the version's generator (tiled, Z plane by plane),
written as an OME-TIFF (or, as the job asks, a zipped OME-Zarr store) with its channels, pixel
size, objective and provenance, plus a preview. One failed image does not stop the others."""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import EnhancementItem, EnhancementJob, JobState, ModelVersion, Pairing, utcnow
from models.files import sha256_file
from models.image_io import read_image
from models.ome_tiff import write_ome_tiff
from models.ome_zarr import write_ome_zarr_zip
from models.output_formats import OUTPUT_FORMATS, ZARR_ZIP_SUFFIX
from models.output_metadata import OutputMetadata
from models.pixel_grid import to_model_grid
from models.trust import check_output, unchecked
from models.trust_maps import trust_name, write_trust_tiff
from worker.claims import Claim, claim_job
from worker.devices import prepare_tensorflow
from worker.heartbeat import heartbeat
from worker.imaging import enhancement_metadata
from worker.objects import download_verified, put_bytes
from worker.previews import side_by_side_png
from worker.transient import TRANSIENT_ERRORS

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
    image, info = read_image(source, channels=item.input_shape[item.input_axes.index("C")])
    image = image.astype(np.float32)
    plan = item.pixel_size or {}
    if plan.get("resampled"):  # onto the grid the model learned on (the API checked the factor)
        image = to_model_grid(image, plan["input_um"], plan["model_um"])
    output = model.predict(image, info.axes, ensemble=job.ensemble, out_dtype=job.out_dtype)
    metadata = enhancement_metadata(
        pairing=pairing,
        version=version,
        job=job,
        item=item,
        info=info,
        precision=model.policy,
        model_id=model.metadata.get("id"),
    )
    suffix = OUTPUT_FORMATS[job.output_format].suffix
    target = write_output(folder / f"out-{item.id}{suffix}", output, info.axes, metadata)
    base = f"pairings/{pairing.id}/enhancements/{job.id}/{item.id}"
    stored = store.put_file(base + suffix, target, sha256_file(target))
    pixel_um = plan.get("output_um") or item.pixel_size_um
    trust_base = f"{base}.ome.tif"  # the trust maps are an OME-TIFF whatever the output's format
    store_trust(
        store, model, image, output, info.axes, pixel_um, metadata, item, trust_base, folder
    )
    emission = [c.emission_nm for c in pairing.lq_microscope.channels]
    preview = side_by_side_png([image, output.astype(np.float32)], emission)
    item.preview_key = put_bytes(store, f"{base}-preview.png", preview).key
    item.output_key, item.output_sha256, item.output_size = stored.key, stored.sha256, stored.size


def write_output(target: Path, output: np.ndarray, axes: str, metadata: OutputMetadata) -> Path:
    """The output in the format its name says: an OME-TIFF, or an NGFF store with a pyramid,
    zipped (its display window the output's 0.1–99.9th percentiles per channel)."""
    if target.name.endswith(ZARR_ZIP_SUFFIX):
        c = axes.index("C")
        per_channel = np.moveaxis(output, c, 0).reshape(output.shape[c], -1)
        low, high = np.percentile(per_channel, (0.1, 99.9), axis=1)
        return Path(write_ome_zarr_zip(target, output, axes, metadata, window=(low, high)))
    write_ome_tiff(
        target,
        output,
        axes,
        metadata,
        compression=None,  # float outputs barely compress; writing them plain is much faster
    )
    return target


def store_trust(
    store: ObjectStore,
    model: Any,
    image: np.ndarray,
    output: np.ndarray,
    axes: str,
    pixel_um: float,
    metadata: OutputMetadata,
    item: EnhancementItem,
    output_key: str,
    folder: Path,
) -> None:
    """Check the output against its input and the model's reference; store the maps beside it
    (``…_trust.ome.tif``) and the summary on the item. A version published before trust checks
    leaves both empty."""
    names = [c.name for c in metadata.imaging.channels]
    try:
        assessment = check_output(model, image, output, axes, pixel_um, names)
    except Exception as exc:  # noqa: BLE001 - an unchecked output is delivered, marked for review
        item.trust, item.trust_key, item.trust_sha256 = unchecked(exc), None, None
        return
    if assessment is None:
        item.trust, item.trust_key, item.trust_sha256 = None, None, None
        return
    path = write_trust_tiff(folder / f"trust-{item.id}.ome.tif", assessment, axes, metadata)
    stored = store.put_file(trust_name(output_key), path, sha256_file(path))
    item.trust = assessment.summary()
    item.trust_key, item.trust_sha256 = stored.key, stored.sha256


def claim(factory: sessionmaker[Session], job_id: int, settings: Settings) -> Claim:
    """Take the job if it is queued, or running but unheard of (its worker died): of two
    deliveries, one runs it, and each claim counts an attempt (worker/claims.py)."""
    return claim_job(factory, EnhancementJob, job_id, settings)


def release(factory: sessionmaker[Session], job_id: int) -> None:
    """Put a job back in the queue after a transient error (best effort: if the database is the
    one that is down, the stale heartbeat brings it back instead)."""
    try:
        with session_scope(factory) as session:
            job = session.get(EnhancementJob, job_id)
            if job is not None and job.state == JobState.running:
                # the store or database failed, not the job: this claim does not count
                job.state, job.attempts = JobState.queued, max(0, job.attempts - 1)
                for item in job.items:
                    if item.state == JobState.running:
                        item.state = JobState.queued
    except Exception:
        pass


def run(
    factory: sessionmaker[Session], store: ObjectStore, settings: Settings, job_id: int
) -> dict[str, Any]:
    if claim(factory, job_id, settings) != Claim.run:
        return {"job_id": job_id, "skipped": "finished, gone or taken by another worker"}
    try:
        with heartbeat(factory, EnhancementJob, job_id, settings.job_progress_interval_s):
            return _enhance_claimed(factory, store, job_id)
    except TRANSIENT_ERRORS:
        release(factory, job_id)
        raise


def _enhance_claimed(
    factory: sessionmaker[Session], store: ObjectStore, job_id: int
) -> dict[str, Any]:
    prepare_tensorflow()
    with session_scope(factory) as session:
        job = session.get_one(EnhancementJob, job_id)
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
                except TRANSIENT_ERRORS:
                    raise  # the store or database is unreachable: the whole job retries
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
