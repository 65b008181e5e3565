"""Training jobs of a pairing: start, follow (progress, curves), cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from api import access, training_jobs
from api.deps import DispatcherDep, PrincipalDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.registry import paginate
from api.schemas import Page, TrainingJobCreate, TrainingJobOut
from api.settings import Settings
from api.tables import JobState, ModelVersion, TrainingJob

router = APIRouter(prefix="/pairings/{pairing_id}/training-jobs", tags=["training"])


def _out(session: SessionDep, job: TrainingJob, settings: Settings) -> TrainingJobOut:
    out = TrainingJobOut.model_validate(job)
    out.stale = training_jobs.is_stale(job, settings)
    out.version = session.scalar(select(ModelVersion.number).where(ModelVersion.job_id == job.id))
    return out


def _get(session: SessionDep, principal: PrincipalDep, pairing_id: int, job_id: int) -> TrainingJob:
    pairing = access.get_pairing(session, principal, pairing_id)
    job = session.scalar(
        select(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.pairing_id == pairing.id)
    )
    if job is None:
        raise ApiError(404, "not_found", f"training job {job_id} does not exist")
    return job


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_training(
    pairing_id: int,
    body: TrainingJobCreate,
    session: SessionDep,
    principal: PrincipalDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> TrainingJobOut:
    """Queue a training run on a `train` worker. Admins and either side of the pairing may."""
    pairing = access.get_pairing(session, principal, pairing_id)
    job = training_jobs.start(
        session,
        dispatcher,
        principal,
        pairing,
        body.dataset_id,
        body.preset,
        body.overrides,
        body.seed,
        body.minutes,
    )
    return _out(session, job, settings)


@router.get("")
def list_training_jobs(
    pairing_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[TrainingJobOut]:
    pairing = access.get_pairing(session, principal, pairing_id)
    query = select(TrainingJob).where(TrainingJob.pairing_id == pairing.id)
    if state is not None:
        query = query.where(TrainingJob.state == state)
    page = paginate(session, query, limit, offset, TrainingJob.id.desc())
    page.items = [_out(session, job, settings) for job in page.items]
    return page


@router.get("/{job_id}")
def get_training_job(
    pairing_id: int,
    job_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TrainingJobOut:
    return _out(session, _get(session, principal, pairing_id, job_id), settings)


@router.get("/{job_id}/curves.png", response_class=Response)
def training_curves(
    pairing_id: int, job_id: int, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Loss and validation PSNR/SSIM against step, drawn from the job's history."""
    from models.figures import curves_png

    job = _get(session, principal, pairing_id, job_id)
    return Response(curves_png(job.history or []), media_type="image/png")


@router.post("/{job_id}/cancel")
def cancel_training_job(
    pairing_id: int,
    job_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TrainingJobOut:
    """Stop at the next step; the last checkpoint is kept."""
    job = training_jobs.cancel(session, _get(session, principal, pairing_id, job_id))
    return _out(session, job, settings)
