"""docker-compose.yml cannot run here, so read it: every PAIRSCOPE_* variable must be one the
settings accept, and every service must run a `pairscope` command the CLI (and tests) know."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from api.settings import Settings
from pairscope.cli import build_parser

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
PAIRSCOPE_SERVICES = {"api", "worker-gpu", "worker-cpu"}


@pytest.mark.parametrize("service", sorted(PAIRSCOPE_SERVICES))
def test_service_environment_is_accepted_by_settings(service: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env = COMPOSE["services"][service]["environment"]
    for name in list(__import__("os").environ):
        if name.startswith("PAIRSCOPE_"):
            monkeypatch.delenv(name)
    known = {f"PAIRSCOPE_{field.upper()}" for field in Settings.model_fields}
    for name, value in env.items():
        assert name in known, f"{service}: {name} is not a setting"
        monkeypatch.setenv(name, str(value))
    settings = Settings()  # extra="forbid": a typo or bad value fails here
    assert settings.storage_backend == "s3" and settings.resolved_broker_url.startswith("redis://")
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("service", sorted(PAIRSCOPE_SERVICES))
def test_service_command_is_a_pairscope_command(service: str) -> None:
    command = COMPOSE["services"][service]["command"]
    assert command[0] == "pairscope"
    args = build_parser().parse_args(command[1:])
    assert callable(args.func)


def test_deployment_has_every_piece() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "redis", "minio", "minio-init"} | PAIRSCOPE_SERVICES <= set(services)
    gpu = services["worker-gpu"]
    assert gpu["command"][gpu["command"].index("--queues") + 1] == "train"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    cpu = services["worker-cpu"]
    assert set(cpu["command"][cpu["command"].index("--queues") + 1].split(",")) == {
        "infer",
        "default",
    }


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        name
        for name in Settings.model_fields
        if f"PAIRSCOPE_{name.upper()}" not in readme
        and f"_{name.upper().removeprefix('S3_')}" not in readme
    ]
    assert missing == [], f"settings missing from the README's table: {missing}"
