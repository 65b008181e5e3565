"""`pairscope serve` on the embedded defaults, as a user starts it: one per test module."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, stop, wait_for_http

PAIRSCOPE = [sys.executable, "-m", "pairscope"]


@dataclass
class EmbeddedService:
    url: str
    admin_key: str
    home: Path
    env: dict[str, str]
    log: Path

    def cli(
        self, *args: str, key: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "PAIRSCOPE_URL": self.url, "PAIRSCOPE_API_KEY": key or self.admin_key}
        return subprocess.run(
            [*PAIRSCOPE, *args],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    home = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    key = subprocess.run(
        [*PAIRSCOPE, "admin", "create-key", "--institution", "Operations"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "shown once" in key.stderr
    port = free_port()
    log_path = home / "serve.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [*PAIRSCOPE, "serve", "--port", str(port)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/healthz", timeout=90, process=server)
        yield EmbeddedService(url, key.stdout.strip(), home, env, log_path)
    finally:
        stop(server)
        log.close()
