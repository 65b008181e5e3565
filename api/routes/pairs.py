"""Pairs (the LQ and HQ image of one field): alignment status, aligned arrays, previews."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.deps import DispatcherDep, PairingDep, PrincipalDep, SessionDep, StoreDep
from api.downloads import download
from api.errors import ApiError
from api.openapi_responses import (
    BAD_REQUEST,
    BROKER_UNAVAILABLE,
    CONFLICT,
    PAIRING_SCOPED,
    file_body,
)
from api.pagination import paginate
from api.params import Offset, PathInt
from api.schemas import Page, PairOut, PairRejection
from api.services import ingestion
from api.tables import Pair, PairStatus, Side

router = APIRouter(prefix="/pairings/{pairing_id}/pairs", tags=["pairs"], responses=PAIRING_SCOPED)


@router.get("", summary="List pairs")
def list_pairs(
    pairing: PairingDep,
    session: SessionDep,
    status: PairStatus | None = None,
    field_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[PairOut]:
    """The pairs of this pairing (one per field whose two halves are uploaded), filtered by
    alignment status or field, in field order."""
    query = select(Pair).where(Pair.pairing_id == pairing.id)
    if status is not None:
        query = query.where(Pair.status == status)
    if field_id is not None:
        query = query.where(Pair.field_id == field_id)
    page = paginate(session, query, limit, offset, Pair.field_id)
    page.items = [PairOut.model_validate(p) for p in page.items]
    return page


@router.get("/{pair_id}", summary="Get a pair")
def get_pair(pairing: PairingDep, pair_id: PathInt, session: SessionDep) -> PairOut:
    """Alignment status, reason, score (NCC) and transform of one field's pair."""
    return PairOut.model_validate(ingestion.get_pair(session, pairing, pair_id))


@router.get(
    "/{pair_id}/aligned/{side}",
    response_class=StreamingResponse,
    summary="Download an aligned image",
    responses=file_body("image/tiff", "A float32 TIFF on the HQ pixel grid."),
)
def download_aligned(
    pairing: PairingDep, pair_id: PathInt, side: Side, session: SessionDep, store: StoreDep
) -> StreamingResponse:
    """The aligned array of one side as a float32 TIFF on the HQ pixel grid."""
    pair = ingestion.get_pair(session, pairing, pair_id)
    key = pair.lq_aligned_key if side == Side.lq else pair.hq_aligned_key
    if key is None:
        raise ApiError(404, "not_found", f"pair {pair_id} has no aligned images ({pair.status})")
    name = f"{pair.field_id}_{side.value}_aligned.tif"
    return download(store, key, media_type="image/tiff", filename=name)


@router.get(
    "/{pair_id}/preview.png",
    response_class=StreamingResponse,
    summary="Download a pair's preview",
    responses=file_body("image/png", "LQ beside HQ."),
)
def preview(
    pairing: PairingDep, pair_id: PathInt, session: SessionDep, store: StoreDep
) -> StreamingResponse:
    """LQ beside HQ after alignment, percentile-normalised, channels as a colour composite."""
    pair = ingestion.get_pair(session, pairing, pair_id)
    if pair.preview_key is None:
        raise ApiError(404, "not_found", f"pair {pair_id} has no preview yet ({pair.status})")
    return download(
        store, pair.preview_key, media_type="image/png", filename=f"pair-{pair_id}-preview.png"
    )


@router.post(
    "/{pair_id}/align",
    status_code=202,
    summary="Align a pair again",
    responses={**CONFLICT, **BROKER_UNAVAILABLE},
)
def realign(
    pairing: PairingDep, pair_id: PathInt, session: SessionDep, dispatcher: DispatcherDep
) -> PairOut:
    """Run alignment again (for example after correcting a microscope's pixel size)."""
    pair = ingestion.get_pair(session, pairing, pair_id)
    return PairOut.model_validate(ingestion.realign(session, dispatcher, pair))


@router.post("/{pair_id}/accept", summary="Accept a rejected pair", responses=CONFLICT)
def accept(
    pairing: PairingDep, pair_id: PathInt, session: SessionDep, principal: PrincipalDep
) -> PairOut:
    """Overrule the quality gate, or an earlier rejection by hand, for a rejected pair; who and
    when are recorded."""
    pair = ingestion.get_pair(session, pairing, pair_id)
    return PairOut.model_validate(ingestion.accept_by_hand(session, principal, pair))


@router.post(
    "/{pair_id}/reject",
    summary="Reject an accepted pair",
    responses={**BAD_REQUEST, **CONFLICT},
)
def reject(
    pairing: PairingDep,
    pair_id: PathInt,
    body: PairRejection,
    session: SessionDep,
    principal: PrincipalDep,
) -> PairOut:
    """Reject a pair the quality gate (or a person) accepted — a blurred field, a wrong sample —
    with a reason; who and when are recorded. Later snapshots leave it out; a snapshot that
    already holds it keeps it, since snapshots are immutable. It can be accepted by hand again.
    Any key that sees the pairing may, as for accepting."""
    pair = ingestion.get_pair(session, pairing, pair_id)
    return PairOut.model_validate(ingestion.reject_by_hand(session, principal, pair, body.reason))
