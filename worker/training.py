"""A training job from start to version: claim the job, fetch the snapshot (hash-checked),
train through models/ (resuming from the stored checkpoint), evaluate honestly on the
snapshot's test fields, and record exactly one numbered version with its artifacts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.storage import ObjectStore, sha256_file
from api.tables import (
    Dataset,
    JobState,
    ModelVersion,
    Pairing,
    Split,
    TrainingJob,
    utcnow,
)
from api.tiff_inspect import read_canonical
from api.versions import alias_target
from models.baselines import Optics
from models.config import Config
from pairscope import __version__
from worker.devices import prepare_tensorflow
from worker.objects import download_verified, put_bytes
from worker.progress import JobReporter

SELF_METHOD = "generated"


class Claim(Enum):
    run = "run"
    busy = "busy"
    done = "done"


def claim(factory: sessionmaker[Session], job_id: int, settings: Settings) -> Claim:
    """Take the job if it is queued, or running but unheard of (its worker died). Atomic: of
    two deliveries of the same job, one runs it."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.job_stale_after_s)
    with session_scope(factory) as session:
        taken = session.execute(
            update(TrainingJob)
            .where(
                TrainingJob.id == job_id,
                or_(
                    TrainingJob.state == JobState.queued,
                    (TrainingJob.state == JobState.running) & (TrainingJob.heartbeat_at < stale),
                ),
            )
            .values(
                state=JobState.running,
                heartbeat_at=now,
                attempts=TrainingJob.attempts + 1,
                worker_host=socket.gethostname(),
                started_at=func.coalesce(TrainingJob.started_at, now),
            )
        ).rowcount
        if taken:
            return Claim.run
        job = session.get(TrainingJob, job_id)
        if job is None or job.state in (JobState.succeeded, JobState.failed, JobState.cancelled):
            return Claim.done
        return Claim.busy


def _planes(image: np.ndarray) -> list[np.ndarray]:
    return [image] if image.ndim == 3 else list(image)


def load_snapshot(
    session: Session, store: ObjectStore, dataset: Dataset, folder: Path
) -> dict[Split, list[tuple[str, np.ndarray, np.ndarray]]]:
    """The snapshot's aligned pairs by split, each object checked against its recorded hash."""
    by_split: dict[Split, list[tuple[str, np.ndarray, np.ndarray]]] = {s: [] for s in Split}
    for member in dataset.members:
        arrays = []
        for side, key, sha in (
            ("lq", member.lq_aligned_key, member.lq_aligned_sha256),
            ("hq", member.hq_aligned_key, member.hq_aligned_sha256),
        ):
            path = download_verified(store, key, sha, folder / f"{member.id}-{side}.tif")
            arrays.append(read_canonical(path)[0].astype(np.float32))
            path.unlink()
        by_split[member.split].append((member.field_id, arrays[0], arrays[1]))
    return by_split


def software() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    commit = os.environ.get("PAIRSCOPE_GIT_COMMIT")
    if not commit:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {
        "pairscope": __version__,
        "git_commit": commit,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def lq_optics(pairing: Pairing, grid_pixel_um: float) -> Optics:
    """The LQ microscope's optics on the aligned (HQ) pixel grid, channels as mapped."""
    scope = pairing.lq_microscope
    emission = {c.name: c.emission_nm for c in scope.channels}
    return Optics(
        scope.numerical_aperture,
        scope.immersion_index,
        grid_pixel_um,
        tuple(emission[p["lq_channel"]] for p in pairing.channel_map),
    )


def run(
    factory: sessionmaker[Session], store: ObjectStore, settings: Settings, job_id: int
) -> dict[str, Any]:
    """Train, evaluate and version one claimed job; the job row says how it ended."""
    from models import EnhancementModel, TrainingCancelled

    device = prepare_tensorflow()
    scratch = Path(settings.data_dir).resolve() / "scratch" / f"job-{job_id}"
    scratch.mkdir(parents=True, exist_ok=True)
    with session_scope(factory) as session:
        job = session.get_one(TrainingJob, job_id)
        pairing = session.get_one(Pairing, job.pairing_id)
        dataset = session.get_one(Dataset, job.dataset_id)
        job.device = device
        config = Config.from_dict(job.config)
        if "precision" not in job.overrides and settings.worker_precision != "auto":
            config = config.with_overrides(precision=settings.worker_precision)
        checkpoint_key = f"pairings/{pairing.id}/jobs/{job.id}/checkpoint.npz"
        if job.checkpoint_key and job.checkpoint_sha256:
            download_verified(
                store, job.checkpoint_key, job.checkpoint_sha256, scratch / "checkpoint.npz"
            )
            job.resumed_from_step = job.checkpoint_step
        data = load_snapshot(session, store, dataset, scratch)
        hq_pixel = pairing.hq_microscope.pixel_size_um
        optics = lq_optics(pairing, hq_pixel)
        pairing_name, pairing_id, digest = pairing.name, pairing.id, dataset.digest
        production = alias_target(session, pairing, "production")
        production_ref = (
            (production.number, production.model_key, production.model_sha256)
            if production
            else None
        )
    train, val, test = data[Split.train], data[Split.validation], data[Split.test]
    if not train:
        raise ValueError("the snapshot has no training fields; make one with a train fraction")
    model = EnhancementModel(config, name=f"{pairing_name} (job {job_id})")
    reporter = JobReporter(
        factory, store, job_id, settings.job_progress_interval_s, scratch, checkpoint_key
    )
    train_ids = [f for f, lq, _ in train for _ in _planes(lq)]
    val_lq = [p for _, lq, _ in val for p in _planes(lq)] or None
    val_hq = [p for _, _, hq in val for p in _planes(hq)] or None
    try:
        result = model.train(
            [p for _, lq, _ in train for p in _planes(lq)],
            [p for _, _, hq in train for p in _planes(hq)],
            train_ids,
            val_lq=val_lq,
            val_hq=val_hq,
            progress=reporter.progress,
            stop=reporter.stop,
            checkpoint_dir=scratch,
            resume=True,
        )
    except TrainingCancelled as stopped:
        reporter.final_checkpoint()
        reporter.flush(
            state=JobState.cancelled,
            finished_at=utcnow(),
            reason=f"cancelled at step {stopped.step}; its checkpoint is kept",
        )
        shutil.rmtree(scratch, ignore_errors=True)
        return {"job_id": job_id, "state": "cancelled", "step": stopped.step}
    reporter.final_checkpoint()
    reporter.flush(progress={**reporter.latest, "phase": "evaluating"})

    evaluation_fields = test or val
    predictors = {SELF_METHOD: _predictor(model)}
    if production_ref is not None:
        number, key, sha = production_ref
        path = download_verified(store, key, sha, scratch / "production.zip")
        predictors[f"production (version {number})"] = _predictor(EnhancementModel.load(path))
    from models.evaluation import evaluate
    from models.figures import comparison_panel, report_png

    report = evaluate(evaluation_fields, predictors, optics=optics)
    report.info.update(
        split="test" if test else "validation (the snapshot has no test fields)",
        dataset_digest=digest,
    )
    field_id, lq, hq = _representative(evaluation_fields, report)
    outputs = {"Richardson–Lucy": _rl(lq, optics), "generated": predictors[SELF_METHOD](lq)}
    emission = list(optics.wavelengths_nm)
    panel = comparison_panel(lq, hq, outputs, emission_nm=emission)
    picture = report_png(report, panel, title=f"{pairing_name}: job {job_id}, field {field_id}")

    model_path = scratch / "model.zip"
    model.save(model_path)
    base = f"pairings/{pairing_id}/jobs/{job_id}"
    model_obj = store.put_file(f"{base}/model.zip", model_path, sha256_file(model_path))
    report_doc = {
        "report": report.to_dict(),
        "self_method": SELF_METHOD,
        "training": result.to_dict(),
    }
    report_obj = put_bytes(
        store, f"{base}/report.json", json.dumps(report_doc, default=float).encode()
    )
    png_obj = put_bytes(store, f"{base}/report.png", picture)
    metrics = {
        "medians": report.to_dict()["medians"],
        "self_method": SELF_METHOD,
        "methods": report.methods,
        "fields": report.field_ids,
        "split": report.info["split"],
    }
    training = {k: v for k, v in result.to_dict().items() if k != "history"}
    number = _record_version(
        factory,
        job_id,
        dict(
            dataset_digest=digest,
            config=config.to_dict(),
            seed=config.seed,
            software=software(),
            training=training,
            device=device,
            weights_sha256=model.weights_digest(),
            model_key=model_obj.key,
            model_sha256=model_obj.sha256,
            report_key=report_obj.key,
            report_sha256=report_obj.sha256,
            report_png_key=png_obj.key,
            report_png_sha256=png_obj.sha256,
            metrics=metrics,
        ),
    )
    done = {**reporter.latest, "percent": 100.0, "phase": "done"}
    reporter.flush(
        state=JobState.succeeded,
        finished_at=utcnow(),
        progress=done,
        reason=("the time budget ended training" if result.stopped_by == "budget" else None),
    )
    shutil.rmtree(scratch, ignore_errors=True)
    return {"job_id": job_id, "state": "succeeded", "version": number}


def _predictor(model):  # type: ignore[no-untyped-def]
    from models.evaluation import model_predictor

    return model_predictor(model)


def _rl(lq: np.ndarray, optics: Optics) -> np.ndarray:
    from models.evaluation import rl_predictor

    return rl_predictor(optics)(lq)


def _representative(fields, report):  # type: ignore[no-untyped-def]
    chosen = report.representative_field(SELF_METHOD)
    return next(f for f in fields if f[0] == chosen)


def _record_version(factory: sessionmaker[Session], job_id: int, fields: dict[str, Any]) -> int:
    """Create the job's version with the next number; a job never gets two (unique job_id)."""
    for _ in range(5):
        with session_scope(factory) as session:
            existing = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
            if existing is not None:
                return existing.number
            job = session.get_one(TrainingJob, job_id)
            number = (
                session.scalar(
                    select(func.max(ModelVersion.number)).where(
                        ModelVersion.pairing_id == job.pairing_id
                    )
                )
                or 0
            ) + 1
            session.add(
                ModelVersion(
                    pairing_id=job.pairing_id,
                    number=number,
                    job_id=job_id,
                    dataset_id=job.dataset_id,
                    **fields,
                )
            )
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                continue
            return number
    raise RuntimeError("could not allocate a version number after 5 tries")


def fail(factory: sessionmaker[Session], job_id: int, reason: str) -> None:
    with session_scope(factory) as session:
        job = session.get(TrainingJob, job_id)
        if job is not None and job.state not in (JobState.succeeded, JobState.cancelled):
            job.state, job.reason, job.finished_at = JobState.failed, reason[:2000], utcnow()
