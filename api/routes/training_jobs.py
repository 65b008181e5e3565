"""Training jobs of a pairing: start, follow (progress, curves), cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from api.deps import DispatcherDep, PairingDep, PrincipalDep, SessionDep, SettingsDep
from api.openapi_responses import (
    BAD_REQUEST,
    BROKER_UNAVAILABLE,
    CONFLICT,
    PAIRING_SCOPED,
    file_body,
)
from api.pagination import paginate
from api.params import Offset, PathInt
from api.schemas import Page, TrainingJobCreate, TrainingJobOut
from api.services import training_control
from api.settings import Settings
from api.tables import JobState, ModelVersion, TrainingJob

router = APIRouter(
    prefix="/pairings/{pairing_id}/training-jobs", tags=["training"], responses=PAIRING_SCOPED
)


def _out(session: SessionDep, job: TrainingJob, settings: Settings) -> TrainingJobOut:
    out = TrainingJobOut.model_validate(job)
    out.stale = training_control.is_stale(job, settings)
    out.version = session.scalar(select(ModelVersion.number).where(ModelVersion.job_id == job.id))
    return out


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start training",
    responses={**BAD_REQUEST, **CONFLICT, **BROKER_UNAVAILABLE},
)
def start_training(
    pairing: PairingDep,
    body: TrainingJobCreate,
    session: SessionDep,
    principal: PrincipalDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
) -> TrainingJobOut:
    """Queue a training run on a `train` worker. Admins and either side of the pairing may."""
    job = training_control.start(
        session,
        dispatcher=dispatcher,
        principal=principal,
        pairing=pairing,
        request=body,
        use_shipped_base=settings.shipped_base,
    )
    return _out(session, job, settings)


@router.get("", summary="List training jobs")
def list_training_jobs(
    pairing: PairingDep,
    session: SessionDep,
    settings: SettingsDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[TrainingJobOut]:
    """This pairing's training jobs, newest first, filtered by state."""
    query = select(TrainingJob).where(TrainingJob.pairing_id == pairing.id)
    if state is not None:
        query = query.where(TrainingJob.state == state)
    page = paginate(session, query, limit, offset, TrainingJob.id.desc())
    page.items = [_out(session, job, settings) for job in page.items]
    return page


@router.get("/{job_id}", summary="Get a training job")
def get_training_job(
    pairing: PairingDep, job_id: PathInt, session: SessionDep, settings: SettingsDep
) -> TrainingJobOut:
    """State, progress, history, checkpoint and the version it made; `stale` when its
    worker has stopped sending heartbeats."""
    return _out(session, training_control.get_job(session, pairing, job_id), settings)


@router.get(
    "/{job_id}/curves.png",
    response_class=Response,
    summary="Draw training curves",
    responses=file_body("image/png", "The curves as a PNG."),
)
def training_curves(pairing: PairingDep, job_id: PathInt, session: SessionDep) -> Response:
    """Loss and validation PSNR/SSIM against step, drawn from the job's history."""
    from models.figures import curves_png

    job = training_control.get_job(session, pairing, job_id)
    return Response(curves_png(job.history or []), media_type="image/png")


@router.post("/{job_id}/cancel", summary="Cancel a training job", responses=CONFLICT)
def cancel_training_job(
    pairing: PairingDep,
    job_id: PathInt,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TrainingJobOut:
    """Stop at the next step; the last checkpoint is kept. Only the institution that started
    the job and admins may."""
    job = training_control.get_job(session, pairing, job_id)
    job = training_control.cancel(session, principal, job)
    return _out(session, job, settings)
