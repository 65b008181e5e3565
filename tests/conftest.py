"""The real pieces the tests run against: SQLite and the PostgreSQL at 127.0.0.1:5432 (one
schema per run in database `test`, dropped afterwards), Redis at 127.0.0.1:6379, a moto S3
server over HTTP, and real `pairscope` subprocesses."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "PAIRSCOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PAIRSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[callable]:
    """Make fresh schemas in database `test` on demand; drop them all at the end of the run."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"pairscope_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        made.append(name)
        return f"{POSTGRES_URL}?options=-csearch_path%3D{name}"

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_db_url() -> str:
    """A Redis database index of its own for this run, so parallel runs do not share queues."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    for index in range(15, 0, -1):
        lock = client.set(
            f"pairscope-test-lock-{index}",
            os.getpid(),
            nx=True,
            ex=3600,
        )
        if lock:
            break
    else:
        pytest.fail("no free Redis database index for this run")
    url = f"{REDIS_URL}/{index}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()
    client.delete(f"pairscope-test-lock-{index}")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible HTTP endpoint (moto in server mode) on loopback."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/moto-api/", timeout=60, process=process)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    name = f"pairscope-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    yield name
    objects = client.list_objects_v2(Bucket=name).get("Contents", [])
    for obj in objects:
        client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


DATA_DIR = Path(os.environ.get("PAIRSCOPE_TEST_DATA", REPO.parent / "shared" / "data"))
W2S = DATA_DIR / "w2s-widefield-denoise"


def settings_env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The environment a subprocess needs to see exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    for name, value in settings.model_dump().items():
        if value is not None and value != "":
            env[f"PAIRSCOPE_{name.upper()}"] = str(value)
    return env


@contextlib.contextmanager
def running_worker(
    settings,
    queues: str,
    log_path: Path,
    name: str = "test",  # type: ignore[no-untyped-def]
    beat: bool = False,
):
    """A real `pairscope worker` process on the given queues (in its own process group, so a
    test can kill it and its pool at once), stopped afterwards."""
    log = log_path.open("wb")
    command = [sys.executable, "-m", "pairscope", "worker", "--queues", queues, "--name", name]
    process = subprocess.Popen(
        command + (["--beat"] if beat else []),
        env=settings_env(settings),
        cwd=log_path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop(process)
        log.close()
