"""Enhancing wide-field images with a pairing's generator, and downloading the results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from sqlalchemy import select

from api.deps import DispatcherDep, PairingDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from api.downloads import download
from api.errors import ApiError, field_error
from api.openapi_responses import (
    BROKER_UNAVAILABLE,
    CONFLICT,
    FORBIDDEN,
    PAIRING_SCOPED,
    UPLOAD,
    file_body,
)
from api.pagination import paginate
from api.params import DB_INT_MAX, Offset, PathInt
from api.schemas import EnhanceByIds, EnhancementJobOut, Page
from api.services import access, enhancement_requests
from api.services.enhancement_requests import ENHANCE_ACTION, EnhancementOrder
from api.tables import EnhancementItem, EnhancementJob, ModelVersion
from api.upload_stream import receive_files
from models.output_formats import OUTPUT_FORMATS, format_of

router = APIRouter(
    prefix="/pairings/{pairing_id}/enhancements", tags=["enhancements"], responses=PAIRING_SCOPED
)

REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "version": {
                            "type": "integer",
                            "description": "default: the production alias",
                        },
                        "out_dtype": {"type": "string", "enum": ["float32", "uint16"]},
                        "ensemble": {"type": "boolean"},
                        "format": {
                            "type": "string",
                            "enum": list(OUTPUT_FORMATS),
                            "description": "default: ome-tiff; ome-zarr: a zipped NGFF store",
                        },
                    },
                }
            },
            "application/json": {"schema": EnhanceByIds.model_json_schema()},
        },
    }
}


OUTPUT_BODY = file_body("image/tiff", "An OME-TIFF, or a zipped OME-Zarr store (format ome-zarr).")
OUTPUT_BODY[200]["content"].update(file_body("application/zip", "")[200]["content"])


def _out(session: SessionDep, job: EnhancementJob) -> EnhancementJobOut:
    out = EnhancementJobOut.model_validate(job)
    out.version = session.get_one(ModelVersion, job.version_id).number
    return out


def _item(
    session: SessionDep, principal: PrincipalDep, pairing: PairingDep, job_id: int, item_id: int
) -> EnhancementItem:
    job = enhancement_requests.get_job(session, principal, pairing, job_id)
    return enhancement_requests.get_item(job, item_id)


def _form_int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > DB_INT_MAX:
        raise field_error(name, f"{value[:40]!r} is not a whole number the registry can hold")
    return int(value)


async def _read_order(request: Request, settings: SettingsDep) -> EnhancementOrder:
    """The order from a JSON body (`image_ids`) or a multipart one (`files` and form fields)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = EnhanceByIds.model_validate_json(await request.body())
        except ValidationError as exc:
            err = exc.errors()[0]
            raise field_error(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) from exc
        return EnhancementOrder(
            version=body.version,
            out_dtype=body.out_dtype,
            ensemble=body.ensemble,
            output_format=body.format,
            image_ids=body.image_ids,
        )
    try:
        uploads, fields = await receive_files(
            request, settings.data_dir / "tmp", settings.upload_max_bytes
        )
    except MultipartParseError as exc:
        raise ApiError(
            400, "bad_request", "the multipart body is malformed (check its boundary and parts)"
        ) from exc
    if not uploads:
        return EnhancementOrder()
    try:
        return EnhancementOrder(
            version=_form_int(fields, "version"),
            out_dtype=fields.get("out_dtype", "float32"),
            ensemble=fields.get("ensemble", "false").lower() in ("1", "true", "yes"),
            output_format=fields.get("format", "ome-tiff").strip() or "ome-tiff",
            uploads=uploads,
        )
    except BaseException:
        for received in uploads:
            received.discard()
        raise


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=REQUEST_BODY,
    summary="Enhance images",
    responses={**FORBIDDEN, **CONFLICT, **UPLOAD, **BROKER_UNAVAILABLE},
)
async def enhance(
    pairing: PairingDep,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> EnhancementJobOut:
    """Enhance images uploaded in this request (multipart `files`) or LQ images already stored
    (JSON `image_ids`). Only the wide-field institution and admins may."""
    access.require_lq_side(principal, pairing, ENHANCE_ACTION)  # before the body is read
    await run_in_threadpool(session.commit)  # no connection held while the body arrives
    order = await _read_order(request, settings)
    try:
        job = await run_in_threadpool(
            enhancement_requests.create,
            session,
            store=store,
            dispatcher=dispatcher,
            principal=principal,
            pairing=pairing,
            order=order,
        )
    finally:
        for received in order.uploads:
            received.discard()
    return _out(session, job)


@router.get("", summary="List enhancement jobs", responses=FORBIDDEN)
def list_enhancements(
    pairing: PairingDep,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[EnhancementJobOut]:
    """This pairing's enhancement jobs, newest first. The wide-field (LQ) institution and
    admins may."""
    access.require_lq_side(principal, pairing, ENHANCE_ACTION)
    query = select(EnhancementJob).where(EnhancementJob.pairing_id == pairing.id)
    page = paginate(session, query, limit, offset, EnhancementJob.id.desc())
    page.items = [_out(session, job) for job in page.items]
    return page


@router.get("/{job_id}", summary="Get an enhancement job", responses=FORBIDDEN)
def get_enhancement(
    pairing: PairingDep, job_id: PathInt, session: SessionDep, principal: PrincipalDep
) -> EnhancementJobOut:
    """The job and each item's state, output hash and size."""
    return _out(session, enhancement_requests.get_job(session, principal, pairing, job_id))


def _stem(filename: str) -> str:
    """An input's name without .tif / .ome.tif, for the names of what was made from it."""
    return filename.rsplit(".tif", 1)[0].removesuffix(".ome")


@router.get(
    "/{job_id}/items/{item_id}/output",
    response_class=StreamingResponse,
    summary="Download an enhanced image",
    responses={**OUTPUT_BODY, **FORBIDDEN, **CONFLICT},
)
def download_output(
    pairing: PairingDep,
    job_id: PathInt,
    item_id: PathInt,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """The enhanced image with its pixel size and provenance: an OME-TIFF, or for format
    ``ome-zarr`` the NGFF store zipped (uncompressed entries, the store's root at the zip's root:
    readable as a Zarr ZipStore), ``<stem>_enhanced.ome.zarr.zip``."""
    item = _item(session, principal, pairing, job_id, item_id)
    if item.output_key is None:
        raise ApiError(
            409,
            "conflict",
            f"item {item_id} has no output ({item.state.value}"
            f"{': ' + item.reason if item.reason else ''})",
        )
    delivered = format_of(item.output_key)
    return download(
        store,
        item.output_key,
        media_type=delivered.media_type,
        filename=f"{_stem(item.filename)}_enhanced{delivered.suffix}",
    )


@router.get(
    "/{job_id}/items/{item_id}/trust",
    response_class=StreamingResponse,
    summary="Download an output's trust maps",
    responses={**file_body("image/tiff", "An OME-TIFF of named maps."), **FORBIDDEN, **CONFLICT},
)
def download_trust(
    pairing: PairingDep,
    job_id: PathInt,
    item_id: PathInt,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """The output's trust maps (consistency error and z per channel; later uncertainty) on the
    output's grid, with its pixel size and provenance: ``<stem>_enhanced_trust.ome.tif``."""
    item = _item(session, principal, pairing, job_id, item_id)
    if item.trust_key is None:
        raise ApiError(
            409,
            "conflict",
            f"item {item_id} has no trust maps ({item.state.value}; a version published "
            "before trust checks has none)",
        )
    return download(
        store,
        item.trust_key,
        media_type="image/tiff",
        filename=f"{_stem(item.filename)}_enhanced_trust.ome.tif",
    )


@router.get(
    "/{job_id}/items/{item_id}/preview.png",
    response_class=StreamingResponse,
    summary="Download an enhancement preview",
    responses={**file_body("image/png", "Input beside output."), **FORBIDDEN, **CONFLICT},
)
def download_preview(
    pairing: PairingDep,
    job_id: PathInt,
    item_id: PathInt,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """Input beside output, percentile-normalised, channels as a colour composite."""
    item = _item(session, principal, pairing, job_id, item_id)
    if item.preview_key is None:
        raise ApiError(409, "conflict", f"item {item_id} has no preview ({item.state.value})")
    return download(
        store, item.preview_key, media_type="image/png", filename=f"item-{item_id}-preview.png"
    )
