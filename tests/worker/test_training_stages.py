"""The training pipeline's stages called one by one, and its run end to end, on SQLite and a
LocalStore with no Celery worker: the API records uploads, snapshot and job as a user's
requests would; alignment and training run here, in the test's process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_session_factory, session_scope
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import DatasetMember, JobState, ModelVersion, Split, TrainingJob
from models.training import CHECKPOINT_FILE
from pairscope.testing import flow
from tests.worker.conftest import align_every_pair, in_process_service
from worker import training_pipeline
from worker.claims import Claim
from worker.objects import CorruptObject, download_verified
from worker.progress import JobReporter, checkpoint_key
from worker.training_stages import (
    SELF_METHOD,
    evaluate_and_draw,
    load_job,
    publish_version,
    train,
)

FIELDS = 5
STEPS = 12


@dataclass
class Setup:
    settings: Settings
    factory: sessionmaker[Session]
    store: ObjectStore
    net: flow.Network
    dataset_id: int

    def new_job(self) -> int:
        """A queued job for the tiny preset, its task sent to a broker no worker reads."""
        response = self.net.client.post(
            self.net.url("/training-jobs"),
            headers=self.net.lab,
            json={
                "dataset_id": self.dataset_id,
                "preset": "tiny",
                "overrides": {"steps": STEPS, "val_every": 6, "checkpoint_every": 6},
                "seed": 3,
            },
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        claimed = training_pipeline.claim(self.factory, job_id, self.settings)
        assert claimed == Claim.run
        return job_id

    def job_row(self, job_id: int) -> TrainingJob:
        with session_scope(self.factory) as session:
            job = session.get_one(TrainingJob, job_id)
            session.expunge(job)
            return job


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A pairing with a snapshot of aligned synthetic pairs (aligned by calling the alignment
    stage directly, as the align_pair task would)."""
    with in_process_service(tmp_path_factory.mktemp("stages")) as service:
        net = flow.build_network(service.client, service.admin_key, "stages")
        flow.upload_synthetic(net, FIELDS)
        align_every_pair(service)
        dataset = flow.accepted_snapshot(net, FIELDS)
        yield Setup(service.settings, service.factory, service.store, net, dataset["id"])


def test_the_stages_one_by_one_make_exactly_one_version(setup: Setup, tmp_path: Path) -> None:
    job_id = setup.new_job()
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    job = load_job(setup.factory, setup.store, setup.settings, job_id, "CPU (test)", scratch)
    assert job.fields[Split.train] and job.fields[Split.test]
    assert job.config.steps == STEPS and job.production is None
    assert setup.job_row(job_id).device == "CPU (test)"

    interval = setup.settings.job_progress_interval_s
    reporter = JobReporter(setup.factory, setup.store, job_id, interval, scratch, job.object_prefix)
    trained = train(job, reporter)
    assert trained.result.steps == STEPS
    row = setup.job_row(job_id)
    assert row.state == JobState.running and row.progress["phase"] == "evaluating"
    assert row.checkpoint_key == checkpoint_key(job.object_prefix, STEPS)
    assert row.checkpoint_step == STEPS
    # Each checkpoint had its own object; the earlier ones went once the newer was recorded.
    assert not setup.store.exists(checkpoint_key(job.object_prefix, STEPS // 2))

    evaluation = evaluate_and_draw(setup.store, job, trained)
    assert SELF_METHOD in evaluation.report.methods
    assert evaluation.report.info["split"] == "test"
    assert evaluation.picture[:4] == b"\x89PNG"

    number = publish_version(setup.factory, setup.store, job, trained, evaluation, reporter)
    again = publish_version(setup.factory, setup.store, job, trained, evaluation, reporter)
    assert again == number  # a redelivered job's publish adds no second version
    row = setup.job_row(job_id)
    assert row.state == JobState.succeeded and row.progress["phase"] == "done"
    with session_scope(setup.factory) as session:
        versions = session.scalars(select(ModelVersion).where(ModelVersion.job_id == job_id)).all()
        assert [v.number for v in versions] == [number]
        version = versions[0]
        assert version.device == "CPU (test)" and version.weights_sha256
        assert version.metrics["self_method"] == SELF_METHOD
        for key, sha in (
            (version.model_key, version.model_sha256),
            (version.report_key, version.report_sha256),
            (version.report_png_key, version.report_png_sha256),
            (version.bioimageio_key, version.bioimageio_sha256),  # built at publish time
        ):
            download_verified(setup.store, key, sha, tmp_path / Path(key).name)


def test_a_cancelled_run_keeps_its_checkpoint_and_removes_its_scratch(setup: Setup) -> None:
    job_id = setup.new_job()
    with session_scope(setup.factory) as session:
        session.get_one(TrainingJob, job_id).cancel_requested = True
    result = training_pipeline.run(setup.factory, setup.store, setup.settings, job_id)
    assert result["state"] == "cancelled"
    row = setup.job_row(job_id)
    assert row.state == JobState.cancelled and "checkpoint is kept" in row.reason
    assert row.checkpoint_key and row.checkpoint_step == result["step"]
    assert not training_pipeline.scratch_folder(setup.settings, job_id).exists()


def test_a_failed_run_removes_its_scratch_too(setup: Setup) -> None:
    """A stored checkpoint whose bytes no longer match its hash fails the job at load time,
    after the scratch folder was made; the folder goes all the same."""
    job_id = setup.new_job()
    with session_scope(setup.factory) as session:
        some_object = session.scalars(select(DatasetMember.lq_aligned_key)).first()
        job = session.get_one(TrainingJob, job_id)
        job.checkpoint_key, job.checkpoint_sha256 = some_object, "0" * 64
    with pytest.raises(CorruptObject):
        training_pipeline.run(setup.factory, setup.store, setup.settings, job_id)
    assert not training_pipeline.scratch_folder(setup.settings, job_id).exists()


def test_a_checkpoint_stored_but_never_recorded_leaves_the_recorded_one_intact(
    setup: Setup, tmp_path: Path
) -> None:
    """The process dies between storing a new checkpoint and recording its hash (here: the
    database is unreachable at that moment). The row still names a checkpoint whose bytes match
    its hash, so the job resumes instead of failing with CorruptObject."""
    job_id = setup.new_job()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = load_job(setup.factory, setup.store, setup.settings, job_id, "CPU (test)", scratch)
    reporter = JobReporter(setup.factory, setup.store, job_id, 0.01, scratch, job.object_prefix)
    train(job, reporter)
    recorded = setup.job_row(job_id)
    (scratch / CHECKPOINT_FILE).write_bytes(b"a newer checkpoint, written at step 18")
    unreachable = make_engine(
        Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", data_dir=tmp_path)
    )
    reporter.factory = make_session_factory(unreachable)
    with pytest.raises(OperationalError):
        reporter.progress({"step": 18})
    unreachable.dispose()
    row = setup.job_row(job_id)
    assert (row.checkpoint_key, row.checkpoint_step) == (recorded.checkpoint_key, STEPS)
    download_verified(setup.store, row.checkpoint_key, row.checkpoint_sha256, tmp_path / "ck")
    (tmp_path / "resume").mkdir()
    resumed = load_job(
        setup.factory, setup.store, setup.settings, job_id, "CPU", tmp_path / "resume"
    )
    assert resumed.job_id == job_id and setup.job_row(job_id).resumed_from_step == STEPS
