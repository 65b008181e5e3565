"""A pretraining job from claim to base: claim it (atomically), learn which pairs it may read
(api/services/base_versions.py's consenting_sources, at run time: consent given or withdrawn
since the request counts), read them hash-checked, train the single-channel base
(models/pretraining.py) and record it with its lineage. Each stage is a function of its own so
a test can run them one by one without Celery.

A lost message is sent again by the reconciler (worker/reconciler.py), and a job whose worker died
is queued again by the reaper (worker/reaper.py), as for training jobs. Not yet: cancelling a
pretraining job, and resuming one from a checkpoint (a requeued job starts again)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.services.base_versions import PretrainingSource, consenting_sources
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import BaseVersion, JobState, Pairing, PretrainingJob, utcnow
from models.base_models import Field, SyntheticRecipe
from models.config import Config
from models.files import sha256_file
from models.model import EnhancementModel
from models.pretraining import BASE_METADATA, pretrain
from worker.claims import Claim, claim_job
from worker.devices import prepare_tensorflow
from worker.training_stages import software
from worker.verified_pairs import read_verified_pair


@dataclass
class LoadedPretraining:
    job_id: int
    config: Config
    recipe: SyntheticRecipe
    sources: list[PretrainingSource]
    device: str
    scratch: Path


def claim(factory: sessionmaker[Session], job_id: int, settings: Settings) -> Claim:
    """Take the job if it is queued, or running but unheard of; of two deliveries, one runs."""
    return claim_job(factory, PretrainingJob, job_id, settings)


def load_pretraining(
    factory: sessionmaker[Session], job_id: int, device: str, scratch: Path
) -> LoadedPretraining:
    """The job's configuration and recipe, and the consenting pairings' snapshots as of now."""
    with session_scope(factory) as session:
        job = session.get_one(PretrainingJob, job_id)
        job.device = device
        return LoadedPretraining(
            job_id=job.id,
            config=Config.from_dict(job.config),
            recipe=SyntheticRecipe.from_dict(job.recipe),
            sources=consenting_sources(session),
            device=device,
            scratch=scratch,
        )


def read_sources(
    store: ObjectStore, sources: list[PretrainingSource], folder: Path
) -> list[tuple[Field, float]]:
    """The data loader: every field of the given sources (and nothing else), each object
    checked against its recorded hash, with its pairing's aligned grid pixel."""
    pairs: list[tuple[Field, float]] = []
    for source in sources:
        for member in source.fields:
            lq, hq = read_verified_pair(
                store,
                (member.lq_key, member.lq_sha256),
                (member.hq_key, member.hq_sha256),
                folder,
                "source",
            )
            field_id = f"pairing:{source.pairing_id}:{member.field_id}"
            pairs.append(((field_id, lq, hq), source.grid_pixel_um))
    return pairs


class _Progress:
    """Throttled progress and heartbeat writes to the job row."""

    def __init__(self, factory: sessionmaker[Session], job_id: int, interval_s: float) -> None:
        self.factory, self.job_id, self.interval_s = factory, job_id, interval_s
        self._last = 0.0

    def __call__(self, info: dict[str, Any]) -> None:
        if time.monotonic() - self._last < self.interval_s:
            return
        with session_scope(self.factory) as session:
            job = session.get_one(PretrainingJob, self.job_id)
            job.progress = {
                "step": info.get("step"),
                "total": info.get("total"),
                "percent": round(float(info.get("percent", 0.0)), 2),
                "eta_s": info.get("eta_s"),
                "losses": info.get("losses"),
            }
            job.heartbeat_at = utcnow()
        self._last = time.monotonic()


def train_base(
    loaded: LoadedPretraining, pairs: list[tuple[Field, float]], progress: Any = None
) -> EnhancementModel:
    lineage = {"sources": [s.lineage() for s in loaded.sources]}
    return pretrain(
        loaded.config,
        loaded.recipe,
        pairs,
        lineage=lineage,
        progress=progress,
        name=f"pairscope base (pretraining job {loaded.job_id})",
    )


def publish_base(
    factory: sessionmaker[Session], store: ObjectStore, loaded: LoadedPretraining, base: Any
) -> int:
    """Store model.zip and record the next base number with its lineage; a source pairing that
    withdrew consent while the job ran marks the new base tainted at once. The job ends
    succeeded. Returns the base's number (the existing one on a redelivery)."""
    path = loaded.scratch / "base.zip"
    base.save(path)
    digest = base.weights_digest()
    stored = store.put_file(
        f"base-models/job-{loaded.job_id}/{digest[:16]}/model.zip", path, sha256_file(path)
    )
    low, high = base.metadata[BASE_METADATA]["pixel_size_range_um"]
    fields = dict(
        recipe=loaded.recipe.to_dict(),
        sources=[s.lineage() for s in loaded.sources],
        config=base.config.to_dict(),
        seed=loaded.config.seed,
        n_channels=1,
        pixel_size_min_um=low,
        pixel_size_max_um=high,
        software=software(),
        training={k: v for k, v in base.metadata["training"].items() if k != "history"},
        device=loaded.device,
        weights_sha256=digest,
        model_key=stored.key,
        model_sha256=stored.sha256,
    )
    for _ in range(5):
        with session_scope(factory) as session:
            existing = session.scalar(
                select(BaseVersion.number).where(BaseVersion.job_id == loaded.job_id)
            )
            if existing is not None:
                return existing
            number = (session.scalar(select(func.max(BaseVersion.number))) or 0) + 1
            row = BaseVersion(number=number, job_id=loaded.job_id, **fields)
            withdrawn = [
                s.pairing_id
                for s in loaded.sources
                if not session.get_one(Pairing, s.pairing_id).share_for_pretraining
            ]
            if withdrawn:
                row.tainted_by_withdrawal, row.tainted_at = True, utcnow()
                row.taint_reason = f"pairing(s) {withdrawn} withdrew consent while it trained"
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                continue
            job = session.get_one(PretrainingJob, loaded.job_id)
            job.state, job.finished_at = JobState.succeeded, utcnow()
            job.progress = {**job.progress, "percent": 100.0, "phase": "done"}
            return number
    raise RuntimeError("could not allocate a base number after 5 tries")


def run(
    factory: sessionmaker[Session], store: ObjectStore, settings: Settings, job_id: int
) -> dict[str, Any]:
    """Pretrain one claimed job into a base; the job row says how it ended."""
    device = prepare_tensorflow()
    scratch = Path(settings.data_dir).resolve() / "scratch" / f"pretraining-{job_id}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        loaded = load_pretraining(factory, job_id, device, scratch)
        pairs = read_sources(store, loaded.sources, scratch)
        progress = _Progress(factory, job_id, settings.job_progress_interval_s)
        base = train_base(loaded, pairs, progress)
        number = publish_base(factory, store, loaded, base)
        return {"job_id": job_id, "state": "succeeded", "base": number}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fail(factory: sessionmaker[Session], job_id: int, reason: str) -> None:
    with session_scope(factory) as session:
        job = session.get(PretrainingJob, job_id)
        if job is not None and job.state != JobState.succeeded:
            job.state, job.reason, job.finished_at = JobState.failed, reason[:2000], utcnow()
