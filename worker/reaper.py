"""Jobs whose worker vanished: a running training, pretraining or enhancement job unheard of for
longer than the stale limit is put back in the queue or, once it has been claimed
`PAIRSCOPE_JOB_MAX_ATTEMPTS` times (worker/claims.py counts them), failed with the reason: a job
whose execution kills its worker every time must not be sent again for ever. A requeued job is
left unsent (`dispatched_at` empty): the reconciler (worker/reconciler.py) sends it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.tables import EnhancementJob, JobState, PretrainingJob, TrainingJob, utcnow

JOB_TABLES = (TrainingJob, PretrainingJob, EnhancementJob)


def reap(factory: sessionmaker[Session], settings: Settings) -> dict[str, Any]:
    """Requeue or fail every stale job; the ids by table name: {"requeued": …, "failed": …}."""
    requeued: dict[str, list[int]] = {}
    failed: dict[str, list[int]] = {}
    for table in JOB_TABLES:
        back, given_up = reap_table(factory, settings, table)
        if back:
            requeued[table.__tablename__] = back
        if given_up:
            failed[table.__tablename__] = given_up
    return {"requeued": requeued, "failed": failed}


def reap_table(
    factory: sessionmaker[Session], settings: Settings, table: Any
) -> tuple[list[int], list[int]]:
    cutoff = utcnow() - timedelta(seconds=settings.job_stale_after_s)
    requeued, failed = [], []
    with session_scope(factory) as session:
        stale = session.scalars(
            select(table)
            .where(
                table.state == JobState.running,
                or_(table.heartbeat_at < cutoff, table.heartbeat_at.is_(None)),
            )
            .with_for_update(skip_locked=True)
        ).all()
        for job in stale:
            host = job.worker_host or "its worker"
            heard = f"{job.heartbeat_at:%H:%M:%S} UTC" if job.heartbeat_at else "never"
            seen = f"{host} was last heard of at {heard}"
            if job.attempts >= settings.job_max_attempts:
                job.state, job.finished_at = JobState.failed, utcnow()
                job.reason = (
                    f"the worker stopped responding {job.attempts} times ({seen}); "
                    "check the worker logs and memory, then start a new job"
                )
                failed.append(job.id)
            else:
                job.state, job.dispatched_at = JobState.queued, None
                job.reason = f"requeued: {seen}; {_resumes(job)}"
                requeued.append(job.id)
            if isinstance(job, EnhancementJob):
                _settle_items(job)
    return requeued, failed


def _resumes(job: Any) -> str:
    """What the next attempt keeps of this one."""
    if isinstance(job, TrainingJob):
        return f"resuming from step {job.checkpoint_step or 0}"
    if isinstance(job, EnhancementJob):
        return "the images already enhanced are kept"
    return "starting again"


def _settle_items(job: EnhancementJob) -> None:
    """The image the dead worker was on waits again, or fails with its job."""
    for item in job.items:
        if item.state in (JobState.running, JobState.queued):
            if job.state == JobState.failed:
                item.state, item.reason, item.finished_at = JobState.failed, job.reason, utcnow()
            else:
                item.state = JobState.queued
