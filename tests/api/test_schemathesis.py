"""Schemathesis drives every operation of the OpenAPI document with generated valid and
invalid input, with an admin key, against the app over ASGI on a migrated SQLite database
holding a small network: no answer is a 5xx, every status is one the document lists, and every
body matches the documented schema.

SCHEMATHESIS_EXAMPLES sets the examples per operation (CI: a few; `make fuzz`: many)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.tables import Role
from tests.api.conftest import make_key, microscope_body

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@dataclass
class Target:
    app: FastAPI
    headers: dict[str, str]


@contextmanager
def _network(folder: Path) -> Iterator[Target]:
    """The app with an admin key and a pairing (ids 1 and 2 exist), so that generated requests
    reach past the 404 of an empty registry."""
    config = Settings(data_dir=folder, database_url="")
    upgrade(config)
    institution, key = make_key(config, "Network Operations", Role.admin)
    app = create_app(config)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        scopes = [
            client.post(
                "/api/v1/microscopes",
                headers=headers,
                json=microscope_body(institution, name, modality),
            ).json()["id"]
            for name, modality in (("WF-1", "widefield"), ("LSM-880", "confocal"))
        ]
        created = client.post(
            "/api/v1/pairings",
            headers=headers,
            json={"name": "p", "lq_microscope_id": scopes[0], "hq_microscope_id": scopes[1]},
        )
        assert created.status_code == 201, created.text
        yield Target(app, headers)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One network for all generated cases (they may revoke its key or delete its rows)."""
    with _network(tmp_path_factory.mktemp("schemathesis")) as network:
        yield network


@pytest.fixture
def fresh_target(tmp_path: Path) -> Iterator[Target]:
    """A network of its own, untouched by what the generated cases did to `target`'s."""
    with _network(tmp_path) as network:
        yield network


def _load_schema() -> schemathesis.BaseSchema:
    """The document, read once at collection from an app that is only asked for it; the
    requests go to `target`'s app."""
    with tempfile.TemporaryDirectory() as scratch:
        return schemathesis.openapi.from_asgi(
            "/openapi.json", create_app(Settings(data_dir=Path(scratch), database_url=""))
        )


schema = _load_schema()

SQLITE_INTEGER = 2**63  # one past SQLite's largest integer


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("SCHEMATHESIS_EXAMPLES") is None,  # CI: the same inputs each run
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_every_operation_keeps_its_documented_promises(
    case: schemathesis.Case, target: Target
) -> None:
    case.call_and_validate(headers=target.headers, checks=CHECKS, app=target.app)


def test_an_id_beyond_64_bits_is_refused_with_a_4xx(fresh_target: Target) -> None:
    with TestClient(fresh_target.app) as client:
        response = client.get(f"/api/v1/pairings/{SQLITE_INTEGER}", headers=fresh_target.headers)
    assert response.status_code == 422, response.text
