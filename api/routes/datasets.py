"""Dataset snapshots of a pairing: immutable, digested, split by field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api import access, datasets
from api.deps import PrincipalDep, SessionDep
from api.errors import ApiError
from api.registry import paginate
from api.schemas import DatasetCreate, DatasetOut, Page
from api.tables import Dataset

router = APIRouter(prefix="/pairings/{pairing_id}/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_dataset(
    pairing_id: int, body: DatasetCreate, session: SessionDep, principal: PrincipalDep
) -> DatasetOut:
    pairing = access.get_pairing(session, principal, pairing_id)
    dataset = datasets.create_snapshot(
        session, principal, pairing, body.fractions.model_dump(), body.seed
    )
    return DatasetOut.model_validate(dataset)


@router.get("")
def list_datasets(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[DatasetOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    query = select(Dataset).where(Dataset.pairing_id == pairing.id)
    page = paginate(session, query, limit, offset, Dataset.id)
    page.items = [DatasetOut.model_validate(d) for d in page.items]
    return page


@router.get("/{dataset_id}")
def get_dataset(
    pairing_id: int, dataset_id: int, session: SessionDep, principal: PrincipalDep
) -> DatasetOut:
    access.get_pairing(session, principal, pairing_id)
    dataset = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.pairing_id == pairing_id)
    )
    if dataset is None:
        raise ApiError(404, "not_found", f"dataset {dataset_id} does not exist")
    return DatasetOut.model_validate(dataset)
