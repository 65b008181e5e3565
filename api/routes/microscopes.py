"""Microscopes and their optics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import AdminDep, MicroscopeDep, PrincipalDep, SessionDep
from api.openapi_responses import BAD_REQUEST, CONFLICT, FORBIDDEN, INVALID, NOT_FOUND
from api.pagination import paginate
from api.params import Offset, QueryInt
from api.schemas import MicroscopeCreate, MicroscopeOut, MicroscopeUpdate, Page
from api.services import access, registry
from api.tables import Microscope, Modality

router = APIRouter(prefix="/microscopes", tags=["microscopes"], responses=INVALID)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a microscope",
    responses={**BAD_REQUEST, **FORBIDDEN, **CONFLICT},
)
def create_microscope(body: MicroscopeCreate, session: SessionDep, _: AdminDep) -> MicroscopeOut:
    """Admin only. Optics are checked against physics (NA at most the immersion index,
    wavelengths within 200–1200 nm); names are unique within an institution."""
    return MicroscopeOut.model_validate(registry.create_microscope(session, body))


@router.get("", summary="List microscopes")
def list_microscopes(
    session: SessionDep,
    principal: PrincipalDep,
    institution_id: QueryInt = None,
    modality: Modality | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[MicroscopeOut]:
    """The microscopes this key may see, filtered by institution or modality."""
    query = access.visible_microscopes(principal)
    if institution_id is not None:
        query = query.where(Microscope.institution_id == institution_id)
    if modality is not None:
        query = query.where(Microscope.modality == modality)
    return paginate(session, query, limit, offset, Microscope.id)


@router.get("/{microscope_id}", summary="Get a microscope", responses=NOT_FOUND)
def get_microscope(microscope: MicroscopeDep) -> MicroscopeOut:
    """One microscope with its optics and channels."""
    return MicroscopeOut.model_validate(microscope)


@router.patch(
    "/{microscope_id}",
    summary="Correct a microscope's optics",
    responses={**BAD_REQUEST, **FORBIDDEN, **NOT_FOUND, **CONFLICT},
)
def update_microscope(
    body: MicroscopeUpdate, session: SessionDep, _: AdminDep, microscope: MicroscopeDep
) -> MicroscopeOut:
    """Admin only. Name and optics may change; channels are fixed once registered, because
    images depend on them."""
    return MicroscopeOut.model_validate(registry.update_microscope(session, microscope, body))


@router.delete(
    "/{microscope_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a microscope",
    responses={**FORBIDDEN, **NOT_FOUND, **CONFLICT},
)
def delete_microscope(session: SessionDep, _: AdminDep, microscope: MicroscopeDep) -> None:
    """Admin only. Refused (409) while it takes part in a pairing."""
    registry.delete_microscope(session, microscope)
