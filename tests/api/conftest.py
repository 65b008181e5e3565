"""Every API test runs twice: against SQLite and against PostgreSQL, both migrated by Alembic."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from api.db import make_engine
from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.tables import Base, Role
from pairscope.testing.flow import make_key, microscope_body


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    data_dir = tmp_path_factory.mktemp(f"var-{request.param}")
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_schema_url")()
    settings = Settings(data_dir=data_dir, database_url=url)
    upgrade(settings)
    return settings


@pytest.fixture
def settings(backend_settings: Settings) -> Iterator[Settings]:
    """The backend's settings, with every table and the object store emptied after the test."""
    yield backend_settings
    for folder in (backend_settings.resolved_objects_dir, backend_settings.data_dir / "tmp"):
        shutil.rmtree(folder, ignore_errors=True)
    engine = make_engine(backend_settings)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    engine.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@dataclass
class Network:
    """A small network: an operator (admin), a wide-field lab, its confocal partner, and an
    outsider institution with a pairing of its own."""

    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.keys[who]}"}

    def call(self, method: str, path: str, who: str | None = "admin", **kwargs):  # type: ignore[no-untyped-def]
        headers = {**self.headers(who), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def network(client: TestClient, settings: Settings) -> Network:
    net = Network(client)
    net.ids["ops"], net.keys["admin"] = make_key(settings, "Network Operations", Role.admin)

    def post(path: str, body: dict) -> dict:
        response = net.call("POST", path, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    for name, country in (("lab", "PL"), ("partner", "DE"), ("outsider", "FR")):
        net.ids[name] = post(
            "/api/v1/institutions",
            {
                "name": f"{name.title()} Institute",
                "country": country,
                "contact_email": f"{name}@example.org",
            },
        )["id"]
    net.ids["lab_scope"] = post(
        "/api/v1/microscopes", microscope_body(net.ids["lab"], "WF-1", "widefield")
    )["id"]
    net.ids["partner_scope"] = post(
        "/api/v1/microscopes", microscope_body(net.ids["partner"], "LSM-880", "confocal")
    )["id"]
    net.ids["outsider_wf"] = post(
        "/api/v1/microscopes", microscope_body(net.ids["outsider"], "WF-X", "widefield")
    )["id"]
    net.ids["outsider_cf"] = post(
        "/api/v1/microscopes", microscope_body(net.ids["outsider"], "CF-X", "confocal")
    )["id"]
    net.ids["pairing"] = post(
        "/api/v1/pairings",
        {
            "name": "lab-to-partner",
            "lq_microscope_id": net.ids["lab_scope"],
            "hq_microscope_id": net.ids["partner_scope"],
        },
    )["id"]
    net.ids["outsider_pairing"] = post(
        "/api/v1/pairings",
        {
            "name": "outsider-internal",
            "lq_microscope_id": net.ids["outsider_wf"],
            "hq_microscope_id": net.ids["outsider_cf"],
        },
    )["id"]
    for who, role in (("lab", "lab"), ("partner", "partner"), ("outsider", "lab")):
        created = post("/api/v1/keys", {"institution_id": net.ids[who], "role": role})
        net.keys[who] = created["key"]
    return net
