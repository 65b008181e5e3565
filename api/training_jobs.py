"""Starting, following and cancelling training jobs. The configuration is validated against the
science core's `Config` here, so a bad override is a 422 before anything is queued."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.celery_config import TRAIN
from api.dispatch import Dispatcher
from api.errors import ApiError, field_error
from api.settings import Settings
from api.tables import Dataset, JobState, Pairing, PairingStatus, Principal, TrainingJob, utcnow
from models.config import PRESETS, Config

FINISHED = (JobState.succeeded, JobState.failed, JobState.cancelled)


def resolve_config(
    preset: str, overrides: dict[str, Any], seed: int | None, minutes: float | None
) -> Config:
    if preset not in PRESETS:
        raise field_error(
            "preset", f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}"
        )
    extra = dict(overrides)
    if seed is not None:
        extra["seed"] = seed
    if minutes is not None:
        extra["minutes"] = minutes
    try:
        return Config.preset(preset).with_overrides(extra)
    except (ValueError, TypeError) as exc:
        key = next((k for k in extra if str(k) in str(exc)), None)
        raise field_error(f"overrides.{key}" if key else "overrides", str(exc)) from exc


def start(
    session: Session,
    dispatcher: Dispatcher,
    principal: Principal,
    pairing: Pairing,
    dataset_id: int,
    preset: str,
    overrides: dict[str, Any],
    seed: int | None,
    minutes: float | None,
) -> TrainingJob:
    if pairing.status != PairingStatus.active:
        raise ApiError(409, "conflict", "the pairing is archived; reactivate it to train")
    dataset = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.pairing_id == pairing.id)
    )
    if dataset is None:
        raise field_error("dataset_id", f"dataset {dataset_id} does not exist for this pairing")
    config = resolve_config(preset, overrides, seed, minutes)
    job = TrainingJob(
        pairing_id=pairing.id,
        dataset_id=dataset.id,
        preset=preset,
        overrides=overrides,
        config=config.to_dict(),
        seed=config.seed,
        minutes=config.minutes,
        state=JobState.queued,
        started_by_id=principal.id,
        progress={"step": 0, "total": config.steps, "percent": 0.0},
    )
    session.add(job)
    session.commit()
    dispatcher.send_or_undo(session, TRAIN, job)
    return job


def cancel(session: Session, job: TrainingJob) -> TrainingJob:
    """Queued jobs end at once; running ones stop at their next step, keeping a checkpoint."""
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
