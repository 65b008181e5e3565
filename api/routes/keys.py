"""API keys: issued and revoked by admins; any key can ask who it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api import access, auth, registry
from api.deps import PrincipalDep, SessionDep
from api.errors import ApiError, field_error
from api.schemas import KeyCreate, KeyCreated, KeyOut, Page
from api.tables import Institution, Principal, Role

router = APIRouter(tags=["keys"])


@router.get("/me")
def who_am_i(principal: PrincipalDep) -> KeyOut:
    return KeyOut.model_validate(principal)


@router.post("/keys", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, session: SessionDep, principal: PrincipalDep) -> KeyCreated:
    access.require_admin(principal)
    institution = session.get(Institution, body.institution_id)
    if institution is None:
        raise field_error("institution_id", f"institution {body.institution_id} does not exist")
    new, key = auth.issue_key(session, institution, body.role, body.label)
    session.commit()
    return KeyCreated.model_validate({**KeyOut.model_validate(new).model_dump(), "key": key})


@router.get("/keys")
def list_keys(
    session: SessionDep,
    principal: PrincipalDep,
    institution_id: int | None = None,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[KeyOut]:
    access.require_admin(principal)
    query = select(Principal)
    if institution_id is not None:
        query = query.where(Principal.institution_id == institution_id)
    if role is not None:
        query = query.where(Principal.role == role)
    return registry.paginate(session, query, limit, offset, Principal.id)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: int, session: SessionDep, principal: PrincipalDep) -> None:
    access.require_admin(principal)
    target = session.get(Principal, key_id)
    if target is None:
        raise ApiError(404, "not_found", f"key {key_id} does not exist")
    auth.revoke(session, target)
    session.commit()
