"""Enhancement requests: wide-field images in (uploaded now or already stored), a version's
generator applied by an `infer` worker, OME-TIFFs out (or zipped OME-Zarr stores, as asked).
Inputs are checked exactly as LQ uploads are, all before anything is stored; a known input with
the same version and parameters (format included) gets the stored result back instead of a new
computation. Each input's pixel size is checked against the version's (models/pixel_grid.py):
resampled onto its grid by the worker, or refused here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.celery_config import ENHANCE
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.services.access import require_lq_side
from api.services.ingestion import check_image
from api.services.model_versions import alias_target, get_version
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
from models.output_formats import OUTPUT_FORMATS
from models.pixel_grid import PixelSizePlan, PixelSizeRefused, plan_pixel_size

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


def cache_key(
    input_sha256: str,
    version: ModelVersion,
    out_dtype: str,
    ensemble: bool,
    plan: PixelSizePlan | None = None,
    output_format: str = "ome-tiff",
) -> str:
    text = f"{input_sha256}|{version.weights_sha256}|{out_dtype}|{int(ensemble)}"
    if output_format != "ome-tiff":  # another file from the same pixels; OME-TIFF keys unchanged
        text += f"|{output_format}"
    if plan is not None and plan.resampled:  # results made before inputs were resampled differ
        text += f"|grid {plan.model_um:.6g} from {plan.input_um:.6g}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EnhancementOrder:
    """What a client asked for: which version (None: production), how, and on which images —
    files uploaded with the request and LQ images already stored."""

    version: int | None = None
    out_dtype: str = "float32"
    ensemble: bool = False
    output_format: str = "ome-tiff"
    uploads: list[ReceivedFile] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Input:
    """One image to enhance, uploaded now or already stored, as its item records it."""

    image_id: int | None
    filename: str
    key: str
    sha256: str
    shape: list[int]
    axes: str
    pixel_size_um: float
    pixel_size: PixelSizePlan


def pixel_size_plan(
    pairing: Pairing,
    version: ModelVersion,
    *,
    input_um: float | None,
    shape: list[int] | tuple[int, ...],
    name: str,
    field: str,
) -> PixelSizePlan:
    """How the worker treats this input's pixel size, or a 422 naming both sizes."""
    lq, hq = pairing.lq_microscope, pairing.hq_microscope
    try:
        return plan_pixel_size(
            input_um,
            assumed_um=lq.pixel_size_um,
            model_lq_um=version.lq_pixel_size_um or lq.pixel_size_um,
            model_um=version.hq_pixel_size_um or hq.pixel_size_um,
            shape_yx=(int(shape[-2]), int(shape[-1])),
            name=name,
        )
    except PixelSizeRefused as exc:
        raise field_error(field, str(exc)) from exc


def get_job(
    session: Session, principal: Principal, pairing: Pairing, job_id: int
) -> EnhancementJob:
    require_lq_side(principal, pairing, ENHANCE_ACTION)
    job = session.scalar(
        select(EnhancementJob).where(
            EnhancementJob.id == job_id, EnhancementJob.pairing_id == pairing.id
        )
    )
    if job is None:
        raise ApiError(404, "not_found", f"enhancement {job_id} does not exist")
    return job


def get_item(job: EnhancementJob, item_id: int) -> EnhancementItem:
    item = next((i for i in job.items if i.id == item_id), None)
    if item is None:
        raise ApiError(404, "not_found", f"item {item_id} does not exist in this enhancement")
    return item


def create(
    session: Session,
    *,
    store: ObjectStore,
    dispatcher: Dispatcher,
    principal: Principal,
    pairing: Pairing,
    order: EnhancementOrder,
) -> EnhancementJob:
    require_lq_side(principal, pairing, ENHANCE_ACTION)
    if order.out_dtype not in OUT_DTYPES:
        raise field_error("out_dtype", f"must be one of {', '.join(OUT_DTYPES)}")
    if order.output_format not in OUTPUT_FORMATS:
        raise field_error(
            "format",
            f"{order.output_format[:40]!r} is not an output format; "
            f"use one of {', '.join(OUTPUT_FORMATS)}",
        )
    if not order.uploads and not order.image_ids:
        raise field_error("files", "send at least one image file or image id")
    version = choose_version(session, pairing, order.version)
    checked = []
    for received in order.uploads:
        info = check_image(received, pairing.lq_microscope)
        plan = pixel_size_plan(
            pairing,
            version,
            input_um=info.pixel_size_um,
            shape=info.shape,
            name=received.filename,
            field="files",
        )
        checked.append((received, info, plan))
    stored = [_stored_input(session, pairing, version, image_id) for image_id in order.image_ids]

    job = EnhancementJob(
        pairing_id=pairing.id,
        version_id=version.id,
        out_dtype=order.out_dtype,
        ensemble=order.ensemble,
        output_format=order.output_format,
        state=JobState.queued,
        requested_by_id=principal.id,
    )
    written: list[str] = []
    try:
        uploaded = []
        for received, info, plan in checked:
            key = f"pairings/{pairing.id}/enhance-inputs/{received.sha256}.tif"
            written.append(store.put_file(key, received.path, received.sha256).key)
            uploaded.append(
                _Input(
                    image_id=None,
                    filename=received.filename,
                    key=key,
                    sha256=received.sha256,
                    shape=list(info.shape),
                    axes=info.axes,
                    pixel_size_um=plan.input_um,
                    pixel_size=plan,
                )
            )
        job.items = [_item(source, version, order) for source in uploaded + stored]
        _reuse_results(session, job)
        job.dispatched_at = utcnow() if job.state == JobState.queued else None
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
        dispatcher.send_recorded(session, ENHANCE, job)
    return job


def _stored_input(
    session: Session, pairing: Pairing, version: ModelVersion, image_id: int
) -> _Input:
    image = session.scalar(
        select(Image).where(
            Image.id == image_id, Image.pairing_id == pairing.id, Image.side == Side.lq
        )
    )
    if image is None:
        raise field_error("image_ids", f"image {image_id} is not an LQ image of this pairing")
    return _Input(
        image_id=image.id,
        filename=image.filename,
        key=image.object_key,
        sha256=image.sha256,
        shape=image.shape,
        axes=image.axes,
        pixel_size_um=image.pixel_size_um,
        pixel_size=pixel_size_plan(
            pairing,
            version,
            # an upload without a pixel size was recorded with the microscope's
            input_um=None if image.pixel_size_source == "microscope" else image.pixel_size_um,
            shape=image.shape,
            name=f"image {image.id} ({image.filename})",
            field="image_ids",
        ),
    )


def _item(source: _Input, version: ModelVersion, order: EnhancementOrder) -> EnhancementItem:
    return EnhancementItem(
        image_id=source.image_id,
        filename=source.filename,
        input_key=source.key,
        input_sha256=source.sha256,
        input_shape=source.shape,
        input_axes=source.axes,
        pixel_size_um=source.pixel_size_um,
        pixel_size=source.pixel_size.to_dict(),
        state=JobState.queued,
        cache_key=cache_key(
            source.sha256,
            version,
            order.out_dtype,
            order.ensemble,
            source.pixel_size,
            order.output_format,
        ),
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
            item.trust, item.trust_key = done.trust, done.trust_key
            item.trust_sha256 = done.trust_sha256
            item.reason = f"reused the result of enhancement {done.job_id}"
    if all(item.state == JobState.succeeded for item in job.items):
        job.state, job.finished_at = JobState.succeeded, utcnow()
