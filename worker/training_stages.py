"""The stages of a training job, each a function of its own so a test can run them one by one
on SQLite without Celery: load the job → train → evaluate and draw → publish the version.
worker/training_pipeline.py runs them in order for a claimed job."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.services.model_versions import alias_target
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import (
    BaseVersion,
    Dataset,
    JobState,
    ModelVersion,
    Pairing,
    Split,
    TrainingJob,
    utcnow,
)
from models.baselines import Optics
from models.config import Config
from models.files import sha256_file
from models.image_io import read_image
from models.model import EnhancementModel
from models.output_metadata import Imaging
from models.shipped_base import SHIPPED_INIT, shipped_base
from models.training import CHECKPOINT_FILE, TrainingCancelled, TrainingResult
from models.trust import METADATA_KEY as TRUST_KEY
from models.trust import UNCERTAINTY_KEY
from pairscope import __version__
from worker.imaging import pairing_imaging
from worker.objects import download_verified, put_bytes
from worker.progress import JobReporter

if TYPE_CHECKING:  # pragma: no cover - typing only
    from models.evaluation import EvaluationReport
    from models.trust import TrustReference
    from models.uncertainty import Calibration

SELF_METHOD = "generated"
Field = tuple[str, np.ndarray, np.ndarray]  # field id, LQ, HQ; (C)YX or ZCYX


@dataclass
class LoadedJob:
    """Everything the later stages need from the database, read once; no session stays open."""

    job_id: int
    pairing_id: int
    pairing_name: str
    dataset_digest: str
    config: Config
    device: str
    optics: Optics  # the LQ microscope's, on the aligned (HQ) pixel grid
    imaging: Imaging  # channels, objective and grid that label every output of the model
    lq_pixel_um: float  # the LQ microscope's pixel: inputs are resampled from about this size
    grid_pixel_um: float  # the aligned (HQ) grid the model learned on, runs on and outputs
    fields: dict[Split, list[Field]]
    production: tuple[int, str, str] | None  # the production version's number, model key, sha
    scratch: Path
    init_model: Path | None = None  # the base or version it starts from (config.init), fetched

    @property
    def object_prefix(self) -> str:
        return f"pairings/{self.pairing_id}/jobs/{self.job_id}"


@dataclass
class Trained:
    model: EnhancementModel
    result: TrainingResult


@dataclass
class Evaluation:
    report: EvaluationReport
    picture: bytes  # report.png: the medians and a representative field's comparison
    sample: np.ndarray  # the representative field's LQ (CYX): the bioimage.io package's sample
    trust: TrustReference | None = None  # saved in model.zip: every output is checked with it
    calibration: Calibration | None = None  # saved in model.zip: every output gets its intervals


def load_snapshot(store: ObjectStore, dataset: Dataset, folder: Path) -> dict[Split, list[Field]]:
    """The snapshot's aligned pairs by split, each object checked against its recorded hash."""
    by_split: dict[Split, list[Field]] = {s: [] for s in Split}
    for member in dataset.members:
        arrays = []
        for side, key, sha in (
            ("lq", member.lq_aligned_key, member.lq_aligned_sha256),
            ("hq", member.hq_aligned_key, member.hq_aligned_sha256),
        ):
            path = download_verified(store, key, sha, folder / f"{member.id}-{side}.tif")
            arrays.append(read_image(path)[0].astype(np.float32))
            path.unlink()
        by_split[member.split].append((member.field_id, arrays[0], arrays[1]))
    return by_split


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


def load_job(
    factory: sessionmaker[Session],
    store: ObjectStore,
    settings: Settings,
    job_id: int,
    device: str,
    scratch: Path,
) -> LoadedJob:
    """Record the device, fetch the stored checkpoint (to resume from) and the snapshot into
    `scratch`, hash-checked, and read what the job trains and is judged against."""
    with session_scope(factory) as session:
        job = session.get_one(TrainingJob, job_id)
        pairing = session.get_one(Pairing, job.pairing_id)
        dataset = session.get_one(Dataset, job.dataset_id)
        job.device = device
        config = Config.from_dict(job.config)
        if "precision" not in job.overrides and settings.worker_precision != "auto":
            config = config.with_overrides(precision=settings.worker_precision)
        if job.checkpoint_key and job.checkpoint_sha256:
            download_verified(
                store, job.checkpoint_key, job.checkpoint_sha256, scratch / CHECKPOINT_FILE
            )
            job.resumed_from_step = job.checkpoint_step
        production = alias_target(session, pairing, "production")
        init_model = fetch_init_model(session, store, pairing, config, scratch)
        return LoadedJob(
            job_id=job.id,
            pairing_id=pairing.id,
            pairing_name=pairing.name,
            dataset_digest=dataset.digest,
            config=config,
            device=device,
            optics=lq_optics(pairing, pairing.hq_microscope.pixel_size_um),
            imaging=pairing_imaging(pairing),
            lq_pixel_um=pairing.lq_microscope.pixel_size_um,
            grid_pixel_um=pairing.hq_microscope.pixel_size_um,
            fields=load_snapshot(store, dataset, scratch),
            production=(
                (production.number, production.model_key, production.model_sha256)
                if production
                else None
            ),
            scratch=scratch,
            init_model=init_model,
        )


def fetch_init_model(
    session: Session, store: ObjectStore, pairing: Pairing, config: Config, scratch: Path
) -> Path | None:
    """Download the model `config.init` names ("base:N", "version:N"), hash-checked, or the
    base shipped in the package ("base:shipped"); None for a job that starts from scratch."""
    if config.init == "scratch":
        return None
    if config.init == SHIPPED_INIT:
        shipped = shipped_base()
        if shipped is None:
            raise ValueError("the job starts from the shipped base; this worker has none")
        return shipped.path  # start_model checks its weights against the recorded digest
    kind, _, number = config.init.partition(":")
    row: BaseVersion | ModelVersion | None
    if kind == "base":
        row = session.scalar(select(BaseVersion).where(BaseVersion.number == int(number)))
    elif kind == "version":
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.pairing_id == pairing.id, ModelVersion.number == int(number)
            )
        )
    else:
        raise ValueError(f"a service job cannot start from {config.init!r}")
    if row is None:
        raise ValueError(f"the job starts from {config.init}, which no longer exists")
    return download_verified(store, row.model_key, row.model_sha256, scratch / "init.zip")


def start_model(job: LoadedJob, n_channels: int) -> EnhancementModel:
    """The job's generator: fresh, or set from the base or version it starts from."""
    model = EnhancementModel(
        job.config, n_channels=n_channels, name=f"{job.pairing_name} (job {job.job_id})"
    )
    if job.init_model is not None:
        from models.base_init import initialise_from_base

        start = EnhancementModel.load(job.init_model, precision="float32")
        if start.weights_digest() != job.config.init_sha256:
            raise ValueError(f"{job.config.init}'s weights differ from those the job recorded")
        initialise_from_base(model, start)
    return model


def _plane_pairs(fields: list[Field]) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Field ids, LQ planes and HQ planes, one entry per CYX plane (Z stacks unstacked)."""
    ids: list[str] = []
    lq: list[np.ndarray] = []
    hq: list[np.ndarray] = []
    for field_id, lq_image, hq_image in fields:
        lq_planes = [lq_image] if lq_image.ndim == 3 else list(lq_image)
        ids += [field_id] * len(lq_planes)
        lq += lq_planes
        hq += [hq_image] if hq_image.ndim == 3 else list(hq_image)
    return ids, lq, hq


def train(job: LoadedJob, reporter: JobReporter) -> Trained:
    """Train on the snapshot's training fields, resuming from a checkpoint in the scratch folder.
    A cancel request ends the job cancelled, its last checkpoint stored, and raises
    TrainingCancelled; otherwise the job moves on to the evaluating phase."""
    if not job.fields[Split.train]:
        raise ValueError("the snapshot has no training fields; make one with a train fraction")
    field_ids, lq, hq = _plane_pairs(job.fields[Split.train])
    _, val_lq, val_hq = _plane_pairs(job.fields[Split.validation])
    model = start_model(job, lq[0].shape[0])
    try:
        result = model.train(
            lq,
            hq,
            field_ids,
            val_lq=val_lq or None,
            val_hq=val_hq or None,
            progress=reporter.progress,
            stop=reporter.stop,
            checkpoint_dir=job.scratch,
            resume=True,
        )
    except TrainingCancelled as stopped:
        reporter.final_checkpoint()
        reporter.flush(
            state=JobState.cancelled,
            finished_at=utcnow(),
            reason=f"cancelled at step {stopped.step}; its checkpoint is kept",
        )
        raise
    reporter.final_checkpoint()
    reporter.flush(progress={**reporter.latest, "phase": "evaluating"})
    return Trained(model, result)


def evaluate_and_draw(store: ObjectStore, job: LoadedJob, trained: Trained) -> Evaluation:
    """Score the new model, the baselines and the production version on the test fields (the
    validation fields when the snapshot has none) and draw the report picture."""
    from models.evaluation import evaluate, model_predictor, rl_predictor
    from models.figures import comparison_panel, report_png
    from models.trust import fit_trust_reference
    from models.trust_evaluation import trust_section
    from models.uncertainty_evaluation import calibrate, measure

    test = job.fields[Split.test]
    fields = test or job.fields[Split.validation]
    _, train_lq, train_hq = _plane_pairs(job.fields[Split.train])
    _, val_lq, val_hq = _plane_pairs(job.fields[Split.validation])
    trust = fit_trust_reference(train_lq, train_hq, val_lq, job.grid_pixel_um)
    predict_self = model_predictor(trained.model)
    outputs: dict[int, np.ndarray] = {}  # the evaluation's own outputs, by the LQ array's id

    def recording(lq: np.ndarray) -> np.ndarray:
        outputs[id(lq)] = predict_self(lq)
        return outputs[id(lq)]

    predictors = {SELF_METHOD: recording}
    if job.production is not None:
        number, key, sha = job.production
        path = download_verified(store, key, sha, job.scratch / "production.zip")
        predictors[f"production (version {number})"] = model_predictor(EnhancementModel.load(path))
    report = evaluate(fields, predictors, optics=job.optics)
    report.info.update(
        split="test" if test else "validation (the snapshot has no test fields)",
        dataset_digest=job.dataset_digest,
    )
    chosen = report.representative_field(SELF_METHOD)
    field_id, lq, hq = next(f for f in fields if f[0] == chosen)
    shown = {
        "Richardson–Lucy": rl_predictor(job.optics)(lq),
        SELF_METHOD: outputs[id(lq)],
    }
    panel = comparison_panel(lq, hq, shown, emission_nm=list(job.optics.wavelengths_nm))
    by_field = {f[0]: outputs[id(f[1])] for f in fields}
    calibration = calibrate(trained.model, val_lq, val_hq, train_lq, train_hq)
    measured = measure(calibration, fields, by_field, report.info["split"])
    report.info["trust"], trust_png = trust_section(
        trust,
        fields,
        by_field,
        predict_self,
        train_lq,
        train_hq,
        job.grid_pixel_um,
        panel_field=field_id,
        emission_nm=list(job.optics.wavelengths_nm),
        calibration=calibration,
        coverage=measured["coverage"],
    )
    report.info["trust"]["uncertainty"] = measured
    title = f"{job.pairing_name}: job {job.job_id}, field {field_id}"
    sample = lq if lq.ndim == 3 else lq[lq.shape[0] // 2]  # a Z stack's middle plane
    picture = report_png(report, panel, title=title, extra_panels=[trust_png])
    return Evaluation(report, picture, sample, trust, calibration)


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


def publish_version(
    factory: sessionmaker[Session],
    store: ObjectStore,
    job: LoadedJob,
    trained: Trained,
    evaluation: Evaluation,
    reporter: JobReporter,
) -> int:
    """Store model.zip, report.json and report.png, record the job's one version, and end the
    job succeeded. Returns the version's number (the existing one if the job already has it).

    The artifacts go under a key named by the weights' digest, so a redelivered publish never
    overwrites the objects a recorded version points at."""
    number = _existing_version(factory, job.job_id)
    if number is None:
        number = _store_and_record(factory, store, job, trained, evaluation)
    reporter.flush(
        state=JobState.succeeded,
        finished_at=utcnow(),
        progress={**reporter.latest, "percent": 100.0, "phase": "done"},
        reason=(
            "the time budget ended training" if trained.result.stopped_by == "budget" else None
        ),
    )
    return number


def _existing_version(factory: sessionmaker[Session], job_id: int) -> int | None:
    with session_scope(factory) as session:
        return session.scalar(select(ModelVersion.number).where(ModelVersion.job_id == job_id))


def _store_and_record(
    factory: sessionmaker[Session],
    store: ObjectStore,
    job: LoadedJob,
    trained: Trained,
    evaluation: Evaluation,
) -> int:
    """Upload the artifacts and record the version that points at them."""
    model_path = job.scratch / "model.zip"
    trained.model.metadata["imaging"] = job.imaging.to_dict()  # outputs made anywhere are labelled
    if evaluation.trust is not None:  # … and checked
        trained.model.metadata[TRUST_KEY] = evaluation.trust.to_dict()
    if evaluation.calibration is not None:  # … with calibrated intervals
        trained.model.metadata[UNCERTAINTY_KEY] = evaluation.calibration.to_dict()
    trained.model.save(model_path)
    weights_sha256 = trained.model.weights_digest()
    prefix = f"{job.object_prefix}/{weights_sha256[:16]}"
    model_obj = store.put_file(f"{prefix}/model.zip", model_path, sha256_file(model_path))
    report, result = evaluation.report.to_dict(), trained.result.to_dict()
    report_doc = {"report": report, "self_method": SELF_METHOD, "training": result}
    report_obj = put_bytes(
        store, f"{prefix}/report.json", json.dumps(report_doc, default=float).encode()
    )
    png_obj = put_bytes(store, f"{prefix}/report.png", evaluation.picture)
    package = _bioimageio_package(job, trained, evaluation)
    package_obj = (
        store.put_file(f"{prefix}/bioimageio.zip", package, sha256_file(package))
        if isinstance(package, Path)
        else None
    )
    metrics = {
        "medians": report["medians"],
        "self_method": SELF_METHOD,
        "methods": evaluation.report.methods,
        "fields": evaluation.report.field_ids,
        "split": evaluation.report.info["split"],
    }
    if "trust" in evaluation.report.info:  # the gate's hook reads it (model_versions.py)
        trust_info = evaluation.report.info["trust"]
        measured = trust_info.get("uncertainty") or {}
        metrics["trust"] = {
            **trust_info["reference"],
            "null_inputs_within_bounds": trust_info["null_inputs"]["within_bounds"],
            "uncertainty_coverage": measured.get("coverage"),
            "uncertainty_spearman": measured.get("spearman_median"),
        }
    return _record_version(
        factory,
        job.job_id,
        dict(
            dataset_digest=job.dataset_digest,
            config=job.config.to_dict(),
            seed=job.config.seed,
            software=software(),
            training={k: v for k, v in result.items() if k != "history"},
            device=job.device,
            weights_sha256=weights_sha256,
            model_key=model_obj.key,
            model_sha256=model_obj.sha256,
            report_key=report_obj.key,
            report_sha256=report_obj.sha256,
            report_png_key=png_obj.key,
            report_png_sha256=png_obj.sha256,
            metrics=metrics,
            bioimageio_key=package_obj.key if package_obj else None,
            bioimageio_sha256=package_obj.sha256 if package_obj else None,
            bioimageio_error=None if package_obj else str(package)[:2000],
            lq_pixel_size_um=job.lq_pixel_um,
            hq_pixel_size_um=job.grid_pixel_um,
        ),
    )


def _bioimageio_package(job: LoadedJob, trained: Trained, evaluation: Evaluation) -> Path | str:
    """The version as a bioimage.io package in the scratch folder, or why it could not be
    built: a model that trained and scored well is published all the same, without one."""
    from models.bioimageio_export import export_bioimageio

    try:
        return export_bioimageio(
            trained.model,
            job.scratch / "bioimageio.zip",
            evaluation.sample,
            channel_names=[c.name for c in job.imaging.channels] or None,
            pixel_size_um=job.grid_pixel_um,
            dataset_digest=job.dataset_digest,
            title=f"{job.pairing_name} (job {job.job_id})",
        ).path
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the version instead
        return f"{type(exc).__name__}: {exc}"


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
