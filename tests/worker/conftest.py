"""What the worker tests start from: `pairscope serve` on the embedded defaults, as a user
starts it (one per test module), or the API in the test's own process on SQLite and a
LocalStore, with the pipeline's stages called directly instead of by a Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_session_factory, session_scope
from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.storage import ObjectStore, make_store
from api.tables import Pair, Role
from pairscope.testing import flow
from pairscope.testing.flow import make_key
from pairscope.testing.processes import create_key_with_cli, free_port, http_server, running_worker
from worker import alignment, training_pipeline
from worker.claims import Claim

PAIRSCOPE = [sys.executable, "-m", "pairscope"]


@dataclass
class EmbeddedService:
    url: str
    admin_key: str
    home: Path
    env: dict[str, str]
    log: Path

    def cli(
        self, *args: str, key: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "PAIRSCOPE_URL": self.url, "PAIRSCOPE_API_KEY": key or self.admin_key}
        return subprocess.run(
            [*PAIRSCOPE, *args],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    home = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    # the embedded defaults, except whether new pairings start from the shipped base: the
    # run's choice (tests/conftest.py: off unless PAIRSCOPE_SHIPPED_BASE says otherwise)
    env["PAIRSCOPE_SHIPPED_BASE"] = os.environ.get("PAIRSCOPE_SHIPPED_BASE", "true")
    key = create_key_with_cli(env, "Operations", cwd=home)
    assert "shown once" in key.stderr
    port = free_port()
    log_path = home / "serve.log"
    with http_server(
        [*PAIRSCOPE, "serve", "--port", str(port)],
        port,
        "/healthz",
        env=env,
        log_path=log_path,
        cwd=home,
        new_session=True,
    ) as (url, _):
        yield EmbeddedService(url, key.stdout.strip(), home, env, log_path)


@dataclass
class InProcessService:
    settings: Settings
    factory: sessionmaker[Session]
    store: ObjectStore
    client: TestClient
    admin_key: str


@contextmanager
def in_process_service(home: Path, **extra: Any) -> Iterator[InProcessService]:
    """A migrated SQLite database and LocalStore under `home`, an admin key, and the API called
    through a TestClient: tasks are sent to a broker no worker reads, so a test runs each stage
    itself. `extra`: further settings."""
    settings = Settings(data_dir=home / "var", job_progress_interval_s=0.01, **extra)
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    engine = make_engine(settings)
    factory, store = make_session_factory(engine), make_store(settings)
    with TestClient(create_app(settings)) as client:
        yield InProcessService(settings, factory, store, client, admin_key)
    engine.dispose()


def align_every_pair(service: InProcessService) -> None:
    """Every uploaded pair aligned by calling the alignment stage directly, as the align_pair
    task would; each must be accepted."""
    with session_scope(service.factory) as session:
        pair_ids = session.scalars(select(Pair.id)).all()
    for pair_id in pair_ids:
        done = alignment.run(
            service.factory, service.store, pair_id, service.settings.align_ncc_threshold
        )
        assert done["status"] == "accepted", done


def train_and_publish(
    service: InProcessService, net: flow.Network, dataset_id: int, steps: int
) -> tuple[int, int]:
    """A tiny-preset training job requested as the lab would, claimed and run to a published
    version by the training pipeline in this process: (job id, version number)."""
    response = service.client.post(
        net.url("/training-jobs"),
        headers=net.lab,
        json={"dataset_id": dataset_id, "preset": "tiny", "overrides": {"steps": steps}},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    claimed = training_pipeline.claim(service.factory, job_id, service.settings)
    assert claimed == Claim.run
    result = training_pipeline.run(service.factory, service.store, service.settings, job_id)
    assert result["state"] == "succeeded", result
    return job_id, result["version"]


@contextmanager
def a_job_whose_worker_was_killed(
    settings: Settings, tmp_path: Path, name: str, steps: int, checkpointed_step: int
) -> Iterator[tuple[flow.Network, dict]]:
    """A training job of `steps` whose `train` worker was SIGKILLed (with its pool) once the job
    had checkpointed at `checkpointed_step`: yields the network and the job while the API and a
    worker on the other queues still run, for the test to start a replacement."""
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    with (
        running_worker(settings, "infer,default", tmp_path / "cpu.log", "cpu"),
        TestClient(create_app(settings)) as client,
    ):
        net = flow.build_network(client, admin_key, name)
        flow.upload_synthetic(net, 4)
        dataset = flow.accepted_snapshot(net, 4)
        with running_worker(settings, "train", tmp_path / "doomed.log", "doomed") as doomed:
            job = flow.train(net, dataset["id"], {"steps": steps, "checkpoint_every": 40})
            flow.wait(
                net,
                f"/training-jobs/{job['id']}",
                lambda j: (j["checkpoint_step"] or 0) >= checkpointed_step,
                timeout=180,
            )
            os.killpg(doomed.pid, signal.SIGKILL)
        yield net, job
