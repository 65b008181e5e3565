"""A task really travels: through the embedded filesystem broker to the worker that
`pairscope serve` starts, and through the real Redis to a real `celery worker` subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from pairscope.testing.flow import microscope_body
from pairscope.testing.processes import stop

PAIRSCOPE = [sys.executable, "-m", "pairscope"]


def seed_pairing(client: httpx.Client | TestClient, headers: dict[str, str]) -> int:
    ids = []
    for name, modality in (("Widefield Lab", "widefield"), ("Confocal Core", "confocal")):
        inst = client.post(
            "/api/v1/institutions",
            headers=headers,
            json={"name": name, "country": "PL", "contact_email": "x@example.org"},
        )
        assert inst.status_code == 201, inst.text
        scope = client.post(
            "/api/v1/microscopes",
            headers=headers,
            json=microscope_body(inst.json()["id"], name + " scope", modality),
        )
        assert scope.status_code == 201, scope.text
        ids.append(scope.json()["id"])
    pairing = client.post(
        "/api/v1/pairings",
        headers=headers,
        json={"name": "wf-to-confocal", "lq_microscope_id": ids[0], "hq_microscope_id": ids[1]},
    )
    assert pairing.status_code == 201, pairing.text
    return pairing.json()["id"]


def wait_for_report(client, headers, pairing_id: int, report_id: int, timeout: float = 90) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = client.get(
            f"/api/v1/pairings/{pairing_id}/readiness/{report_id}", headers=headers
        ).json()
        if report["state"] in ("succeeded", "failed"):
            return report
        time.sleep(0.3)
    raise TimeoutError(f"report {report_id} still {report['state']} after {timeout} s")


def check_report(report: dict) -> None:
    assert report["state"] == "succeeded", report
    assert report["worker_host"]
    body = report["report"]
    assert body["ready"] is True
    assert body["lq_to_hq_scale"] == pytest.approx(0.0865 / 0.159, rel=1e-4)
    assert [c["lq_channel"] for c in body["channels"]] == ["DAPI", "AF488", "AF555"]
    assert body["channels"][0]["lq_resolution_um"] == pytest.approx(0.61 * 0.461 / 1.4, abs=1e-3)


def test_embedded_broker_with_the_worker_serve_starts(embedded_service) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=embedded_service.url, timeout=10) as client:
        headers = {"Authorization": f"Bearer {embedded_service.admin_key}"}
        ready = client.get("/readyz", headers=headers).json()  # details are for admins
        assert ready["status"] == "ready", ready
        assert ready["checks"]["broker"]["detail"].startswith("filesystem")
        assert str(embedded_service.home / "var") in ready["checks"]["database"]["detail"]
        pairing_id = seed_pairing(client, headers)
        queued = client.post(f"/api/v1/pairings/{pairing_id}/readiness", headers=headers)
        assert queued.status_code == 202 and queued.json()["state"] == "queued"
        check_report(wait_for_report(client, headers, pairing_id, queued.json()["id"]))
    output = embedded_service.log.read_text()
    assert embedded_service.url in output and "worker   : started" in output


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_redis_broker_with_a_celery_worker_subprocess(
    database: str, tmp_path: Path, redis_db_url: str, request: pytest.FixtureRequest
) -> None:
    url = "" if database == "sqlite" else request.getfixturevalue("postgres_schema_url")()
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=url,
        broker_url=redis_db_url,
        result_backend=redis_db_url,
    )
    upgrade(settings)
    env = {
        **os.environ,
        "PAIRSCOPE_DATA_DIR": str(settings.data_dir),
        "PAIRSCOPE_DATABASE_URL": settings.resolved_database_url,
        "PAIRSCOPE_BROKER_URL": redis_db_url,
        "PAIRSCOPE_RESULT_BACKEND": redis_db_url,
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [*PAIRSCOPE, "worker", "--queues", "default", "--name", "roundtrip"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from api.tables import Role
    from pairscope.testing.flow import make_key

    _, token = make_key(settings, "Operations", Role.admin)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app(settings)) as client:
            pairing_id = seed_pairing(client, headers)
            first = client.post(f"/api/v1/pairings/{pairing_id}/readiness", headers=headers).json()
            report = wait_for_report(client, headers, pairing_id, first["id"])
            check_report(report)
            # A second delivery of the same id (acks_late redelivery) changes nothing.
            client.app.state.dispatcher.send("pairscope.readiness_report", first["id"])
            time.sleep(2)
            again = client.get(
                f"/api/v1/pairings/{pairing_id}/readiness/{first['id']}", headers=headers
            ).json()
            assert again == report
    finally:
        stop(worker)
        log.close()
    text = (tmp_path / "worker.log").read_text()
    assert "redis://" in text and "pairscope.readiness_report" in text
