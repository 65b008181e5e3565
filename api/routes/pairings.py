"""Pairings of a low-end microscope with a high-end reference, and their readiness reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, status
from sqlalchemy import or_

from api.deps import AdminDep, DispatcherDep, PairingDep, PrincipalDep, SessionDep
from api.openapi_responses import (
    BAD_REQUEST,
    BROKER_UNAVAILABLE,
    CONFLICT,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
)
from api.pagination import paginate
from api.params import Offset, PathInt, QueryInt
from api.schemas import ConsentIn, Page, PairingCreate, PairingOut, PairingUpdate, ReadinessOut
from api.services import access, consent, registry
from api.tables import Pairing, PairingStatus, Side

router = APIRouter(prefix="/pairings", tags=["pairings"], responses=INVALID)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Pair two microscopes",
    responses={**BAD_REQUEST, **FORBIDDEN, **CONFLICT},
)
def create_pairing(body: PairingCreate, session: SessionDep, admin: AdminDep) -> PairingOut:
    """Admin only. Pairs a wide-field (LQ) microscope with a reference (HQ) one elsewhere;
    the channel map says which LQ channel matches which HQ channel."""
    return PairingOut.model_validate(registry.create_pairing(session, admin, body))


@router.get("", summary="List pairings")
def list_pairings(
    session: SessionDep,
    principal: PrincipalDep,
    status_: Annotated[PairingStatus | None, Query(alias="status")] = None,
    microscope_id: QueryInt = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[PairingOut]:
    """The pairings this key may see (its institution on either side; all for an admin),
    filtered by status or by a microscope (`microscope_id`) on either side."""
    query = access.visible_pairings(principal)
    if status_ is not None:
        query = query.where(Pairing.status == status_)
    if microscope_id is not None:
        query = query.where(
            or_(
                Pairing.lq_microscope_id == microscope_id, Pairing.hq_microscope_id == microscope_id
            )
        )
    return paginate(session, query, limit, offset, Pairing.id)


@router.get("/{pairing_id}", summary="Get a pairing", responses=NOT_FOUND)
def get_pairing(pairing: PairingDep) -> PairingOut:
    """One pairing with its channel map."""
    return PairingOut.model_validate(pairing)


@router.patch(
    "/{pairing_id}",
    summary="Rename or archive a pairing",
    responses={**BAD_REQUEST, **FORBIDDEN, **NOT_FOUND, **CONFLICT},
)
def update_pairing(
    body: PairingUpdate, session: SessionDep, _: AdminDep, pairing: PairingDep
) -> PairingOut:
    """Admin only. An archived pairing takes no new images and no training jobs."""
    return PairingOut.model_validate(registry.update_pairing(session, pairing, body))


@router.put(
    "/{pairing_id}/share-for-pretraining",
    summary="Consent to lend the pairs to the network's base",
    responses={**BAD_REQUEST, **FORBIDDEN, **NOT_FOUND},
)
def consent_to_pretraining(
    pairing: PairingDep,
    session: SessionDep,
    principal: PrincipalDep,
    body: Annotated[ConsentIn | None, Body()] = None,
) -> PairingOut:
    """The LQ or HQ institution (or an admin, naming the side) records its side's consent.
    Pretraining reads the pairing's latest snapshot only once both sides have consented."""
    pairing = consent.set_consent(session, principal, pairing, body.side if body else None, True)
    return PairingOut.model_validate(pairing)


@router.delete(
    "/{pairing_id}/share-for-pretraining",
    summary="Withdraw consent to pretraining",
    responses={**BAD_REQUEST, **FORBIDDEN, **NOT_FOUND},
)
def withdraw_from_pretraining(
    pairing: PairingDep,
    session: SessionDep,
    principal: PrincipalDep,
    side: Annotated[Side | None, Query(description="the side withdrawing (admins)")] = None,
) -> PairingOut:
    """Either side (or an admin, naming it) withdraws: the pairing's consent is gone, every
    base that read it is marked tainted, and the next base leaves it out."""
    pairing = consent.set_consent(session, principal, pairing, side, False)
    return PairingOut.model_validate(pairing)


@router.post(
    "/{pairing_id}/readiness",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Request a readiness report",
    responses={**NOT_FOUND, **BROKER_UNAVAILABLE},
)
def request_readiness(
    pairing: PairingDep, session: SessionDep, principal: PrincipalDep, dispatcher: DispatcherDep
) -> ReadinessOut:
    """Queue a readiness report (optics, sampling, channel match) computed by a worker."""
    report = registry.request_readiness(
        session, dispatcher=dispatcher, principal=principal, pairing=pairing
    )
    return ReadinessOut.model_validate(report)


@router.get(
    "/{pairing_id}/readiness/{report_id}", summary="Get a readiness report", responses=NOT_FOUND
)
def get_readiness(pairing: PairingDep, report_id: PathInt, session: SessionDep) -> ReadinessOut:
    """The report's state and, once a worker has finished it, its findings."""
    return ReadinessOut.model_validate(registry.get_readiness(session, pairing, report_id))
