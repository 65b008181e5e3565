"""API keys: issued and revoked by admins; any key can ask who it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api.deps import AdminDep, PrincipalDep, SessionDep
from api.openapi_responses import BAD_REQUEST, FORBIDDEN, INVALID, NOT_FOUND
from api.pagination import paginate
from api.params import Offset, PathInt, QueryInt
from api.schemas import KeyCreate, KeyCreated, KeyOut, Page
from api.services import registry
from api.tables import Principal, Role

router = APIRouter(tags=["keys"])


@router.get("/me", summary="Who am I")
def who_am_i(principal: PrincipalDep) -> KeyOut:
    """The key this request was made with: role, institution, and when it was last used."""
    return KeyOut.model_validate(principal)


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key",
    responses={**BAD_REQUEST, **FORBIDDEN, **INVALID},
)
def create_key(body: KeyCreate, session: SessionDep, _: AdminDep) -> KeyCreated:
    """Admin only. The key itself is in this answer once and never again; only its hash is
    stored."""
    new, key = registry.issue_key(session, body)
    return KeyCreated.model_validate({**KeyOut.model_validate(new).model_dump(), "key": key})


@router.get("/keys", summary="List API keys", responses={**FORBIDDEN, **INVALID})
def list_keys(
    session: SessionDep,
    _: AdminDep,
    institution_id: QueryInt = None,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[KeyOut]:
    """Admin only. Keys by institution or role; secrets and hashes are never shown."""
    query = select(Principal)
    if institution_id is not None:
        query = query.where(Principal.institution_id == institution_id)
    if role is not None:
        query = query.where(Principal.role == role)
    return paginate(session, query, limit, offset, Principal.id)


@router.delete(
    "/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    responses={**FORBIDDEN, **NOT_FOUND, **INVALID},
)
def revoke_key(key_id: PathInt, session: SessionDep, _: AdminDep) -> None:
    """Admin only. The key stops working at once; its record stays."""
    registry.revoke_key(session, key_id)
