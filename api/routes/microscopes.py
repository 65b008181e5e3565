"""Microscopes and their optics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api import access, registry
from api.deps import PrincipalDep, SessionDep
from api.schemas import MicroscopeCreate, MicroscopeOut, MicroscopeUpdate, Page
from api.tables import Microscope, Modality

router = APIRouter(prefix="/microscopes", tags=["microscopes"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_microscope(
    body: MicroscopeCreate, session: SessionDep, principal: PrincipalDep
) -> MicroscopeOut:
    access.require_admin(principal)
    return MicroscopeOut.model_validate(registry.create_microscope(session, body))


@router.get("")
def list_microscopes(
    session: SessionDep,
    principal: PrincipalDep,
    institution_id: int | None = None,
    modality: Modality | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[MicroscopeOut]:
    query = access.visible_microscopes(principal)
    if institution_id is not None:
        query = query.where(Microscope.institution_id == institution_id)
    if modality is not None:
        query = query.where(Microscope.modality == modality)
    return registry.paginate(session, query, limit, offset, Microscope.id)


@router.get("/{microscope_id}")
def get_microscope(
    microscope_id: int, session: SessionDep, principal: PrincipalDep
) -> MicroscopeOut:
    return MicroscopeOut.model_validate(access.get_microscope(session, principal, microscope_id))


@router.patch("/{microscope_id}")
def update_microscope(
    microscope_id: int, body: MicroscopeUpdate, session: SessionDep, principal: PrincipalDep
) -> MicroscopeOut:
    access.require_admin(principal)
    microscope = access.get_microscope(session, principal, microscope_id)
    return MicroscopeOut.model_validate(registry.update_microscope(session, microscope, body))


@router.delete("/{microscope_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_microscope(microscope_id: int, session: SessionDep, principal: PrincipalDep) -> None:
    access.require_admin(principal)
    registry.delete_microscope(session, access.get_microscope(session, principal, microscope_id))
