"""Real processes that tests and benchmarks both start: a free loopback port, waiting for an
HTTP answer, stopping a child, and a `pairscope worker` with exactly the given settings. Not used
by the service itself."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

REDIS_URL = os.environ.get("PAIRSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get(
    "PAIRSCOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("PAIRSCOPE_TEST_DATA", REPO.parent / "shared" / "data"))
W2S = DATA_DIR / "w2s-widefield-denoise"


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


def create_key_with_cli(
    env: Mapping[str, str], institution: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`pairscope admin create-key` run as an operator would: the key on stdout, the notice
    that it is shown once on stderr."""
    return subprocess.run(
        [sys.executable, "-m", "pairscope", "admin", "create-key", "--institution", institution],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )


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


@contextlib.contextmanager
def moto_server(log_path: Path | None = None) -> Iterator[str]:
    """A real S3-compatible HTTP endpoint (moto in server mode) on loopback; yields its URL."""
    with moto_server_process(log_path) as (url, _):
        yield url


@contextlib.contextmanager
def moto_server_process(
    log_path: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`moto_server`, also yielding its process, for tests that stop or freeze the endpoint."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with http_server(command, port, "/moto-api/", env=env, log_path=log_path, timeout=60) as served:
        yield served


@contextlib.contextmanager
def http_server(
    command: Sequence[str],
    port: int,
    health_path: str,
    *,
    env: Mapping[str, str],
    log_path: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 90,
    new_session: bool = False,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A server process listening on loopback `port`, its output in `log_path`; yields its URL
    and process once `health_path` answers, and stops it afterwards (continuing it first, so
    that a test may have frozen it)."""
    log = log_path.open("wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        list(command),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        start_new_session=new_session,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + health_path, timeout=timeout, process=process)
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        stop(process)
        if log_path:
            log.close()


def s3_client(endpoint_url: str):  # type: ignore[no-untyped-def]
    """A boto3 client for the loopback moto server (its credentials are not checked)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
