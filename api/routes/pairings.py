"""Pairings of a low-end microscope with a high-end reference, and their readiness reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import or_, select

from api import access, registry
from api.celery_config import READINESS_REPORT
from api.deps import DispatcherDep, PrincipalDep, SessionDep
from api.errors import ApiError
from api.schemas import Page, PairingCreate, PairingOut, PairingUpdate, ReadinessOut
from api.tables import Pairing, PairingStatus, ReadinessReport, TaskState

router = APIRouter(prefix="/pairings", tags=["pairings"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_pairing(body: PairingCreate, session: SessionDep, principal: PrincipalDep) -> PairingOut:
    access.require_admin(principal)
    return PairingOut.model_validate(registry.create_pairing(session, principal, body))


@router.get("")
def list_pairings(
    session: SessionDep,
    principal: PrincipalDep,
    status_: Annotated[PairingStatus | None, Query(alias="status")] = None,
    microscope_id: Annotated[int | None, Query(description="either side")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[PairingOut]:
    query = access.visible_pairings(principal)
    if status_ is not None:
        query = query.where(Pairing.status == status_)
    if microscope_id is not None:
        query = query.where(
            or_(
                Pairing.lq_microscope_id == microscope_id, Pairing.hq_microscope_id == microscope_id
            )
        )
    return registry.paginate(session, query, limit, offset, Pairing.id)


@router.get("/{pairing_id}")
def get_pairing(pairing_id: int, session: SessionDep, principal: PrincipalDep) -> PairingOut:
    return PairingOut.model_validate(access.get_pairing(session, principal, pairing_id))


@router.patch("/{pairing_id}")
def update_pairing(
    pairing_id: int, body: PairingUpdate, session: SessionDep, principal: PrincipalDep
) -> PairingOut:
    access.require_admin(principal)
    pairing = access.get_pairing(session, principal, pairing_id)
    return PairingOut.model_validate(registry.update_pairing(session, pairing, body))


@router.post("/{pairing_id}/readiness", status_code=status.HTTP_202_ACCEPTED)
def request_readiness(
    pairing_id: int, session: SessionDep, principal: PrincipalDep, dispatcher: DispatcherDep
) -> ReadinessOut:
    """Queue a readiness report (optics, sampling, channel match) computed by a worker."""
    pairing = access.get_pairing(session, principal, pairing_id)
    report = ReadinessReport(
        pairing_id=pairing.id, state=TaskState.queued, requested_by_id=principal.id
    )
    session.add(report)
    session.commit()
    dispatcher.send_or_undo(session, READINESS_REPORT, report)
    return ReadinessOut.model_validate(report)


@router.get("/{pairing_id}/readiness/{report_id}")
def get_readiness(
    pairing_id: int, report_id: int, session: SessionDep, principal: PrincipalDep
) -> ReadinessOut:
    pairing = access.get_pairing(session, principal, pairing_id)
    report = session.scalar(
        select(ReadinessReport).where(
            ReadinessReport.id == report_id, ReadinessReport.pairing_id == pairing.id
        )
    )
    if report is None:
        raise ApiError(404, "not_found", f"readiness report {report_id} does not exist")
    return ReadinessOut.model_validate(report)
