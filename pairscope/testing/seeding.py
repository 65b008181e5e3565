"""Rows written straight to the registry's database for tests and benchmarks that need a
version without training one."""

from __future__ import annotations

from api.db import make_engine, make_session_factory, session_scope
from api.settings import Settings
from api.tables import Dataset, JobState, ModelVersion, TrainingJob


def seed_version(settings: Settings, pairing: int) -> None:
    """A dataset, a finished job and version 1 of the pairing, as a worker would have recorded
    them, so that enhancement submissions are accepted without training. Its object keys name
    nothing in the store."""
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        dataset = Dataset(
            pairing_id=pairing,
            digest="d" * 64,
            seed=0,
            fractions={"train": 1.0, "validation": 0.0, "test": 0.0},
        )
        session.add(dataset)
        session.flush()
        job = TrainingJob(
            pairing_id=pairing,
            dataset_id=dataset.id,
            preset="tiny",
            overrides={},
            config={},
            seed=0,
            state=JobState.succeeded,
        )
        session.add(job)
        session.flush()
        session.add(
            ModelVersion(
                pairing_id=pairing,
                number=1,
                job_id=job.id,
                dataset_id=dataset.id,
                dataset_digest=dataset.digest,
                config={},
                seed=0,
                software={},
                training={},
                weights_sha256="w" * 64,
                model_key="m",
                model_sha256="m" * 64,
                report_key="r",
                report_sha256="r" * 64,
                report_png_key="p",
                report_png_sha256="p" * 64,
                metrics={
                    "medians": {
                        "generated": {"psnr": 30, "ssim": 0.8},
                        "richardson_lucy": {"psnr": 20, "ssim": 0.5},
                    },
                    "self_method": "generated",
                },
            )
        )
    engine.dispose()
