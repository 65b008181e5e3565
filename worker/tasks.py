"""Celery tasks. Each takes an id, is idempotent, and records its outcome in the database."""

from __future__ import annotations

import socket
from typing import Any

from billiard.process import current_process
from celery import Task
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from api.celery_config import ALIGN_PAIR, ENHANCE, READINESS_REPORT, REAP_STALE_JOBS, TRAIN
from api.db import session_scope
from api.settings import get_settings
from api.tables import Pair, Pairing, PairStatus, ReadinessReport, TaskState, utcnow
from worker import enhancing, reaper, training
from worker.alignment import align_stored_pair
from worker.app import app, object_store, session_factory
from worker.devices import count_gpus, pin_gpu
from worker.readiness import pairing_readiness

logger = get_task_logger(__name__)


@worker_process_init.connect
def _one_gpu_per_process(**_: Any) -> None:
    pin_gpu(max(0, (current_process().index or 0)), count_gpus())


@app.task(name=READINESS_REPORT, acks_late=True)
def readiness_report(report_id: int) -> dict[str, Any]:
    """Compute a pairing's readiness report; a second delivery returns the stored result."""
    with session_scope(session_factory()) as session:
        report = session.get(ReadinessReport, report_id)
        if report is None:
            return {"report_id": report_id, "skipped": "the report no longer exists"}
        if report.state == TaskState.succeeded and report.report is not None:
            return report.report
        report.state = TaskState.running
        report.worker_host = socket.gethostname()
        report.started_at = utcnow()
        session.commit()
        try:
            result = pairing_readiness(session.get_one(Pairing, report.pairing_id))
        except Exception as exc:
            report.state = TaskState.failed
            report.error = f"{type(exc).__name__}: {exc}"[:2000]
            report.finished_at = utcnow()
            return {"report_id": report_id, "error": report.error}
        report.report = result
        report.state = TaskState.succeeded
        report.finished_at = utcnow()
        return result


@app.task(name=ALIGN_PAIR, acks_late=True)
def align_pair(pair_id: int) -> dict[str, Any]:
    """Align one pair. Idempotent: a pair already decided is left as it is."""
    settings = get_settings()
    with session_scope(session_factory()) as session:
        pair = session.get(Pair, pair_id)
        if pair is None:
            return {"pair_id": pair_id, "skipped": "the pair no longer exists"}
        if pair.status in (PairStatus.accepted, PairStatus.rejected):
            return {"pair_id": pair_id, "status": pair.status.value, "skipped": "already decided"}
        pair.status, pair.reason = PairStatus.aligning, None
        pair.attempts += 1
        session.commit()
        try:
            return align_stored_pair(session, object_store(), pair, settings.align_ncc_threshold)
        except Exception as exc:
            session.rollback()
            pair = session.get_one(Pair, pair_id)
            pair.status = PairStatus.rejected
            pair.reason = f"alignment failed: {type(exc).__name__}: {exc}"[:1000]
            return {"pair_id": pair_id, "status": "rejected", "reason": pair.reason}


@app.task(name=TRAIN, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def train(self: Task, job_id: int) -> dict[str, Any]:
    """Train one job. A second delivery while another worker trains it waits and looks again;
    after that worker died (no heartbeat) it takes over from the last checkpoint."""
    settings = get_settings()
    factory = session_factory()
    claim = training.claim(factory, job_id, settings)
    if claim == training.Claim.done:
        return {"job_id": job_id, "skipped": "already finished"}
    if claim == training.Claim.busy:
        raise self.retry(countdown=settings.job_stale_after_s)
    try:
        return training.run(factory, object_store(), settings, job_id)
    except Exception as exc:
        logger.exception("training job %s failed", job_id)
        reason = f"{type(exc).__name__}: {exc}"
        training.fail(factory, job_id, reason)
        return {"job_id": job_id, "state": "failed", "reason": reason}


@app.task(name=ENHANCE, acks_late=True)
def enhance(job_id: int) -> dict[str, Any]:
    """Enhance every image of one job that has no result yet."""
    return enhancing.run(session_factory(), object_store(), job_id)


@app.task(name=REAP_STALE_JOBS)
def reap_stale_jobs() -> dict[str, Any]:
    """Requeue or fail training jobs whose worker stopped sending heartbeats."""
    return reaper.reap(session_factory(), get_settings(), app)
