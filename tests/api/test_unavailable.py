"""A dependency that is down or frozen is a 503 with a reason, quickly, and leaves nothing
behind: real moto servers stopped (SIGTERM) or frozen (SIGSTOP), a PostgreSQL address that
refuses, one that accepts and never answers, and a real one cut off behind a TCP proxy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.main import create_app
from api.settings import Settings
from api.tables import Role
from models.synthetic import make_pair
from pairscope.testing.flow import build_network, make_key, tiff
from pairscope.testing.processes import free_port, moto_server_process, s3_client
from pairscope.testing.proxy import cuttable_proxy
from tests.api.test_registry import row_counts

FAST = {"s3_connect_timeout_s": 1.0, "s3_read_timeout_s": 2.0, "s3_max_attempts": 2}


@contextlib.contextmanager
def s3_app(settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, object, str]]:
    """An app on its own moto server (so the test may stop it) with short store timeouts."""
    with moto_server_process(tmp_path / "moto.log") as (url, process):
        s3_client(url).create_bucket(Bucket="faults")
        configured = settings.model_copy(
            update={
                "storage_backend": "s3",
                "s3_bucket": "faults",
                "s3_endpoint_url": url,
                "s3_access_key_id": "test",
                "s3_secret_access_key": "test",
                **FAST,
            }
        )
        with TestClient(create_app(configured)) as client:
            yield client, process, url


def _hurt(process, how: str) -> None:  # type: ignore[no-untyped-def]
    if how == "down":
        process.terminate()
        process.wait(timeout=20)
    else:
        os.kill(process.pid, signal.SIGSTOP)


@pytest.mark.parametrize("moment", ["before", "during"])
@pytest.mark.parametrize("how", ["down", "frozen"])
def test_an_upload_meeting_a_down_or_frozen_store_is_503_and_leaves_nothing(
    settings: Settings, tmp_path: Path, how: str, moment: str
) -> None:
    _, admin_key = make_key(settings, "Operators", Role.admin)
    with s3_app(settings, tmp_path) as (client, process, url):
        net = build_network(client, admin_key)
        if moment == "before":
            _hurt(process, how)
        else:  # the body is in, the database checked: the store goes as the object is sent
            hurt: list[bool] = []

            def as_it_is_sent(**_: object) -> None:
                if not hurt:
                    hurt.append(True)
                    _hurt(process, how)

            client.app.state.store._client.meta.events.register(
                "before-send.s3.PutObject", as_it_is_sent
            )
        lq, _, _ = make_pair((128, 128), seed=1)
        started = time.monotonic()
        response = client.post(
            net.url("/images"),
            headers=net.lab,
            params={"side": "lq", "field_id": "cell-01"},
            files={"file": ("cell-01.tif", tiff(lq), "image/tiff")},
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "object_store_unavailable" and error["reason"], error
        assert url.split("//")[1] not in response.text  # the address is for the log only
        assert response.headers["Retry-After"]
        assert elapsed < 20, f"took {elapsed:.1f} s"
        assert row_counts(settings)["images"] == 0
        assert list((settings.data_dir / "tmp").glob("*")) == []
        if how == "frozen":
            os.kill(process.pid, signal.SIGCONT)
            time.sleep(1)  # the requests it queued while frozen are answered now
            assert s3_client(url).list_objects_v2(Bucket="faults").get("Contents", []) == []


def test_readyz_answers_within_seconds_when_the_store_is_frozen(
    settings: Settings, tmp_path: Path
) -> None:
    with s3_app(settings, tmp_path) as (client, process, _):
        assert client.get("/readyz").status_code == 200
        os.kill(process.pid, signal.SIGSTOP)
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 6
        assert response.status_code == 503
        assert response.json()["checks"]["object_store"] == {"ok": False}
        assert response.json()["checks"]["database"] == {"ok": True}


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield listener.getsockname()[1]


def _postgres_at(port: int, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test",
        database_connect_timeout_s=2,
    )


@pytest.mark.parametrize("how", ["refused", "silent"])
def test_an_unreachable_database_is_503_never_a_hang_or_500(tmp_path: Path, how: str) -> None:
    with contextlib.ExitStack() as stack:
        port = free_port() if how == "refused" else stack.enter_context(silent_server())
        client = stack.enter_context(TestClient(create_app(_postgres_at(port, tmp_path))))
        started = time.monotonic()
        response = client.get("/api/v1/institutions", headers={"Authorization": "Bearer x"})
        assert time.monotonic() - started < 10
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "database_unavailable" and error["status"] == 503
        assert str(port) not in response.text
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == {"ok": False}
    assert time.monotonic() - started < 20


def test_a_database_cut_off_mid_session_is_503_and_back_when_restored(
    postgres_schema_url, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from api.migrate import upgrade

    url = make_url(postgres_schema_url())
    with cuttable_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        settings = Settings(data_dir=tmp_path, database_url=proxied, database_connect_timeout_s=2)
        upgrade(settings)
        _, key = make_key(settings, "Operators", Role.admin)
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(settings)) as client:
            assert client.get("/api/v1/institutions", headers=headers).status_code == 200
            proxy.cut()
            response = client.get("/api/v1/institutions", headers=headers)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"
            proxy.restore()
            assert client.get("/api/v1/institutions", headers=headers).status_code == 200


def test_postgres_cancels_a_statement_past_its_timeout(postgres_schema_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from api.db import make_engine

    settings = Settings(
        data_dir=tmp_path, database_url=postgres_schema_url(), database_statement_timeout_s=0.5
    )
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SHOW statement_timeout")) == "500ms"
            with pytest.raises(OperationalError, match="statement timeout"):
                connection.execute(text("SELECT pg_sleep(3)"))
        with make_engine(settings, statement_timeout=False).connect() as connection:
            assert connection.scalar(text("SHOW statement_timeout")) == "0"
    finally:
        engine.dispose()


def test_store_timeouts_come_from_the_settings(tmp_path: Path) -> None:
    store = create_app(
        Settings(data_dir=tmp_path, storage_backend="s3", s3_bucket="b", **FAST)
    ).state.store
    config = store._client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.0, 2.0)
    assert config.retries["total_max_attempts"] == 2
