"""Liveness, readiness (database, object store and broker each reported), and OpenAPI docs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from api.tables import Role
from tests.api.conftest import make_key


def test_healthz_and_readyz_report_all_three(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "object_store", "broker"}
    assert all(check["ok"] for check in checks.values())


def test_readyz_with_s3_and_redis(
    settings: Settings, s3_endpoint: str, s3_bucket: str, redis_db_url: str
) -> None:
    configured = settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": s3_bucket,
            "s3_endpoint_url": s3_endpoint,
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "broker_url": redis_db_url,
            "result_backend": redis_db_url,
        }
    )
    _, admin_key = make_key(settings, "Operators", Role.admin)  # details are for admins
    with TestClient(create_app(configured)) as client:
        body = client.get("/readyz", headers={"Authorization": f"Bearer {admin_key}"}).json()
    assert body["status"] == "ready", body
    assert s3_bucket in body["checks"]["object_store"]["detail"]
    assert "redis" in body["checks"]["broker"]["detail"]


def test_readyz_reports_each_failure(settings: Settings) -> None:
    broken = settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": "nowhere",
            "s3_endpoint_url": "http://127.0.0.1:9",
            "s3_access_key_id": "x",
            "s3_secret_access_key": "x",
            "broker_url": "redis://127.0.0.1:9/0",
        }
    )
    with TestClient(create_app(broken)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["object_store"]["ok"] is False and checks["broker"]["ok"] is False


def test_openapi_documents_the_registry(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/institutions",
        "/api/v1/microscopes/{microscope_id}",
        "/api/v1/pairings",
        "/api/v1/keys",
        "/readyz",
    ):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_web_app_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="/static/app/main.js">' in page.text
    for asset, needle in (
        ("/static/app/main.js", "views/training.js"),
        ("/static/app/views/training.js", "Training jobs"),
        ("/static/app/api.js", "/api/v1"),
        ("/static/app/app.css", ":focus-visible"),
    ):
        served = client.get(asset)
        assert served.status_code == 200 and needle in served.text, asset
    assert client.get("/static/app/nothing.js").status_code == 404


def test_readyz_tells_anonymous_callers_only_ok_or_not(
    client: TestClient, settings: Settings
) -> None:
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 200
    assert anonymous.json()["checks"] == {
        "database": {"ok": True},
        "object_store": {"ok": True},
        "broker": {"ok": True},
    }
    assert str(settings.data_dir) not in anonymous.text
    _, lab_key = make_key(settings, "Some Lab", Role.lab)
    lab = client.get("/readyz", headers={"Authorization": f"Bearer {lab_key}"})
    assert lab.json() == anonymous.json()
    _, admin_key = make_key(settings, "Operators", Role.admin)
    admin = client.get("/readyz", headers={"Authorization": f"Bearer {admin_key}"}).json()
    assert str(settings.resolved_objects_dir) in admin["checks"]["object_store"]["detail"]
    assert admin["checks"]["database"]["detail"]


def test_readyz_failure_details_only_for_admins(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"broker_url": "redis://:hunter2@127.0.0.1:9/0", "result_backend": ""}
    )
    _, admin_key = make_key(settings, "Operators", Role.admin)
    with TestClient(create_app(broken)) as client:
        anonymous = client.get("/readyz")
        admin = client.get("/readyz", headers={"Authorization": f"Bearer {admin_key}"})
    assert anonymous.status_code == 503 and admin.status_code == 503
    assert anonymous.json()["checks"]["broker"] == {"ok": False}
    assert "127.0.0.1" not in anonymous.text and "Error" not in anonymous.text
    detail = admin.json()["checks"]["broker"]["detail"]
    assert detail and "hunter2" not in admin.text
