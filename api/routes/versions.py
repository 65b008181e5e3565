"""Model versions of a pairing, their artifacts, and the production / staging aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api import access, versions
from api.deps import PrincipalDep, SessionDep, StoreDep
from api.registry import paginate
from api.schemas import AliasEventOut, AliasMove, AliasOut, Page, VersionOut
from api.tables import Alias, AliasEvent, ModelVersion

router = APIRouter(prefix="/pairings/{pairing_id}", tags=["versions"])


def _out(session: SessionDep, version: ModelVersion) -> VersionOut:
    out = VersionOut.model_validate(version)
    out.aliases = list(session.scalars(select(Alias.name).where(Alias.version_id == version.id)))
    return out


@router.get("/versions")
def list_versions(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[VersionOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    query = select(ModelVersion).where(ModelVersion.pairing_id == pairing.id)
    page = paginate(session, query, limit, offset, ModelVersion.number)
    page.items = [_out(session, v) for v in page.items]
    return page


@router.get("/versions/{number}")
def get_version(
    pairing_id: int, number: int, session: SessionDep, principal: PrincipalDep
) -> VersionOut:
    pairing = access.get_pairing(session, principal, pairing_id)
    return _out(session, versions.get_version(session, pairing, number))


def _stream(store, key: str, media_type: str, filename: str) -> StreamingResponse:  # type: ignore[no-untyped-def]
    return StreamingResponse(
        store.iter_bytes(key),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/versions/{number}/model", response_class=StreamingResponse)
def download_model(
    pairing_id: int, number: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> StreamingResponse:
    """The saved model (.zip) as models/ writes it; `pairscope enhance --model` reads it."""
    pairing = access.get_pairing(session, principal, pairing_id)
    version = versions.get_version(session, pairing, number)
    return _stream(
        store, version.model_key, "application/zip", f"pairing-{pairing.id}-v{number}.zip"
    )


@router.get("/versions/{number}/report.json", response_class=StreamingResponse)
def download_report(
    pairing_id: int, number: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> StreamingResponse:
    pairing = access.get_pairing(session, principal, pairing_id)
    version = versions.get_version(session, pairing, number)
    return _stream(store, version.report_key, "application/json", f"v{number}-report.json")


@router.get("/versions/{number}/report.png", response_class=StreamingResponse)
def download_report_png(
    pairing_id: int, number: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> StreamingResponse:
    pairing = access.get_pairing(session, principal, pairing_id)
    version = versions.get_version(session, pairing, number)
    return _stream(store, version.report_png_key, "image/png", f"v{number}-report.png")


@router.delete("/versions/{number}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(
    pairing_id: int, number: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> None:
    pairing = access.get_pairing(session, principal, pairing_id)
    versions.delete_version(session, store, versions.get_version(session, pairing, number))


@router.get("/aliases")
def list_aliases(pairing_id: int, session: SessionDep, principal: PrincipalDep) -> list[AliasOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    rows = session.execute(
        select(Alias, ModelVersion.number)
        .join(ModelVersion, Alias.version_id == ModelVersion.id)
        .where(Alias.pairing_id == pairing.id)
    )
    return [AliasOut(name=a.name, version=n, updated_at=a.updated_at) for a, n in rows]


@router.put("/aliases/{name}")
def move_alias(
    pairing_id: int, name: str, body: AliasMove, session: SessionDep, principal: PrincipalDep
) -> AliasOut:
    """Point an alias at a version. Production passes the quality gate (or an admin's
    recorded override)."""
    pairing = access.get_pairing(session, principal, pairing_id)
    version = versions.get_version(session, pairing, body.version)
    alias = versions.move_alias(session, principal, pairing, name, version, body.override_reason)
    return AliasOut(name=alias.name, version=version.number, updated_at=alias.updated_at)


@router.post("/aliases/{name}/rollback")
def roll_back_alias(
    pairing_id: int, name: str, session: SessionDep, principal: PrincipalDep
) -> AliasOut:
    """Move the alias back to the version it pointed at before its last move."""
    pairing = access.get_pairing(session, principal, pairing_id)
    alias = versions.roll_back(session, principal, pairing, name)
    number = session.get_one(ModelVersion, alias.version_id).number
    return AliasOut(name=alias.name, version=number, updated_at=alias.updated_at)


@router.get("/alias-events")
def alias_events(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AliasEventOut]:
    """The audit log: who moved which alias, when, from which version to which, and why."""
    pairing = access.get_pairing(session, principal, pairing_id)
    query = select(AliasEvent).where(AliasEvent.pairing_id == pairing.id)
    return paginate(session, query, limit, offset, AliasEvent.id)
