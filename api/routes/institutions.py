"""Institutions of the network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import AdminDep, InstitutionDep, PrincipalDep, SessionDep
from api.openapi_responses import BAD_REQUEST, CONFLICT, FORBIDDEN, INVALID, NOT_FOUND
from api.pagination import paginate
from api.params import Offset
from api.schemas import InstitutionCreate, InstitutionOut, InstitutionUpdate, Page
from api.services import access, registry
from api.tables import Institution

router = APIRouter(prefix="/institutions", tags=["institutions"], responses=INVALID)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an institution",
    responses={**BAD_REQUEST, **FORBIDDEN, **CONFLICT},
)
def create_institution(body: InstitutionCreate, session: SessionDep, _: AdminDep) -> InstitutionOut:
    """Admin only. Names are unique across the network (409 on a duplicate)."""
    return InstitutionOut.model_validate(registry.create_institution(session, body))


@router.get("", summary="List institutions")
def list_institutions(
    session: SessionDep,
    principal: PrincipalDep,
    country: str | None = None,
    name: Annotated[str | None, Query(description="substring, case-insensitive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[InstitutionOut]:
    """The institutions this key may see: every one for an admin; its own and its pairings'
    partners for other keys. Filter by country or by a case-insensitive name substring."""
    query = access.visible_institutions(principal)
    if country:
        query = query.where(Institution.country == country)
    if name:
        query = query.where(Institution.name.ilike(f"%{name}%"))
    return paginate(session, query, limit, offset, Institution.id)


@router.get("/{institution_id}", summary="Get an institution", responses=NOT_FOUND)
def get_institution(institution: InstitutionDep) -> InstitutionOut:
    """One institution; 404 when it does not exist or this key may not see it."""
    return InstitutionOut.model_validate(institution)


@router.patch(
    "/{institution_id}",
    summary="Update an institution",
    responses={**BAD_REQUEST, **FORBIDDEN, **NOT_FOUND, **CONFLICT},
)
def update_institution(
    body: InstitutionUpdate, session: SessionDep, _: AdminDep, institution: InstitutionDep
) -> InstitutionOut:
    """Admin only. Fields left out keep their value; names stay unique."""
    return InstitutionOut.model_validate(registry.update_institution(session, institution, body))


@router.delete(
    "/{institution_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an institution",
    responses={**FORBIDDEN, **NOT_FOUND, **CONFLICT},
)
def delete_institution(session: SessionDep, _: AdminDep, institution: InstitutionDep) -> None:
    """Admin only. Refused (409) while it still has microscopes or API keys on record."""
    registry.delete_institution(session, institution)
