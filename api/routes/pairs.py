"""Pairs (the LQ and HQ image of one field): alignment status, aligned arrays, previews."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api import access, ingest
from api.deps import DispatcherDep, PrincipalDep, SessionDep, StoreDep
from api.errors import ApiError
from api.registry import paginate
from api.schemas import Page, PairOut
from api.tables import Pair, PairStatus, Side

router = APIRouter(prefix="/pairings/{pairing_id}/pairs", tags=["pairs"])


def _get_pair(session: SessionDep, principal: PrincipalDep, pairing_id: int, pair_id: int) -> Pair:
    access.get_pairing(session, principal, pairing_id)
    pair = session.scalar(select(Pair).where(Pair.id == pair_id, Pair.pairing_id == pairing_id))
    if pair is None:
        raise ApiError(404, "not_found", f"pair {pair_id} does not exist")
    return pair


@router.get("")
def list_pairs(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    status: PairStatus | None = None,
    field_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[PairOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    query = select(Pair).where(Pair.pairing_id == pairing.id)
    if status is not None:
        query = query.where(Pair.status == status)
    if field_id is not None:
        query = query.where(Pair.field_id == field_id)
    page = paginate(session, query, limit, offset, Pair.field_id)
    page.items = [PairOut.model_validate(p) for p in page.items]
    return page


@router.get("/{pair_id}")
def get_pair(
    pairing_id: int, pair_id: int, session: SessionDep, principal: PrincipalDep
) -> PairOut:
    return PairOut.model_validate(_get_pair(session, principal, pairing_id, pair_id))


@router.get("/{pair_id}/aligned/{side}", response_class=StreamingResponse)
def download_aligned(
    pairing_id: int,
    pair_id: int,
    side: Side,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """The aligned array of one side as a float32 TIFF on the HQ pixel grid."""
    pair = _get_pair(session, principal, pairing_id, pair_id)
    key = pair.lq_aligned_key if side == Side.lq else pair.hq_aligned_key
    if key is None:
        raise ApiError(404, "not_found", f"pair {pair_id} has no aligned images ({pair.status})")
    name = f"{pair.field_id}_{side.value}_aligned.tif"
    return StreamingResponse(
        store.iter_bytes(key),
        media_type="image/tiff",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{pair_id}/preview.png", response_class=StreamingResponse)
def preview(
    pairing_id: int, pair_id: int, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> StreamingResponse:
    """LQ beside HQ after alignment, percentile-normalised, channels as a colour composite."""
    pair = _get_pair(session, principal, pairing_id, pair_id)
    if pair.preview_key is None:
        raise ApiError(404, "not_found", f"pair {pair_id} has no preview yet ({pair.status})")
    return StreamingResponse(store.iter_bytes(pair.preview_key), media_type="image/png")


@router.post("/{pair_id}/align", status_code=202)
def realign(
    pairing_id: int,
    pair_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    dispatcher: DispatcherDep,
) -> PairOut:
    """Run alignment again (for example after correcting a microscope's pixel size)."""
    pair = _get_pair(session, principal, pairing_id, pair_id)
    if pair.status == PairStatus.aligning:
        raise ApiError(409, "conflict", "this pair is being aligned right now")
    ingest.queue_alignment(session, dispatcher, pair)
    return PairOut.model_validate(pair)


@router.post("/{pair_id}/accept")
def accept(pairing_id: int, pair_id: int, session: SessionDep, principal: PrincipalDep) -> PairOut:
    """Overrule the quality gate for a rejected pair; who and when are recorded."""
    pair = _get_pair(session, principal, pairing_id, pair_id)
    return PairOut.model_validate(ingest.accept_by_hand(session, principal, pair))
