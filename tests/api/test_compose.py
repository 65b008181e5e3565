"""docker-compose.yml cannot run here, so read it: every PAIRSCOPE_* variable must be one the
settings accept, every service must run a `pairscope` command the CLI (and tests) know, and no
password may be written in it: each secret comes from `.env` (documented by `.env.example`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from api.settings import Settings
from pairscope.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
PAIRSCOPE_SERVICES = {"api", "worker-gpu", "worker-cpu"}
# `${NAME:?message}`: compose stops with the message when NAME is unset or empty
REQUIRED_VARIABLE = re.compile(r"\$\{(\w+):\?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET", re.IGNORECASE)


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def substituted(value: object) -> str:
    """The value as compose would pass it, with placeholder values for required variables."""
    return REQUIRED_VARIABLE.sub(lambda m: f"example-{m.group(1).lower()}", str(value))


@pytest.mark.parametrize("service", sorted(PAIRSCOPE_SERVICES))
def test_service_environment_is_accepted_by_settings(service: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env = COMPOSE["services"][service]["environment"]
    for name in list(__import__("os").environ):
        if name.startswith("PAIRSCOPE_"):
            monkeypatch.delenv(name)
    known = {f"PAIRSCOPE_{field.upper()}" for field in Settings.model_fields}
    for name, value in env.items():
        assert name in known, f"{service}: {name} is not a setting"
        monkeypatch.setenv(name, substituted(value))
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


def _environments() -> list[tuple[str, str, str]]:
    return [
        (service, name, str(value))
        for service, body in COMPOSE["services"].items()
        for name, value in (body.get("environment") or {}).items()
    ]


def test_no_password_is_written_in_the_compose_file() -> None:
    """Every secret is a required `${VAR:?…}` substitution, never a literal default."""
    for service, name, value in _environments():
        if SECRET_NAME.search(name):
            assert REQUIRED_VARIABLE.fullmatch(value), f"{service}: {name} is a literal"
        credentials = re.match(r"\w[\w+]*://[^:/@]+:([^@]+)@", value)
        if credentials:
            assert REQUIRED_VARIABLE.fullmatch(credentials.group(1)), (
                f"{service}: {name} has a literal password in its URL"
            )
    assert not re.search(r":-[^}]*\}", COMPOSE_TEXT), "a `${VAR:-default}` could hide a password"
    entrypoint = COMPOSE["services"]["minio-init"]["entrypoint"]
    assert "$$MINIO_ROOT_PASSWORD" in entrypoint, "minio-init must read the password from its env"


def test_every_required_variable_is_in_env_example() -> None:
    required = set(REQUIRED_VARIABLE.findall(COMPOSE_TEXT))
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} <= required
    example = env_example()
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    assert all(not example[name] for name in required if SECRET_NAME.search(name)), (
        ".env.example must not suggest a password"
    )
