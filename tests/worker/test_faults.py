"""Never a 5xx, nothing lost: faults met with real processes (PostgreSQL, Redis, `pairscope
worker` and `pairscope serve` subprocesses). The database is the source of truth for accepted
work; a worker re-sends what waits, retries through outages, and a stopped service leaves no
process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db import make_engine, make_session_factory, session_scope
from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.storage import make_store
from api.tables import Pair, PretrainingJob, Role
from pairscope.server_processes import stop_process_group
from pairscope.testing import flow
from pairscope.testing.flow import make_key
from pairscope.testing.processes import (
    free_port,
    http_server,
    running_worker,
    settings_env,
)
from pairscope.testing.proxy import cuttable_proxy
from tests.worker.conftest import a_job_whose_worker_was_killed
from worker import alignment

PAIRSCOPE = [sys.executable, "-m", "pairscope"]
DEAD_BROKER = "redis://127.0.0.1:9/0"


def _settings(tmp_path: Path, database_url: str, broker: str, **extra) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        broker_url=broker,
        result_backend=broker,
        **extra,
    )


def _readiness(client, net: flow.Network) -> dict:  # type: ignore[no-untyped-def]
    response = client.post(f"/api/v1/pairings/{net.pairing}/readiness", headers=net.admin)
    assert response.status_code == 202, response.text
    return response.json()


def _wait_report(client, net: flow.Network, report_id: int, timeout: float = 90) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    path = f"/api/v1/pairings/{net.pairing}/readiness/{report_id}"
    while time.monotonic() < deadline:
        body = client.get(path, headers=net.admin).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"report {report_id} still {body['state']} after {timeout} s")


def test_work_accepted_while_the_broker_was_down_is_sent_when_it_is_back(
    tmp_path: Path, postgres_schema_url, redis_db_url: str
) -> None:
    """POST answers 202 with the row queued (not 503); the worker that starts later sends it."""
    database = postgres_schema_url()
    down = _settings(tmp_path, database, DEAD_BROKER)
    upgrade(down)
    _, admin_key = make_key(down, "Operations", Role.admin)
    with TestClient(create_app(down)) as client:
        net = flow.build_network(client, admin_key, "broker-down")
        report = _readiness(client, net)
        assert report["state"] == "queued"
        up = _settings(tmp_path, database, redis_db_url)
        with running_worker(up, "default", tmp_path / "worker.log"):
            done = _wait_report(client, net, report["id"])
    assert done["state"] == "succeeded", done


def test_a_message_lost_with_redis_is_sent_again_by_any_worker(
    tmp_path: Path, postgres_schema_url, redis_db_url: str
) -> None:
    """Redis restarted without persistence: the queue is empty, the row still queued. A worker
    without beat re-sends it once the grace period has passed."""
    settings = _settings(tmp_path, postgres_schema_url(), redis_db_url, dispatch_grace_s=1)
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    with TestClient(create_app(settings)) as client:
        net = flow.build_network(client, admin_key, "lost")
        report = _readiness(client, net)
        redis.Redis.from_url(redis_db_url).flushdb()
        time.sleep(1.5)
        with running_worker(settings, "default", tmp_path / "worker.log"):
            done = _wait_report(client, net, report["id"])
    assert done["state"] == "succeeded", done


def test_a_lost_pretraining_message_is_sent_again_and_the_job_runs_once(
    tmp_path: Path, postgres_schema_url, redis_db_url: str
) -> None:
    """Pretraining jobs are waiting work like any other: the row is queued, its message lost
    with Redis; a worker on the train queue (without beat) re-sends it and makes one base."""
    settings = _settings(tmp_path, postgres_schema_url(), redis_db_url, dispatch_grace_s=1)
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    admin = {"Authorization": f"Bearer {admin_key}"}
    with TestClient(create_app(settings)) as client:
        job_id = flow.start_pretraining(client, admin)
        redis.Redis.from_url(redis_db_url).flushdb()
        time.sleep(1.5)
        with running_worker(settings, "train", tmp_path / "worker.log"):
            job = flow.wait_pretraining(client, admin, job_id, timeout=120)
        bases = client.get("/api/v1/base-models", headers=admin).json()
    assert job["state"] == "succeeded", job
    assert job["base"] == 1 and bases["total"] == 1
    factory = make_session_factory(make_engine(settings))
    with session_scope(factory) as session:
        assert session.get_one(PretrainingJob, job_id).attempts == 1


def test_a_task_that_meets_a_stopped_database_is_retried_not_lost(
    tmp_path: Path, postgres_schema_url, redis_db_url: str
) -> None:
    """The worker's database connection goes away for ten seconds while a task is delivered: the
    task is retried with backoff and succeeds once the database is back. (A long grace period
    keeps the reconciler out of it: this is the retry alone.)"""
    database = postgres_schema_url()
    api_settings = _settings(tmp_path, database, redis_db_url, dispatch_grace_s=3600)
    upgrade(api_settings)
    _, admin_key = make_key(api_settings, "Operations", Role.admin)
    with (
        cuttable_proxy("127.0.0.1", 5432) as proxy,
        TestClient(create_app(api_settings)) as client,
    ):
        via_proxy = database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        worker_settings = api_settings.model_copy(update={"database_url": via_proxy})
        log = tmp_path / "worker.log"
        net = flow.build_network(client, admin_key, "db-outage")
        with running_worker(worker_settings, "default", log):
            first = _wait_report(client, net, _readiness(client, net)["id"])
            assert first["state"] == "succeeded"
            proxy.cut()
            report = _readiness(client, net)
            time.sleep(10)
            assert "OperationalError" in log.read_text(errors="replace")
            proxy.restore()
            done = _wait_report(client, net, report["id"])
    assert done["state"] == "succeeded", done


def test_serve_and_worker_against_an_unreachable_database_say_so_in_one_line(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    env["PAIRSCOPE_DATABASE_URL"] = "postgresql+psycopg://alice:s3cret@127.0.0.1:9/registry"
    env["PAIRSCOPE_DATA_DIR"] = str(tmp_path)
    for command in (["serve", "--port", str(free_port())], ["worker", "--queues", "default"]):
        done = subprocess.run(
            [*PAIRSCOPE, *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "cannot reach the database" in lines[0] and "127.0.0.1:9/registry" in lines[0]
        assert "s3cret" not in done.stderr and "***" in lines[0]


@pytest.fixture
def served(tmp_path: Path, postgres_schema_url):  # type: ignore[no-untyped-def]
    """`pairscope serve --no-worker` on PostgreSQL: a real server taking concurrent requests."""
    settings = _settings(tmp_path, postgres_schema_url(), DEAD_BROKER)
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    port = free_port()
    with http_server(
        [*PAIRSCOPE, "serve", "--no-worker", "--port", str(port)],
        port,
        "/healthz",
        env=settings_env(settings),
        log_path=tmp_path / "serve.log",
        cwd=tmp_path,
        new_session=True,
    ) as (url, _):
        yield settings, admin_key, url


def test_concurrent_identical_requests_answer_with_one_record(served) -> None:  # type: ignore[no-untyped-def]
    settings, admin_key, url = served
    with httpx.Client(base_url=url, timeout=120) as client:
        net = flow.build_network(client, admin_key, "races")
        lq, hq, _ = flow.make_pair((128, 128), seed=1, shift=(2.0, -3.0))
        content = flow.tiff(lq)

        def upload(_: int) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=120) as own:
                return own.post(
                    net.url("/images"),
                    headers=net.lab,
                    params={"side": "lq", "field_id": "race"},
                    files={"file": ("race.tif", content, "image/tiff")},
                )

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(upload, range(20)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] * 19 + [201], [r.text for r in answers if r.status_code >= 300]
        assert len({r.json()["id"] for r in answers}) == 1

        # Accepted pairs to snapshot: the other half of two fields, aligned here (no worker).
        flow.upload_synthetic(net, 3)
        factory, store = make_session_factory(make_engine(settings)), make_store(settings)
        with session_scope(factory) as session:
            pair_ids = session.scalars(select(Pair.id)).all()
        for pair_id in pair_ids:
            alignment.run(factory, store, pair_id, settings.align_ncc_threshold)
        body = {"fractions": {"train": 0.6, "validation": 0.2, "test": 0.2}, "seed": 3}

        def snapshot(_: int) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=120) as own:
                return own.post(net.url("/datasets"), headers=net.lab, json=body)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(snapshot, range(20)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] * 19 + [201], [r.text for r in answers if r.status_code >= 300]
        assert len({r.json()["id"] for r in answers}) == 1
        listed = client.get(net.url("/datasets"), headers=net.lab).json()
        assert listed["total"] == 1


def test_a_replacement_worker_without_beat_resumes_a_killed_workers_job(
    tmp_path: Path, redis_db_url: str
) -> None:
    """No worker runs beat and the visibility timeout is the default (an hour): the replacement
    worker's reconciler finds the stale heartbeat, requeues the job and sends it."""
    settings = Settings(
        data_dir=tmp_path / "var",
        broker_url=redis_db_url,
        result_backend=redis_db_url,
        job_stale_after_s=4,
        job_progress_interval_s=0.3,
    )
    with a_job_whose_worker_was_killed(
        settings, tmp_path, "no-beat", steps=600, checkpointed_step=40
    ) as (net, job):
        with running_worker(settings, "train", tmp_path / "rescue.log", "rescue"):
            done = flow.wait_job(net, job["id"], timeout=300)
    assert done["state"] == "succeeded", done["reason"]
    assert done["resumed_from_step"] is not None and done["resumed_from_step"] >= 40


def test_stopping_the_served_worker_leaves_none_of_its_processes(tmp_path: Path) -> None:
    """What `serve` does to its worker on the way out: a worker stuck past the grace period
    (here one that ignores SIGQUIT and SIGTERM, like a shutdown that hangs) is killed with
    its whole group: no pool process or embedded beat is left behind."""
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGQUIT, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "print('up', flush=True)\n"
        "time.sleep(300)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True
    )
    assert worker.stdout is not None and worker.stdout.readline().strip() == b"up"
    stop_process_group(worker, grace_s=2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(worker.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("a process of the worker's group outlived it")


def _living_processes_of_group(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are not zombies (an orphan's reaping is up to init)."""
    living = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            living.append(int(stat.parent.name))
    return living


@pytest.mark.parametrize("when", ["starting", "ready"])
def test_a_served_worker_stops_when_serve_is_killed_outright(tmp_path: Path, when: str) -> None:
    """A `serve` killed with SIGKILL (or by a closed terminal's SIGHUP) cannot stop its worker,
    which runs in a session of its own: the worker sees its parent gone and shuts down, pool
    and embedded beat too, whether Celery was still starting or already taking tasks."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    env["PAIRSCOPE_DATA_DIR"] = str(tmp_path / "var")
    log = tmp_path / "serve.log"
    command = [*PAIRSCOPE, "serve", "--port", str(port)]
    with http_server(command, port, "/healthz", env=env, log_path=log, cwd=tmp_path) as (_, serve):
        started = re.search(r"worker\s+: started, pid (\d+)", log.read_text())
        assert started, log.read_text()
        worker = int(started.group(1))
        deadline = time.monotonic() + 120
        while when == "ready" and not re.search(r"@\S+ ready\.", log.read_text(errors="replace")):
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        serve.kill()
        serve.wait()
        deadline = time.monotonic() + 45
        while living := _living_processes_of_group(worker):
            if time.monotonic() > deadline:
                os.killpg(worker, signal.SIGKILL)
                raise AssertionError(f"the worker's processes {living} outlived serve")
            time.sleep(0.2)
    assert "Cold shutdown" in log.read_text(errors="replace")
