"""Enhancement requests: wide-field images in (uploaded now or already stored), a version's
generator applied by an `infer` worker, OME-TIFFs out. Inputs are checked exactly as LQ uploads
are, all before anything is stored; a known input with the same version and parameters gets the
stored result back instead of a new computation."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.access import require_lq_side
from api.celery_config import ENHANCE
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.ingest import check_image
from api.storage import ObjectStore
from api.tables import (
    EnhancementItem,
    EnhancementJob,
    Image,
    JobState,
    ModelVersion,
    Pairing,
    Principal,
    Side,
    utcnow,
)
from api.upload_stream import ReceivedFile
from api.versions import alias_target, get_version

ENHANCE_ACTION = "enhance images and read the results"
OUT_DTYPES = ("float32", "uint16")


def choose_version(session: Session, pairing: Pairing, number: int | None) -> ModelVersion:
    if number is None:
        version = alias_target(session, pairing, "production")
        if version is None:
            raise ApiError(
                409,
                "conflict",
                "this pairing has no production version yet; promote one or name a version",
            )
        return version
    try:
        return get_version(session, pairing, number)
    except ApiError as exc:
        raise field_error("version", f"version {number} does not exist for this pairing") from exc


def cache_key(input_sha256: str, version: ModelVersion, out_dtype: str, ensemble: bool) -> str:
    text = f"{input_sha256}|{version.weights_sha256}|{out_dtype}|{int(ensemble)}"
    return hashlib.sha256(text.encode()).hexdigest()


def create(
    session: Session,
    store: ObjectStore,
    dispatcher: Dispatcher,
    principal: Principal,
    pairing: Pairing,
    version_number: int | None,
    out_dtype: str,
    ensemble: bool,
    uploads: list[ReceivedFile],
    image_ids: list[int],
) -> EnhancementJob:
    require_lq_side(principal, pairing, ENHANCE_ACTION)
    if out_dtype not in OUT_DTYPES:
        raise field_error("out_dtype", f"must be one of {', '.join(OUT_DTYPES)}")
    if not uploads and not image_ids:
        raise field_error("files", "send at least one image file or image id")
    version = choose_version(session, pairing, version_number)
    checked = [(received, check_image(received, pairing.lq_microscope)) for received in uploads]
    stored_images = []
    for image_id in image_ids:
        image = session.scalar(
            select(Image).where(
                Image.id == image_id, Image.pairing_id == pairing.id, Image.side == Side.lq
            )
        )
        if image is None:
            raise field_error("image_ids", f"image {image_id} is not an LQ image of this pairing")
        stored_images.append(image)

    job = EnhancementJob(
        pairing_id=pairing.id,
        version_id=version.id,
        out_dtype=out_dtype,
        ensemble=ensemble,
        state=JobState.queued,
        requested_by_id=principal.id,
    )
    written: list[str] = []
    try:
        for received, info in checked:
            key = f"pairings/{pairing.id}/enhance-inputs/{received.sha256}.tif"
            written.append(store.put_file(key, received.path, received.sha256).key)
            pixel = info.pixel_size_um or pairing.lq_microscope.pixel_size_um
            job.items.append(
                _item(
                    version,
                    out_dtype,
                    ensemble,
                    None,
                    received.filename,
                    key,
                    received.sha256,
                    list(info.shape),
                    info.axes,
                    pixel,
                )
            )
        for image in stored_images:
            job.items.append(
                _item(
                    version,
                    out_dtype,
                    ensemble,
                    image.id,
                    image.filename,
                    image.object_key,
                    image.sha256,
                    image.shape,
                    image.axes,
                    image.pixel_size_um,
                )
            )
        _reuse_results(session, job)
        session.add(job)
        session.commit()
    except BaseException:
        session.rollback()
        for key in written:
            if (
                session.scalar(select(EnhancementItem.id).where(EnhancementItem.input_key == key))
                is None
            ):
                store.delete(key)
        raise
    if job.state == JobState.queued:
        try:
            dispatcher.send(ENHANCE, job.id)
        except Exception as exc:
            job.state, job.finished_at = JobState.failed, utcnow()
            for item in job.items:
                if item.state == JobState.queued:
                    item.state, item.reason = JobState.failed, "the task queue was unreachable"
            session.commit()
            raise ApiError(
                503, "broker_unavailable", f"the task queue cannot be reached ({exc})"
            ) from exc
    return job


def _item(
    version: ModelVersion,
    out_dtype: str,
    ensemble: bool,
    image_id: int | None,
    filename: str,
    key: str,
    sha256: str,
    shape: list[int],
    axes: str,
    pixel_size_um: float,
) -> EnhancementItem:
    return EnhancementItem(
        image_id=image_id,
        filename=filename,
        input_key=key,
        input_sha256=sha256,
        input_shape=shape,
        input_axes=axes,
        pixel_size_um=pixel_size_um,
        state=JobState.queued,
        cache_key=cache_key(sha256, version, out_dtype, ensemble),
    )


def _reuse_results(session: Session, job: EnhancementJob) -> None:
    """Items already computed with this input, version and parameters are not computed again."""
    for item in job.items:
        done = session.scalar(
            select(EnhancementItem)
            .where(
                EnhancementItem.cache_key == item.cache_key,
                EnhancementItem.state == JobState.succeeded,
            )
            .order_by(EnhancementItem.id)
        )
        if done is not None:
            item.state, item.finished_at = JobState.succeeded, utcnow()
            item.output_key, item.output_sha256 = done.output_key, done.output_sha256
            item.output_size, item.preview_key = done.output_size, done.preview_key
            item.reason = f"reused the result of enhancement {done.job_id}"
    if all(item.state == JobState.succeeded for item in job.items):
        job.state, job.finished_at = JobState.succeeded, utcnow()
