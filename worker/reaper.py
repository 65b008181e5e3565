"""Jobs whose worker vanished: a running training job unheard of for longer than the stale limit
is put back in the queue (its checkpoint makes the retry cheap) or, after too many tries, failed
with the reason. A requeued job is left unsent (`dispatched_at` empty): the reconciler
(worker/reconciler.py) sends it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.tables import JobState, TrainingJob, utcnow


def reap(factory: sessionmaker[Session], settings: Settings) -> dict[str, Any]:
    cutoff = utcnow() - timedelta(seconds=settings.job_stale_after_s)
    requeued, failed = [], []
    with session_scope(factory) as session:
        stale = session.scalars(
            select(TrainingJob)
            .where(TrainingJob.state == JobState.running, TrainingJob.heartbeat_at < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
        for job in stale:
            host = job.worker_host or "its worker"
            seen = f"{host} was last heard of at {job.heartbeat_at:%H:%M:%S} UTC"
            if job.attempts >= settings.job_max_attempts:
                job.state, job.finished_at = JobState.failed, utcnow()
                job.reason = (
                    f"the worker stopped responding {job.attempts} times ({seen}); "
                    "check the worker logs and memory, then start a new job"
                )
                failed.append(job.id)
            else:
                job.state, job.dispatched_at = JobState.queued, None
                job.reason = f"requeued: {seen}; resuming from step {job.checkpoint_step or 0}"
                requeued.append(job.id)
    return {"requeued": requeued, "failed": failed}
