"""Enhancing wide-field images with a pairing's generator, and downloading the results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from sqlalchemy import select

from api import access, enhancements
from api.deps import DispatcherDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from api.errors import ApiError, field_error
from api.registry import paginate
from api.schemas import EnhanceByIds, EnhancementJobOut, Page
from api.tables import EnhancementItem, EnhancementJob, ModelVersion
from api.upload_stream import ReceivedFile, receive_files

router = APIRouter(prefix="/pairings/{pairing_id}/enhancements", tags=["enhancements"])

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
                    },
                }
            },
            "application/json": {"schema": EnhanceByIds.model_json_schema()},
        },
    }
}


def _out(session: SessionDep, job: EnhancementJob) -> EnhancementJobOut:
    out = EnhancementJobOut.model_validate(job)
    out.version = session.get_one(ModelVersion, job.version_id).number
    return out


def _get(
    session: SessionDep, principal: PrincipalDep, pairing_id: int, job_id: int
) -> EnhancementJob:
    pairing = access.get_pairing(session, principal, pairing_id)
    access.require_lq_side(principal, pairing, enhancements.ENHANCE_ACTION)
    job = session.scalar(
        select(EnhancementJob).where(
            EnhancementJob.id == job_id, EnhancementJob.pairing_id == pairing.id
        )
    )
    if job is None:
        raise ApiError(404, "not_found", f"enhancement {job_id} does not exist")
    return job


def _form_int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise field_error(name, f"{value!r} is not a whole number")
    return int(value)


@router.post("", status_code=status.HTTP_202_ACCEPTED, openapi_extra=REQUEST_BODY)
async def enhance(
    pairing_id: int,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> EnhancementJobOut:
    """Enhance images uploaded in this request (multipart `files`) or LQ images already stored
    (JSON `image_ids`). Only the wide-field institution and admins may."""
    pairing = access.get_pairing(session, principal, pairing_id)
    access.require_lq_side(principal, pairing, enhancements.ENHANCE_ACTION)
    uploads: list[ReceivedFile] = []
    fields: dict[str, str] = {}
    ids: list[int] = []
    version: int | None = None
    out_dtype, ensemble = "float32", False
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = EnhanceByIds.model_validate_json(await request.body())
        except ValidationError as exc:
            err = exc.errors()[0]
            raise field_error(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) from exc
        version, out_dtype, ensemble, ids = (
            body.version,
            body.out_dtype,
            body.ensemble,
            body.image_ids,
        )
    else:
        try:
            uploads, fields = await receive_files(
                request, settings.data_dir / "tmp", settings.upload_max_bytes
            )
        except MultipartParseError as exc:
            raise ApiError(400, "bad_request", f"the multipart body is malformed ({exc})") from exc
    try:
        if uploads:  # multipart: the options came as form fields
            version = _form_int(fields, "version")
            out_dtype = fields.get("out_dtype", "float32")
            ensemble = fields.get("ensemble", "false").lower() in ("1", "true", "yes")
        job = await run_in_threadpool(
            enhancements.create,
            session,
            store,
            dispatcher,
            principal,
            pairing,
            version,
            out_dtype,
            ensemble,
            uploads,
            ids,
        )
    finally:
        for received in uploads:
            received.discard()
    return _out(session, job)


@router.get("")
def list_enhancements(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[EnhancementJobOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    access.require_lq_side(principal, pairing, enhancements.ENHANCE_ACTION)
    query = select(EnhancementJob).where(EnhancementJob.pairing_id == pairing.id)
    page = paginate(session, query, limit, offset, EnhancementJob.id.desc())
    page.items = [_out(session, job) for job in page.items]
    return page


@router.get("/{job_id}")
def get_enhancement(
    pairing_id: int, job_id: int, session: SessionDep, principal: PrincipalDep
) -> EnhancementJobOut:
    return _out(session, _get(session, principal, pairing_id, job_id))


def _item(job: EnhancementJob, item_id: int) -> EnhancementItem:
    item = next((i for i in job.items if i.id == item_id), None)
    if item is None:
        raise ApiError(404, "not_found", f"item {item_id} does not exist in this enhancement")
    return item


@router.get("/{job_id}/items/{item_id}/output", response_class=StreamingResponse)
def download_output(
    pairing_id: int,
    job_id: int,
    item_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """The enhanced image: an OME-TIFF with its pixel size and provenance."""
    item = _item(_get(session, principal, pairing_id, job_id), item_id)
    if item.output_key is None:
        raise ApiError(
            409,
            "conflict",
            f"item {item_id} has no output ({item.state.value}"
            f"{': ' + item.reason if item.reason else ''})",
        )
    stem = item.filename.rsplit(".tif", 1)[0].removesuffix(".ome")
    return StreamingResponse(
        store.iter_bytes(item.output_key),
        media_type="image/tiff",
        headers={"Content-Disposition": f'attachment; filename="{stem}_enhanced.ome.tif"'},
    )


@router.get("/{job_id}/items/{item_id}/preview.png", response_class=StreamingResponse)
def download_preview(
    pairing_id: int,
    job_id: int,
    item_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """Input beside output, percentile-normalised, channels as a colour composite."""
    item = _item(_get(session, principal, pairing_id, job_id), item_id)
    if item.preview_key is None:
        raise ApiError(409, "conflict", f"item {item_id} has no preview ({item.state.value})")
    return StreamingResponse(store.iter_bytes(item.preview_key), media_type="image/png")
