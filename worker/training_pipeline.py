"""A training job from claim to version: claim the job (atomically), run its stages
(worker/training_stages.py: load → train → evaluate and draw → publish the version), or record
why it failed. The job's scratch folder is removed however the run ends."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import JobState, TrainingJob, utcnow
from models.training import TrainingCancelled
from worker.claims import Claim, claim_job
from worker.devices import prepare_tensorflow
from worker.progress import JobReporter
from worker.training_stages import evaluate_and_draw, load_job, publish_version, train


def claim(factory: sessionmaker[Session], job_id: int, settings: Settings) -> Claim:
    """Take the training job if it is queued, or running but unheard of (its worker died)."""
    return claim_job(factory, TrainingJob, job_id, settings)


def scratch_folder(settings: Settings, job_id: int) -> Path:
    return Path(settings.data_dir).resolve() / "scratch" / f"job-{job_id}"


def run(
    factory: sessionmaker[Session], store: ObjectStore, settings: Settings, job_id: int
) -> dict[str, Any]:
    """Train, evaluate and version one claimed job; the job row says how it ended. Whatever is
    worth keeping (checkpoints, the version's artifacts) is in the object store by then."""
    device = prepare_tensorflow()
    scratch = scratch_folder(settings, job_id)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        job = load_job(factory, store, settings, job_id, device, scratch)
        reporter = JobReporter(
            factory, store, job_id, settings.job_progress_interval_s, scratch, job.object_prefix
        )
        try:
            trained = train(job, reporter)
        except TrainingCancelled as stopped:
            return {"job_id": job_id, "state": "cancelled", "step": stopped.step}
        evaluation = evaluate_and_draw(store, job, trained)
        number = publish_version(factory, store, job, trained, evaluation, reporter)
        return {"job_id": job_id, "state": "succeeded", "version": number}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fail(factory: sessionmaker[Session], job_id: int, reason: str) -> None:
    with session_scope(factory) as session:
        job = session.get(TrainingJob, job_id)
        if job is not None and job.state not in (JobState.succeeded, JobState.cancelled):
            job.state, job.reason, job.finished_at = JobState.failed, reason[:2000], utcnow()
