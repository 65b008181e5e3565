"""Uploading wide-field (LQ) and reference (HQ) images of a pairing's fields, and reading them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from python_multipart.exceptions import MultipartParseError
from sqlalchemy import select

from api.deps import DispatcherDep, PairingDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from api.downloads import download
from api.errors import ApiError
from api.openapi_responses import (
    BROKER_UNAVAILABLE,
    CONFLICT,
    FORBIDDEN,
    PAIRING_SCOPED,
    UPLOAD,
    file_body,
)
from api.pagination import paginate
from api.params import Offset, PathInt
from api.schemas import ImageOut, Page
from api.services import access, ingestion
from api.tables import Image, Side
from api.upload_stream import receive_upload

router = APIRouter(
    prefix="/pairings/{pairing_id}/images", tags=["images"], responses=PAIRING_SCOPED
)

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "TIFF, BigTIFF, OME-TIFF or ImageJ TIFF",
                        },
                        "field_id": {
                            "type": "string",
                            "description": "default: the file name without extension",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
    summary="Upload an image",
    responses={
        200: {"description": "Identical content was already uploaded; its record is returned."},
        **FORBIDDEN,
        **CONFLICT,
        **UPLOAD,
        **BROKER_UNAVAILABLE,
    },
)
async def upload_image(
    pairing: PairingDep,
    side: Side,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    field_id: Annotated[str | None, Query(description="default: the file name")] = None,
) -> ImageOut:
    """Stream one image in. Only the institution owning that side's microscope may upload."""
    access.require_upload_side(principal, pairing, side)  # before the body is read
    # The body may take minutes to arrive: hand the connection back to the pool meanwhile
    # (ten slow uploads held fifteen idle connections and starved every other request).
    await run_in_threadpool(session.commit)
    try:
        received = await receive_upload(
            request, settings.data_dir / "tmp", settings.upload_max_bytes
        )
    except MultipartParseError as exc:
        raise ApiError(
            400, "bad_request", "the multipart body is malformed (check its boundary and parts)"
        ) from exc
    try:
        image, created = await run_in_threadpool(
            ingestion.upload_image,
            session,
            store=store,
            dispatcher=dispatcher,
            principal=principal,
            pairing=pairing,
            side=side,
            field_id=ingestion.field_id_for(received, field_id or received.fields.get("field_id")),
            received=received,
        )
    finally:
        received.discard()
    if not created:
        response.status_code = status.HTTP_200_OK
    return ImageOut.model_validate(image)


@router.get("", summary="List images")
def list_images(
    pairing: PairingDep,
    session: SessionDep,
    side: Side | None = None,
    field_id: str | None = None,
    sha256: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[ImageOut]:
    """This pairing's images, filtered by side, field id or content hash (sha256)."""
    query = select(Image).where(Image.pairing_id == pairing.id)
    if side is not None:
        query = query.where(Image.side == side)
    if field_id is not None:
        query = query.where(Image.field_id == field_id)
    if sha256 is not None:
        query = query.where(Image.sha256 == sha256)
    return paginate(session, query, limit, offset, Image.id)


@router.get("/{image_id}", summary="Get an image's record")
def get_image(pairing: PairingDep, image_id: PathInt, session: SessionDep) -> ImageOut:
    """Axes, shape, dtype, pixel size (and where it came from) and any warnings of one image."""
    return ImageOut.model_validate(ingestion.get_image(session, pairing, image_id))


@router.get(
    "/{image_id}/file",
    response_class=StreamingResponse,
    summary="Download an image",
    responses=file_body("image/tiff", "The file as uploaded."),
)
def download_image(
    pairing: PairingDep, image_id: PathInt, session: SessionDep, store: StoreDep
) -> StreamingResponse:
    """The original file, streamed, byte for byte as uploaded."""
    image = ingestion.get_image(session, pairing, image_id)
    return download(
        store,
        image.object_key,
        media_type="image/tiff",
        filename=image.filename,
        headers={"Content-Length": str(image.size_bytes), "ETag": image.sha256},
    )


@router.delete(
    "/{image_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an image",
    responses={**FORBIDDEN, **CONFLICT},
)
def delete_image(
    pairing: PairingDep,
    image_id: PathInt,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> None:
    """Only the institution that uploaded it may. Refused (409) while a dataset snapshot uses
    it: snapshots are immutable."""
    image = ingestion.get_image(session, pairing, image_id)
    ingestion.delete_image(session, store, principal, image)
