"""Claiming a job row for this worker, shared by training, pretraining and enhancement jobs: a
message may be delivered twice, or again after its worker died, and of the deliveries exactly one
may run. Each claim counts an attempt, which the reaper (worker/reaper.py) limits."""

from __future__ import annotations

import socket
from datetime import timedelta
from enum import Enum

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.tables import EnhancementJob, JobState, PretrainingJob, TrainingJob, utcnow


class Claim(Enum):
    run = "run"
    busy = "busy"
    done = "done"


def claim_job(
    factory: sessionmaker[Session],
    table: type[TrainingJob] | type[PretrainingJob] | type[EnhancementJob],
    job_id: int,
    settings: Settings,
) -> Claim:
    """Take the job if it is queued, or running but unheard of (its worker died). Atomic: of
    two deliveries of the same job, one runs it."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.job_stale_after_s)
    with session_scope(factory) as session:
        taken = session.execute(
            update(table)
            .where(
                table.id == job_id,
                or_(
                    table.state == JobState.queued,
                    # its worker died; one that used up its attempts is the reaper's to fail
                    (table.state == JobState.running)
                    & (table.heartbeat_at < stale)
                    & (table.attempts < settings.job_max_attempts),
                ),
            )
            .values(
                state=JobState.running,
                heartbeat_at=now,
                attempts=table.attempts + 1,
                worker_host=socket.gethostname(),
                started_at=func.coalesce(table.started_at, now),
            )
        ).rowcount
        if taken:
            return Claim.run
        job = session.get(table, job_id)
        if job is None or job.state in (JobState.succeeded, JobState.failed, JobState.cancelled):
            return Claim.done
        return Claim.busy
