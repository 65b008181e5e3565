"""FastAPI dependencies: the session, the current principal (and the checks routes repeat on
it: admin only, the path's pairing / institution / microscope as that principal may see it),
the object store, the dispatcher. The rules themselves live in `api/services/access.py`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import authenticate
from api.dispatch import Dispatcher
from api.errors import ApiError
from api.params import PathInt
from api.services import access
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import Institution, Microscope, Pairing, Principal


def get_session(request: Request) -> Iterator[Session]:
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer psk_…`")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The bearer key as sent, if any (for routes that answer anonymous callers too)."""


def get_principal(session: SessionDep, credentials: CredentialsDep) -> Principal:
    if credentials is None:
        raise ApiError(401, "unauthorized", "send an API key as `Authorization: Bearer <key>`")
    principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise ApiError(401, "unauthorized", "this API key is unknown or has been revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    """The principal, if it is an admin (403 otherwise)."""
    access.require_admin(principal)
    return principal


def get_visible_pairing(
    pairing_id: PathInt, session: SessionDep, principal: PrincipalDep
) -> Pairing:
    """The path's pairing, or 404 when it does not exist or is not this principal's to see."""
    return access.get_pairing(session, principal, pairing_id)


def get_visible_institution(
    institution_id: PathInt, session: SessionDep, principal: PrincipalDep
) -> Institution:
    return access.get_institution(session, principal, institution_id)


def get_visible_microscope(
    microscope_id: PathInt, session: SessionDep, principal: PrincipalDep
) -> Microscope:
    return access.get_microscope(session, principal, microscope_id)


# A route declares AdminDep before a resource dependency, so a non-admin gets 403 whether or not
# the id exists (FastAPI resolves dependencies in the order the parameters are declared).
AdminDep = Annotated[Principal, Depends(get_admin)]
PairingDep = Annotated[Pairing, Depends(get_visible_pairing)]
InstitutionDep = Annotated[Institution, Depends(get_visible_institution)]
MicroscopeDep = Annotated[Microscope, Depends(get_visible_microscope)]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
