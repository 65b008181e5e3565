"""Uploading wide-field (LQ) and reference (HQ) images of a pairing's fields, and reading them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from python_multipart.exceptions import MultipartParseError
from sqlalchemy import select

from api import access, ingest
from api.deps import DispatcherDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from api.errors import ApiError
from api.registry import paginate
from api.schemas import ImageOut, Page
from api.tables import Image, Side
from api.upload_stream import receive_upload

router = APIRouter(prefix="/pairings/{pairing_id}/images", tags=["images"])

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


def _get_image(session: SessionDep, pairing_id: int, image_id: int) -> Image:
    image = session.scalar(
        select(Image).where(Image.id == image_id, Image.pairing_id == pairing_id)
    )
    if image is None:
        raise ApiError(404, "not_found", f"image {image_id} does not exist")
    return image


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
    responses={200: {"description": "identical content was already uploaded"}},
)
async def upload_image(
    pairing_id: int,
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
    pairing = access.get_pairing(session, principal, pairing_id)
    ingest.require_side(principal, pairing, side)
    try:
        received = await receive_upload(
            request, settings.data_dir / "tmp", settings.upload_max_bytes
        )
    except MultipartParseError as exc:
        raise ApiError(400, "bad_request", f"the multipart body is malformed ({exc})") from exc
    try:
        fid = ingest.field_id_for(received, field_id or received.fields.get("field_id"))
        image, created = await run_in_threadpool(
            ingest.upload_image, session, store, dispatcher, principal, pairing, side, fid, received
        )
    finally:
        received.discard()
    if not created:
        response.status_code = status.HTTP_200_OK
    return ImageOut.model_validate(image)


@router.get("")
def list_images(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    side: Side | None = None,
    field_id: str | None = None,
    sha256: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ImageOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    query = select(Image).where(Image.pairing_id == pairing.id)
    if side is not None:
        query = query.where(Image.side == side)
    if field_id is not None:
        query = query.where(Image.field_id == field_id)
    if sha256 is not None:
        query = query.where(Image.sha256 == sha256)
    return paginate(session, query, limit, offset, Image.id)


@router.get("/{image_id}")
def get_image(
    pairing_id: int, image_id: int, session: SessionDep, principal: PrincipalDep
) -> ImageOut:
    access.get_pairing(session, principal, pairing_id)
    return ImageOut.model_validate(_get_image(session, pairing_id, image_id))


@router.get("/{image_id}/file", response_class=StreamingResponse)
def download_image(
    pairing_id: int, image_id: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> StreamingResponse:
    """The original file, streamed, byte for byte as uploaded."""
    access.get_pairing(session, principal, pairing_id)
    image = _get_image(session, pairing_id, image_id)
    return StreamingResponse(
        store.iter_bytes(image.object_key),
        media_type="image/tiff",
        headers={
            "Content-Disposition": f'attachment; filename="{image.filename}"',
            "Content-Length": str(image.size_bytes),
            "ETag": image.sha256,
        },
    )


@router.delete("/{image_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_image(
    pairing_id: int, image_id: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> None:
    access.get_pairing(session, principal, pairing_id)
    ingest.delete_image(session, store, principal, _get_image(session, pairing_id, image_id))
