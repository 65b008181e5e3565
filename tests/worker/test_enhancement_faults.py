"""Never a 5xx, nothing lost, for enhancements: a worker SIGKILLed mid-job and `pairscope serve`
interrupted mid-job. Real processes on the embedded defaults (SQLite, LocalStore, the filesystem
broker, whose message a dead worker takes with it): the database's stale heartbeat is all that
brings the job back, and it must finish exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.db import session_scope
from api.settings import Settings
from api.tables import EnhancementItem, EnhancementJob, JobState, utcnow
from models.synthetic import make_pair
from pairscope.testing import flow
from pairscope.testing.processes import free_port, running_worker, settings_env, wait_for_http
from tests.worker.conftest import (
    InProcessService,
    align_every_pair,
    in_process_service,
    train_and_publish,
)
from worker import enhancing, reaper
from worker.claims import Claim

PAIRSCOPE = [sys.executable, "-m", "pairscope"]
IMAGES = 4
SHAPE = (384, 384)


@dataclass
class Published:
    service: InProcessService
    net: flow.Network
    number: int

    def worker_settings(self) -> Settings:
        """The service's own settings, with a short stale limit so that recovery is quick, and
        two attempts: the recovery is the last one allowed, and it must still finish."""
        return self.service.settings.model_copy(
            update={"job_stale_after_s": 3.0, "job_progress_interval_s": 0.3, "job_max_attempts": 2}
        )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """A pairing with one version, trained here on the embedded defaults of a fresh home."""
    home = tmp_path_factory.mktemp("enhancement-faults")
    with in_process_service(home) as service:
        net = flow.build_network(service.client, service.admin_key, "faults")
        flow.upload_synthetic(net, 4)
        align_every_pair(service)
        dataset = flow.accepted_snapshot(net, 4)
        _, number = train_and_publish(service, net, dataset["id"], steps=8)
        yield Published(service, net, number)


class NoServerErrors:
    """Every answer the test saw, checked for a 5xx as it comes."""

    def __init__(self, get: Callable[[str], httpx.Response]) -> None:
        self.get, self.answers = get, 0

    def job(self, job_id: int) -> dict:
        response = self.get(f"/enhancements/{job_id}")
        self.answers += 1
        assert response.status_code < 500, response.text
        return response.json()

    def wait(self, job_id: int, done: Callable[[dict], bool], timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.job(job_id)
            if done(body):
                return body
            time.sleep(0.2)
        raise AssertionError(f"enhancement {job_id} not there after {timeout} s: {body}")


def _request(post: Callable[..., httpx.Response], number: int, seed: int) -> int:
    files = []
    for i in range(IMAGES):
        lq, _, _ = make_pair(SHAPE, seed=seed + i, shift=(0.0, 0.0))
        files.append(("files", (f"field-{seed}-{i}.tif", flow.tiff(lq), "image/tiff")))
    response = post("/enhancements", files=files, data={"version": str(number)})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _mid_job(body: dict) -> bool:
    """Running, with some images done and some not: the kill lands in the middle."""
    done = sum(item["state"] == "succeeded" for item in body["items"])
    return body["state"] == "running" and 0 < done < IMAGES


def _assert_finished_once(published: Published, job_id: int, body: dict) -> None:
    """Done, one output (with its preview and trust maps) per item, every key an object."""
    assert body["state"] == "succeeded", body
    assert [item["state"] for item in body["items"]] == ["succeeded"] * IMAGES
    store = published.service.store
    with session_scope(published.service.factory) as session:
        items = session.scalars(
            select(EnhancementItem).where(EnhancementItem.job_id == job_id)
        ).all()
        assert len(items) == IMAGES
        keys = [
            key
            for item in items
            for key in (item.output_key, item.preview_key, item.trust_key)
            if key is not None
        ]
        assert all(item.output_key for item in items)
    assert all(store.exists(key) for key in keys), keys
    folder = published.service.settings.resolved_objects_dir
    prefix = Path(keys[0]).parent
    stored = sorted(p.name for p in (folder / prefix).iterdir())
    assert sorted(Path(key).name for key in keys) == stored


def _finished_items(published: Published, job_id: int) -> dict[int, object]:
    """When each finished item of the job finished, by id."""
    with session_scope(published.service.factory) as session:
        items = session.scalars(
            select(EnhancementItem).where(
                EnhancementItem.job_id == job_id, EnhancementItem.finished_at.is_not(None)
            )
        ).all()
        return {item.id: item.finished_at for item in items}


def _lab_get(published: Published) -> Callable[[str], httpx.Response]:
    net = published.net
    return lambda path: net.client.get(net.url(path), headers=net.lab)


def test_a_worker_killed_mid_enhancement_is_replaced_and_the_job_finishes_once(
    published: Published, tmp_path: Path
) -> None:
    """SIGKILL to the worker's whole group while the job runs; a replacement without beat finds
    the stale heartbeat, queues the job again and finishes only the images left."""
    settings, net = published.worker_settings(), published.net
    api = NoServerErrors(_lab_get(published))
    with running_worker(settings, "infer", tmp_path / "doomed.log", "doomed") as doomed:
        job_id = _request(
            lambda path, **kw: net.client.post(net.url(path), headers=net.lab, **kw),
            published.number,
            seed=100,
        )
        api.wait(job_id, _mid_job)
        os.killpg(doomed.pid, signal.SIGKILL)
    finished_before = _finished_items(published, job_id)
    assert finished_before
    with running_worker(settings, "infer", tmp_path / "rescue.log", "rescue"):
        done = api.wait(job_id, flow.finished)
    _assert_finished_once(published, job_id, done)
    assert done["attempts"] == 2, done
    # The images done before the kill were not redone.
    after = _finished_items(published, job_id)
    assert {k: after[k] for k in finished_before} == finished_before


def _group_members(pgid: int) -> list[int]:
    """The live processes of a process group, found in /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except ProcessLookupError:
                continue
    return members


def _group_is_gone(pgid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _serve(settings: Settings, home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*PAIRSCOPE, "serve", "--port", str(port)],
        env=settings_env(settings),
        cwd=home,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        # A test run started in the background inherits an ignored SIGINT; a terminal's is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _worker_pid(log: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(r"worker\s+: started, pid (\d+)", log.read_text(errors="replace"))
        if found:
            return int(found[-1])
        time.sleep(0.2)
    raise AssertionError(f"serve did not say which worker it started: {log.read_text()}")


def test_serve_interrupted_mid_enhancement_leaves_no_process_and_resumes(
    published: Published, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT) to `pairscope serve` while its worker enhances: serve exits with its
    worker's whole group (pool and embedded beat) gone; the next `serve` finishes the job."""
    settings, home = published.worker_settings(), tmp_path
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    headers = published.net.lab
    path = published.net.url
    serve = _serve(settings, home, port, log)
    try:
        wait_for_http(url + "/healthz", timeout=90, process=serve)
        worker_pid = _worker_pid(log)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            api = NoServerErrors(lambda p: client.get(path(p)))
            job_id = _request(
                lambda p, **kw: client.post(path(p), **kw), published.number, seed=200
            )
            api.wait(job_id, _mid_job)
        # The worker, its pool process and its embedded beat: what must not outlive serve.
        assert len(_group_members(worker_pid)) >= 3, _group_members(worker_pid)
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert _group_is_gone(worker_pid, timeout=5), "a process of serve's worker outlived serve"

    serve = _serve(settings, home, port, log)
    try:
        wait_for_http(url + "/healthz", timeout=90, process=serve)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            api = NoServerErrors(lambda p: client.get(path(p)))
            done = api.wait(job_id, flow.finished)
        _assert_finished_once(published, job_id, done)
        assert done["attempts"] == 2, done
        worker_pid = _worker_pid(log)
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert _group_is_gone(worker_pid, timeout=5)


def test_an_enhancement_that_kills_every_worker_fails_after_its_attempts(
    published: Published,
) -> None:
    """Each claim counts; a worker that dies leaves a stale heartbeat, and the reaper queues the
    job again only while it has attempts left, then fails it with the reason the API shows. A
    late redelivery of its message cannot claim it past the limit."""
    service, net = published.service, published.net
    settings = service.settings.model_copy(
        update={"job_max_attempts": 2, "job_stale_after_s": 60.0}
    )
    job_id = _request(
        lambda path, **kw: net.client.post(net.url(path), headers=net.lab, **kw),
        published.number,
        seed=300,
    )

    def dies_mid_job() -> None:
        """Claimed, its first image taken, then the worker is gone: its heartbeat goes stale."""
        assert enhancing.claim(service.factory, job_id, settings) == Claim.run
        with session_scope(service.factory) as session:
            job = session.get_one(EnhancementJob, job_id)
            job.items[0].state = JobState.running
            job.heartbeat_at = utcnow() - timedelta(seconds=120)

    dies_mid_job()
    assert reaper.reap(service.factory, settings)["requeued"] == {"enhancement_jobs": [job_id]}
    again = net.client.get(net.url(f"/enhancements/{job_id}"), headers=net.lab).json()
    assert again["state"] == "queued" and again["attempts"] == 1, again
    assert {item["state"] for item in again["items"]} == {"queued"}

    dies_mid_job()
    assert enhancing.claim(service.factory, job_id, settings) == Claim.busy  # late redelivery
    assert reaper.reap(service.factory, settings)["failed"] == {"enhancement_jobs": [job_id]}
    body = net.client.get(net.url(f"/enhancements/{job_id}"), headers=net.lab).json()
    assert body["state"] == "failed" and body["attempts"] == 2, body
    assert "stopped responding 2 times" in body["reason"], body
    assert all(item["state"] == "failed" and item["reason"] for item in body["items"])
    assert enhancing.claim(service.factory, job_id, settings) == Claim.done
    assert reaper.reap(service.factory, settings) == {"requeued": {}, "failed": {}}
