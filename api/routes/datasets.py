"""Dataset snapshots of a pairing: immutable, digested, split by field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from api.deps import PairingDep, PrincipalDep, SessionDep
from api.openapi_responses import BAD_REQUEST, CONFLICT, PAIRING_SCOPED
from api.pagination import paginate
from api.params import Offset, PathInt
from api.schemas import DatasetCreate, DatasetOut, Page
from api.services import snapshots
from api.tables import Dataset

router = APIRouter(
    prefix="/pairings/{pairing_id}/datasets", tags=["datasets"], responses=PAIRING_SCOPED
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Snapshot a dataset",
    responses={
        200: {"description": "A snapshot with the same digest already exists; it is returned."},
        **BAD_REQUEST,
        **CONFLICT,
    },
)
def create_dataset(
    pairing: PairingDep,
    body: DatasetCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> DatasetOut:
    """Freeze the pairing's accepted pairs into an immutable dataset, split into train /
    validation / test by field with a seeded hash (same seed, same split), with a digest.
    The same pairs and split again return the existing snapshot (200). Refused (409) while
    the pairing has no accepted pairs."""
    dataset, created = snapshots.create_snapshot(
        session,
        principal=principal,
        pairing=pairing,
        fractions=body.fractions.model_dump(),
        seed=body.seed,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return DatasetOut.model_validate(dataset)


@router.get("", summary="List datasets")
def list_datasets(
    pairing: PairingDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[DatasetOut]:
    """This pairing's dataset snapshots, oldest first."""
    query = select(Dataset).where(Dataset.pairing_id == pairing.id)
    page = paginate(session, query, limit, offset, Dataset.id)
    page.items = [DatasetOut.model_validate(d) for d in page.items]
    return page


@router.get("/{dataset_id}", summary="Get a dataset")
def get_dataset(pairing: PairingDep, dataset_id: PathInt, session: SessionDep) -> DatasetOut:
    """One snapshot with its members and the split each belongs to."""
    return DatasetOut.model_validate(snapshots.get_dataset(session, pairing, dataset_id))
