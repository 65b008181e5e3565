"""Celery tasks: wiring only. Each takes an id and hands it to the one function that claims the
work, computes it and records how it ended (idempotent: a redelivery returns the stored result).
A task that meets an unreachable database or store is retried with backoff, never recorded as
failed or acknowledged as done (worker/transient.py)."""

from __future__ import annotations

from typing import Any

from billiard.process import current_process
from celery.signals import worker_process_init, worker_ready
from celery.utils.log import get_task_logger

from api.celery_config import (
    ALIGN_PAIR,
    ENHANCE,
    PRETRAIN,
    READINESS_REPORT,
    REAP_STALE_JOBS,
    TRAIN,
)
from api.settings import get_settings
from worker import alignment, enhancing, pretraining, readiness, reconciler, training_pipeline
from worker.app import app, object_store, reconciler_session_factory, session_factory
from worker.claims import Claim
from worker.devices import count_gpus, pin_gpu
from worker.transient import RETRY_ON_TRANSIENT, is_transient

logger = get_task_logger(__name__)


@worker_process_init.connect
def _one_gpu_per_process(**_: Any) -> None:
    pin_gpu(max(0, (current_process().index or 0)), count_gpus())


@worker_ready.connect
def _reconcile_from_every_worker(**_: Any) -> None:
    """Every worker, not only the one running beat, re-sends work whose message was lost."""
    reconciler.start_sweeping(reconciler_session_factory(), get_settings(), app)


@app.task(name=READINESS_REPORT, acks_late=True, **RETRY_ON_TRANSIENT)
def readiness_report(report_id: int) -> dict[str, Any]:
    """Compute a pairing's readiness report; a second delivery returns the stored result."""
    return readiness.run(session_factory(), report_id)


@app.task(name=ALIGN_PAIR, acks_late=True, **RETRY_ON_TRANSIENT)
def align_pair(pair_id: int) -> dict[str, Any]:
    """Align one pair. Idempotent: a pair already decided is left as it is."""
    threshold = get_settings().align_ncc_threshold
    return alignment.run(session_factory(), object_store(), pair_id, threshold)


def _run_claimed(pipeline: Any, what: str, job_id: int) -> dict[str, Any]:
    """Claim → run → record failure for a training-like job (`pipeline` has claim/run/fail). A
    second delivery while another worker runs the job is dropped: if that worker dies, its
    heartbeat goes stale and the reconciler sends the job again, to resume from its checkpoint."""
    settings = get_settings()
    factory = session_factory()
    claim = pipeline.claim(factory, job_id, settings)
    if claim == Claim.done:
        return {"job_id": job_id, "skipped": "already finished"}
    if claim == Claim.busy:
        return {"job_id": job_id, "skipped": f"another worker is {what} it"}
    try:
        return pipeline.run(factory, object_store(), settings, job_id)
    except Exception as exc:
        if is_transient(exc):
            raise
        logger.exception("%s job %s failed", what, job_id)
        reason = f"{type(exc).__name__}: {exc}"
        pipeline.fail(factory, job_id, reason)
        return {"job_id": job_id, "state": "failed", "reason": reason}


@app.task(name=TRAIN, acks_late=True, reject_on_worker_lost=True, **RETRY_ON_TRANSIENT)
def train(job_id: int) -> dict[str, Any]:
    """Train one job."""
    return _run_claimed(training_pipeline, "training", job_id)


@app.task(name=PRETRAIN, acks_late=True, reject_on_worker_lost=True, **RETRY_ON_TRANSIENT)
def pretrain(job_id: int) -> dict[str, Any]:
    """Pretrain one base model."""
    return _run_claimed(pretraining, "pretraining", job_id)


@app.task(name=ENHANCE, acks_late=True, **RETRY_ON_TRANSIENT)
def enhance(job_id: int) -> dict[str, Any]:
    """Enhance every image of one job that has no result yet."""
    return enhancing.run(session_factory(), object_store(), get_settings(), job_id)


@app.task(name=REAP_STALE_JOBS)
def reap_stale_jobs() -> dict[str, Any]:
    """Requeue or fail jobs whose worker stopped sending heartbeats, and send what waits."""
    return reconciler.reconcile(session_factory(), get_settings(), app)
