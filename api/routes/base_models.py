"""The network's base models: pretraining jobs (admins) and the bases they made."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api.deps import AdminDep, DispatcherDep, PrincipalDep, SessionDep
from api.openapi_responses import (
    BAD_REQUEST,
    BROKER_UNAVAILABLE,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
)
from api.pagination import paginate
from api.params import Offset, PathInt
from api.schemas import BaseVersionOut, Page, PretrainingJobCreate, PretrainingJobOut
from api.services import base_versions
from api.tables import BaseVersion, PretrainingJob, Principal, Role

router = APIRouter(prefix="/base-models", tags=["base models"], responses=INVALID)


def _job_out(session: SessionDep, job: PretrainingJob) -> PretrainingJobOut:
    out = PretrainingJobOut.model_validate(job)
    out.base = session.scalar(select(BaseVersion.number).where(BaseVersion.job_id == job.id))
    return out


def _base_out(base: BaseVersion, principal: Principal) -> BaseVersionOut:
    out = BaseVersionOut.model_validate(base)
    if principal.role != Role.admin:
        out.sources = None  # which pairings lent their pairs is the network's to know
    return out


@router.post(
    "/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Pretrain a base model",
    responses={**BAD_REQUEST, **FORBIDDEN, **BROKER_UNAVAILABLE},
)
def start_pretraining(
    body: PretrainingJobCreate, session: SessionDep, admin: AdminDep, dispatcher: DispatcherDep
) -> PretrainingJobOut:
    """Admin only. Queue the training of a channel-agnostic (single-channel, applied per
    channel) base on a `train` worker, from synthetic pairs and the latest snapshots of the
    pairings both of whose institutions consent. Nothing to learn from is a 422."""
    job = base_versions.start_pretraining(
        session, dispatcher=dispatcher, principal=admin, request=body
    )
    return _job_out(session, job)


@router.get("/jobs/{job_id}", summary="Get a pretraining job", responses={**FORBIDDEN, **NOT_FOUND})
def get_pretraining_job(job_id: PathInt, session: SessionDep, _: AdminDep) -> PretrainingJobOut:
    """Admin only. Its state, progress and, once succeeded, the base it made."""
    return _job_out(session, base_versions.get_pretraining_job(session, job_id))


@router.get("", summary="List base models")
def list_bases(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[BaseVersionOut]:
    """Every base, newest first; a training job starts from the newest untainted one by
    default. Their sources (the pairings they read) are shown to admins only."""
    page = paginate(session, select(BaseVersion), limit, offset, BaseVersion.number.desc())
    page.items = [_base_out(base, principal) for base in page.items]
    return page


@router.get("/{number}", summary="Get a base model", responses=NOT_FOUND)
def get_base(number: PathInt, session: SessionDep, principal: PrincipalDep) -> BaseVersionOut:
    """One base with its recipe, configuration, digests and taint."""
    return _base_out(base_versions.get_base(session, number), principal)
