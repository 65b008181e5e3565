"""CLIENT INSTALL WITHOUT TENSORFLOW: `pip install pairscope` (no extra) into a fresh, clean
virtual environment, as on a lab's acquisition PC that only uploads and downloads.

The package is installed from this working tree (the files the Dockerfile copies) by pip, with
its dependencies from the package index, into `python -m venv` (no system site packages). There
TensorFlow and Keras cannot be imported; `pairscope --help` works; the API server runs (its
worker not started, with the reason); against the real embedded service (`pairscope serve` from
the full install, with its worker) the whole demo runs from the fresh environment, then
`upload` of a new synthetic pair folder, `enhance-remote`, and the report and model downloads;
and the commands that run networks here (train-local, enhance, worker) say in one line that
they need `pairscope[worker]` and exit 2. The install takes a minute or two (pip's cache helps).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from models.synthetic import make_pair
from pairscope.testing.processes import REPO, free_port, stop, wait_for_http
from pairscope.worker_extra import HINT, INSTALL
from tests.worker.conftest import EmbeddedService

# What the Dockerfile copies: everything `pip install .` needs to build the package.
SOURCES = ("pyproject.toml", "README.md", "api", "worker", "models", "migrations", "pairscope")
PIXEL_SIZE_UM = 0.08


@dataclass
class ClientEnv:
    """The fresh environment: its `pairscope` and `python`, and how long pip took."""

    bin: Path
    install_s: float

    def run(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            env=env or clean_env(),
            cwd=cwd or self.bin.parent.parent,  # not the working tree: `python -c` would see it
            capture_output=True,
            text=True,
            timeout=400,
        )


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would let the fresh one see the working tree
    or the full install (PYTHONPATH, the active virtual environment) or this run's settings."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {
        k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PAIRSCOPE_")
    }
    return {**env, **extra}


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def client_env(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    root = tmp_path_factory.mktemp("client-install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean_env())
    started = time.monotonic()
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        capture_output=True,
        text=True,
        timeout=540,
    )
    if pip.returncode != 0 and not _pypi_reachable():
        pytest.skip("the client install needs the package index (pypi.org), not reachable")
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return ClientEnv(venv / "bin", time.monotonic() - started)


def test_fresh_install_has_no_tensorflow_and_the_cli_works(client_env: ClientEnv) -> None:
    where = client_env.run("python", "-c", "import pairscope; print(pairscope.__file__)")
    assert str(client_env.bin.parent) in where.stdout, where.stdout + where.stderr
    for heavy in ("tensorflow", "keras"):
        missing = client_env.run("python", "-c", f"import {heavy}")
        assert missing.returncode == 1 and "ModuleNotFoundError" in missing.stderr, heavy

    help_ = client_env.run("pairscope", "--help")
    assert help_.returncode == 0, help_.stderr
    for name in ("upload", "enhance-remote", "train-local", "pairings"):
        assert name in help_.stdout
    assert "pip install 'pairscope[worker]'" in help_.stdout


def test_science_commands_name_the_worker_extra(client_env: ClientEnv, tmp_path: Path) -> None:
    for args in (
        ("train-local", "--lq", "wf", "--hq", "cf", "--out", "model"),
        ("enhance", "--model", "model.zip", "in.tif", "out.tif"),
        ("worker", "--queues", "infer"),
    ):
        run = client_env.run("pairscope", *args, cwd=tmp_path)
        assert run.returncode == 2, run.stdout + run.stderr
        assert run.stderr == f"error: {HINT}\n", args


def test_api_server_runs_without_tensorflow(client_env: ClientEnv, tmp_path: Path) -> None:
    """`pairscope serve` from the fresh environment: migrations, the API, and no worker (it
    says why) — a deployment's API container needs no TensorFlow."""
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(client_env.bin / "pairscope"), "serve", "--port", str(port)],
        env=clean_env(),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout=90, process=server)
    finally:
        stop(server)
        log.close()
    printed = (tmp_path / "serve.log").read_text()
    assert f"worker   : not started, it needs the worker extra: {INSTALL}" in printed
    assert "Traceback" not in printed, printed[-3000:]


@dataclass
class LabNetwork:
    """What the demo, run from the fresh environment, built on the embedded service."""

    pairing: str
    lab_key: str
    core_key: str


@pytest.fixture(scope="module")
def network(
    client_env: ClientEnv,
    embedded_service: EmbeddedService,
    tmp_path_factory: pytest.TempPathFactory,
) -> LabNetwork:
    """`pairscope demo` from the fresh environment: registry, uploads, training (by the
    service's worker), the report, promotion and a remote enhancement, all over the REST API."""
    home = tmp_path_factory.mktemp("lab-pc")
    demo = client_env.run(
        "pairscope",
        "demo",
        "--out",
        str(home / "demo-output"),
        "--steps",
        "100",
        env=_service_env(embedded_service, embedded_service.admin_key),
        cwd=home,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "[9/9] Done" in demo.stdout and "succeeded: version 1" in demo.stdout
    pairing = re.search(r"pairing (\d+): channels matched", demo.stdout)
    lab = re.search(r"wide-field lab (psk_\S+)", demo.stdout)
    core = re.search(r"confocal core  (psk_\S+)", demo.stdout)
    assert pairing and lab and core, demo.stdout
    return LabNetwork(pairing.group(1), lab.group(1), core.group(1))


def _service_env(service: EmbeddedService, key: str) -> dict[str, str]:
    return clean_env(PAIRSCOPE_URL=service.url, PAIRSCOPE_API_KEY=key)


def _tiff(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    per_cm = 1e4 / PIXEL_SIZE_UM
    tifffile.imwrite(
        path,
        array,
        photometric="minisblack",
        metadata={"axes": "CYX"},
        resolution=(per_cm, per_cm),
        resolutionunit="CENTIMETER",
    )


def test_lab_pc_uploads_enhances_remotely_and_downloads(
    client_env: ClientEnv, embedded_service: EmbeddedService, network: LabNetwork, tmp_path: Path
) -> None:
    lab = _service_env(embedded_service, network.lab_key)
    core = _service_env(embedded_service, network.core_key)
    for field in range(3):
        lq, hq, _ = make_pair((160, 160), seed=700 + field, pixel_size_um=PIXEL_SIZE_UM, wf_na=1.4)
        _tiff(tmp_path / "wide-field" / f"session2-{field}.tif", lq)
        _tiff(tmp_path / "confocal" / f"session2-{field}.tif", hq)
    pairing = ("--pairing", network.pairing)

    up = client_env.run(
        "pairscope",
        "upload",
        *pairing,
        "--side",
        "lq",
        str(tmp_path / "wide-field"),
        "--wait",
        "0",
        env=lab,
        cwd=tmp_path,
    )
    assert up.returncode == 0 and "3 to upload" in up.stdout, up.stdout + up.stderr
    up = client_env.run(
        "pairscope",
        "upload",
        *pairing,
        "--side",
        "hq",
        str(tmp_path / "confocal"),
        "--wait",
        "120",
        env=core,
        cwd=tmp_path,
    )
    assert up.returncode == 0 and "pairs: 3 accepted" in up.stdout, up.stdout + up.stderr

    new_lq, _, _ = make_pair((128, 160), seed=900, pixel_size_um=PIXEL_SIZE_UM, wf_na=1.4)
    _tiff(tmp_path / "new" / "field-a.tif", new_lq)
    remote = client_env.run(
        "pairscope",
        "enhance-remote",
        *pairing,
        "--out",
        str(tmp_path / "enhanced"),
        str(tmp_path / "new"),
        env=lab,
        cwd=tmp_path,
    )
    assert remote.returncode == 0, remote.stdout + remote.stderr
    enhanced = tifffile.imread(tmp_path / "enhanced" / "field-a_enhanced.ome.tif")
    assert enhanced.shape == (3, 128, 160) and enhanced.dtype == np.float32

    report = client_env.run(
        "pairscope",
        "report",
        *pairing,
        "--version",
        "1",
        "--out",
        str(tmp_path / "reports"),
        env=lab,
        cwd=tmp_path,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert (tmp_path / "reports" / "v1-report.png").read_bytes()[:4] == b"\x89PNG"

    model = tmp_path / "v1.zip"
    saved = client_env.run(
        "pairscope",
        "model",
        *pairing,
        "--version",
        "1",
        "--out",
        str(model),
        env=lab,
        cwd=tmp_path,
    )
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert zipfile.is_zipfile(model)
    # The model came down; running it here is what the worker extra is for.
    local = client_env.run(
        "pairscope",
        "enhance",
        "--model",
        str(model),
        str(tmp_path / "new" / "field-a.tif"),
        str(tmp_path / "local.ome.tif"),
        env=lab,
        cwd=tmp_path,
    )
    assert local.returncode == 2 and local.stderr == f"error: {HINT}\n"
