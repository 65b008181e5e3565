"""The real pieces the tests run against: SQLite and the PostgreSQL at 127.0.0.1:5432 (one
schema per run in database `test`, dropped afterwards), Redis at 127.0.0.1:6379, a moto S3
server over HTTP, and real `pairscope` subprocesses."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from pairscope.testing.processes import POSTGRES_URL, REDIS_URL, moto_server, s3_client

_EXIT_STATUS = pytest.StashKey[int]()


@pytest.fixture(scope="session", autouse=True)
def measured_call_paths_kept_per_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The generator call paths measured in this run (models.call_paths) stay in the run's
    temporary folder, not in the user's cache; worker and CLI subprocesses inherit it."""
    os.environ.setdefault("PAIRSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session", autouse=True)
def new_pairings_train_from_scratch() -> None:
    """The tests' pairings train the tiny preset; the shipped base (a cpu-small generator) would
    give every first job its architecture. Its own tests turn it on
    (tests/worker/test_shipped_base.py); servers and workers started as subprocesses inherit
    this."""
    os.environ.setdefault("PAIRSCOPE_SHIPPED_BASE", "false")


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
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    client = s3_client(s3_endpoint)
    name = f"pairscope-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    yield name
    objects = client.list_objects_v2(Bucket=name).get("Contents", [])
    for obj in objects:
        client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done: the interpreter's own teardown of a run's
    TensorFlow graphs and arrays (a heap of several GB) took 90 s after the summary, every run.
    Fixtures have been torn down and the report written by now; the exit status is pytest's."""
    status = config.stash.get(_EXIT_STATUS, None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
