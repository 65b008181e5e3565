"""Starting, following and cancelling training jobs. The configuration is validated against the
science core's `Config` here, so a bad override is a 422 before anything is queued. Who may do
so is `services/access.py`'s to say (starting: any key that sees the pairing; cancelling: the
institution that started the job, and admins)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.celery_config import TRAIN
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.schemas import TrainingJobCreate
from api.services.access import require_job_starter
from api.services.base_versions import resolve_init
from api.services.job_config import job_config, queued_job_fields
from api.settings import Settings
from api.tables import Dataset, JobState, Pairing, PairingStatus, Principal, TrainingJob, utcnow
from models.config import Config

FINISHED = (JobState.succeeded, JobState.failed, JobState.cancelled)


def resolve_config(request: TrainingJobCreate, init: dict[str, Any] | None = None) -> Config:
    """The job's Config: preset, overrides, seed and budget, and the starting weights (`init`:
    Config's init keys and the base's architecture, from services/base_versions.py)."""
    extra = dict(init or {})
    if request.seed is not None:
        extra["seed"] = request.seed
    if request.minutes is not None:
        extra["minutes"] = request.minutes
    return job_config(request.preset, request.overrides, extra)


def get_job(session: Session, pairing: Pairing, job_id: int) -> TrainingJob:
    job = session.scalar(
        select(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.pairing_id == pairing.id)
    )
    if job is None:
        raise ApiError(404, "not_found", f"training job {job_id} does not exist")
    return job


def start(
    session: Session,
    *,
    dispatcher: Dispatcher,
    principal: Principal,
    pairing: Pairing,
    request: TrainingJobCreate,
    use_shipped_base: bool = True,
) -> TrainingJob:
    """Check the pairing, dataset and configuration, record the job, queue it on `train`."""
    dataset_id = request.dataset_id
    if pairing.status != PairingStatus.active:
        raise ApiError(409, "conflict", "the pairing is archived; reactivate it to train")
    dataset = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.pairing_id == pairing.id)
    )
    if dataset is None:
        raise field_error("dataset_id", f"dataset {dataset_id} does not exist for this pairing")
    init = resolve_init(
        session, pairing, request.init, request.overrides, use_shipped=use_shipped_base
    )
    config = resolve_config(request, init.overrides())
    job = TrainingJob(
        pairing_id=pairing.id,
        dataset_id=dataset.id,
        **queued_job_fields(config, principal, request.preset, request.overrides),
    )
    session.add(job)
    session.commit()
    dispatcher.send_recorded(session, TRAIN, job)
    return job


def cancel(session: Session, principal: Principal, job: TrainingJob) -> TrainingJob:
    """Queued jobs end at once; running ones stop at their next step, keeping a checkpoint."""
    require_job_starter(session, principal, job)
    if job.state in FINISHED:
        raise ApiError(409, "conflict", f"the job has already ended ({job.state.value})")
    job.cancel_requested = True
    if job.state == JobState.queued:
        job.state, job.finished_at = JobState.cancelled, utcnow()
        job.reason = "cancelled before it started"
    session.commit()
    return job


def is_stale(job: TrainingJob, settings: Settings) -> bool:
    """A running job whose worker has not been heard of for longer than the stale limit."""
    if job.state != JobState.running or job.heartbeat_at is None:
        return False
    return utcnow() - job.heartbeat_at > timedelta(seconds=settings.job_stale_after_s)
