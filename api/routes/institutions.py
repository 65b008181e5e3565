"""Institutions of the network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api import access, registry
from api.deps import PrincipalDep, SessionDep
from api.schemas import InstitutionCreate, InstitutionOut, InstitutionUpdate, Page
from api.tables import Institution

router = APIRouter(prefix="/institutions", tags=["institutions"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_institution(
    body: InstitutionCreate, session: SessionDep, principal: PrincipalDep
) -> InstitutionOut:
    access.require_admin(principal)
    return InstitutionOut.model_validate(registry.create_institution(session, body))


@router.get("")
def list_institutions(
    session: SessionDep,
    principal: PrincipalDep,
    country: str | None = None,
    name: Annotated[str | None, Query(description="substring, case-insensitive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[InstitutionOut]:
    query = access.visible_institutions(principal)
    if country:
        query = query.where(Institution.country == country)
    if name:
        query = query.where(Institution.name.ilike(f"%{name}%"))
    return registry.paginate(session, query, limit, offset, Institution.id)


@router.get("/{institution_id}")
def get_institution(
    institution_id: int, session: SessionDep, principal: PrincipalDep
) -> InstitutionOut:
    return InstitutionOut.model_validate(access.get_institution(session, principal, institution_id))


@router.patch("/{institution_id}")
def update_institution(
    institution_id: int, body: InstitutionUpdate, session: SessionDep, principal: PrincipalDep
) -> InstitutionOut:
    access.require_admin(principal)
    institution = access.get_institution(session, principal, institution_id)
    return InstitutionOut.model_validate(registry.update_institution(session, institution, body))


@router.delete("/{institution_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_institution(institution_id: int, session: SessionDep, principal: PrincipalDep) -> None:
    access.require_admin(principal)
    registry.delete_institution(session, access.get_institution(session, principal, institution_id))
