"""`pairscope demo` and the client commands against the real embedded service (`pairscope serve`
with its worker): the demo builds a network and version 1 through the REST API; then the
commands a lab would type work on that pairing — versions, training (followed, detached,
interrupted, cancelled), the quality gate, remote enhancement — and bad input is one line."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from models.synthetic import make_pair
from tests.worker.conftest import PAIRSCOPE, EmbeddedService

DEMO_STEPS = "300"  # enough for a visible gain on the synthetic fields, seconds on two cores


@dataclass
class Demo:
    output: str
    folder: Path
    pairing: int
    dataset: str
    lab_key: str


@pytest.fixture(scope="module")
def demo(embedded_service: EmbeddedService, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    folder = tmp_path_factory.mktemp("demo") / "demo-output"
    run = embedded_service.cli(
        "demo", "--out", str(folder), "--steps", DEMO_STEPS, check=False, timeout=400
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    pairing = re.search(r"pairing (\d+): channels matched", run.stdout)
    dataset = re.search(r"dataset (\d+) of pairing", run.stdout)
    lab_key = re.search(r"wide-field lab (psk_\S+)", run.stdout)
    assert pairing and dataset and lab_key, run.stdout
    return Demo(run.stdout, folder, int(pairing.group(1)), dataset.group(1), lab_key.group(1))


def _job_state(service: EmbeddedService, pairing: int, job: int) -> dict:
    import httpx

    return httpx.get(
        f"{service.url}/api/v1/pairings/{pairing}/training-jobs/{job}",
        headers={"Authorization": f"Bearer {service.admin_key}"},
    ).json()


def test_demo_builds_the_network_and_version_1(demo: Demo) -> None:
    for step in ("[1/9]", "pairs: 8 accepted", "dataset ", "training job", "[9/9] Done"):
        assert step in demo.output, step
    assert "succeeded: version 1" in demo.output
    assert "production of pairing" in demo.output and "points at version 1" in demo.output
    assert "/docs" in demo.output and str(demo.folder) in demo.output
    enhanced = demo.folder / "new-field_enhanced.ome.tif"
    with tifffile.TiffFile(enhanced) as tif:
        data = tif.asarray()
        assert tif.ome_metadata and "PhysicalSizeX" in tif.ome_metadata
    assert data.dtype == np.float32 and data.shape == (3, 192, 160)
    for png in ("version-1-report.png", "new-field_preview.png"):
        assert (demo.folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    gain = re.search(r"PSNR ([\d.]+) → ([\d.]+) dB", demo.output)
    assert gain and float(gain.group(2)) > float(gain.group(1)), demo.output[-1500:]


def test_versions_table(embedded_service: EmbeddedService, demo: Demo) -> None:
    table = embedded_service.cli("versions", "--pairing", str(demo.pairing), key=demo.lab_key)
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:4] == ["v", "created", "steps", "device"]
    assert row.split()[0] == "1" and DEMO_STEPS in row.split() and row.endswith("production")


def test_detached_and_interrupted_training_then_cancel(
    embedded_service: EmbeddedService, demo: Demo
) -> None:
    pairing = str(demo.pairing)
    args = ("--pairing", pairing, "--dataset", demo.dataset, "--preset", "tiny")
    args += ("--set", "steps=5000")
    detached = embedded_service.cli("train", *args, "--no-follow", key=demo.lab_key)
    job = int(re.search(r"training job (\d+) queued", detached.stdout).group(1))
    assert f"pairscope cancel --pairing {pairing} --job {job}" in detached.stdout

    # Ctrl-C while following: no question, the job goes on, the way to cancel is printed.
    env = {**embedded_service.env, "PAIRSCOPE_URL": embedded_service.url}
    env["PAIRSCOPE_API_KEY"] = demo.lab_key
    follower = subprocess.Popen(
        [*PAIRSCOPE, "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background inherits an ignored SIGINT; a person's terminal
        # does not. Give the child the terminal's default so Ctrl-C is what is tested.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = follower.stdout.readline()
    followed = int(re.search(r"training job (\d+) queued", first).group(1))
    time.sleep(1.5)
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=180)
    assert follower.returncode == 130, out + err
    assert "stopped following" in out and "Traceback" not in err
    assert f"pairscope cancel --pairing {pairing} --job {followed}" in out
    assert _job_state(embedded_service, demo.pairing, followed)["state"] in ("queued", "running")

    for number in (job, followed):
        cancelled = embedded_service.cli(
            "cancel", "--pairing", pairing, "--job", str(number), key=demo.lab_key
        )
        assert f"training job {number}" in cancelled.stdout
        assert "cancel" in cancelled.stdout


def test_followed_training_and_the_quality_gate(
    embedded_service: EmbeddedService, demo: Demo
) -> None:
    pairing = str(demo.pairing)
    trained = embedded_service.cli(
        "train",
        *("--pairing", pairing, "--dataset", demo.dataset, "--preset", "tiny", "--seed", "5"),
        *("--set", "steps=1", "--set", "patch_size=64"),
        key=demo.lab_key,
    )
    found = re.search(r"succeeded: version (\d+)", trained.stdout)
    assert found, trained.stdout + trained.stderr[-2000:]
    version = found.group(1)
    assert "production (version 1)" in trained.stdout and "Richardson–Lucy" in trained.stdout
    assert "job" in trained.stderr and "100%" in trained.stderr  # the progress bar

    refused = embedded_service.cli(
        "promote", "--pairing", pairing, "--version", version, key=demo.lab_key, check=False
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "does not pass the quality gate" in refused.stdout
    for figure in ("candidate", "Richardson–Lucy", "production (version 1)", "PSNR", "SSIM"):
        assert figure in refused.stdout, figure
    assert "--override-reason" in refused.stdout

    staged = embedded_service.cli(
        "promote", "--pairing", pairing, "--version", version, "--alias", "staging"
    )
    assert "staging of pairing" in staged.stdout and f"version {version}" in staged.stdout
    no_earlier = embedded_service.cli("rollback", "--pairing", pairing, check=False)
    assert no_earlier.returncode == 2 and "no earlier version" in no_earlier.stderr


def test_enhance_remote_folder(embedded_service: EmbeddedService, demo: Demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    inputs = tmp_path / "new-fields"
    inputs.mkdir()
    for seed in (500, 501):
        lq, _, _ = make_pair((128, 96), seed=seed, pixel_size_um=0.08)
        tifffile.imwrite(
            inputs / f"field-{seed}.tif", lq, photometric="minisblack", metadata={"axes": "CYX"}
        )
    (inputs / "README.txt").write_text("not an image: skipped")
    out = tmp_path / "enhanced"
    run = embedded_service.cli(
        "enhance-remote",
        *("--pairing", str(demo.pairing), "--version", "1", str(inputs), "--out", str(out)),
        key=demo.lab_key,
    )
    assert "2 of 2 enhanced image(s) written" in run.stdout, run.stdout + run.stderr[-2000:]
    assert "upload" in run.stderr and "download" in run.stderr
    for seed in (500, 501):
        data = tifffile.imread(out / f"field-{seed}_enhanced.ome.tif")
        assert data.shape == (3, 128, 96) and data.dtype == np.float32


def test_bad_input_is_one_line(embedded_service: EmbeddedService, demo: Demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    nothing = embedded_service.cli(
        "enhance-remote",
        *("--pairing", str(demo.pairing), str(empty), "--out", str(tmp_path / "o")),
        key=demo.lab_key,
        check=False,
    )
    assert nothing.returncode == 2 and "no TIFF files" in nothing.stderr
    assert "Traceback" not in nothing.stderr

    for command in (("versions",), ("snapshot",), ("promote", "--version", "1")):
        unknown = embedded_service.cli(*command, "--pairing", "9999", check=False)
        assert unknown.returncode == 2, unknown.stdout + unknown.stderr
        assert unknown.stderr.strip().count("\n") == 0 and "Traceback" not in unknown.stderr
        assert "404" in unknown.stderr and "pairing 9999 does not exist" in unknown.stderr

    bad_key = embedded_service.cli(
        "train",
        *("--pairing", str(demo.pairing), "--dataset", demo.dataset, "--set", "no_such_key=1"),
        check=False,
    )
    assert bad_key.returncode == 2 and "no_such_key" in bad_key.stderr


def test_overrides_and_inputs_are_read_as_typed(tmp_path: Path) -> None:
    from pairscope.client import ClientError
    from pairscope.jobs_cli import collect_tiffs, output_name, parse_overrides

    assert parse_overrides(["steps=400", "learning_rate=2e-3", "augment_flips=false"]) == {
        "steps": 400,
        "learning_rate": 0.002,
        "augment_flips": False,
    }
    assert parse_overrides(["upsampling=bilinear", "clipnorm=null"]) == {
        "upsampling": "bilinear",
        "clipnorm": None,
    }
    with pytest.raises(ClientError, match="expected key=value"):
        parse_overrides(["steps"])
    assert output_name("cell.ome.tiff") == "cell_enhanced.ome.tif"
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "cell.tif").write_bytes(b"II*\x00")
    with pytest.raises(ClientError, match="would both be written as cell_enhanced.ome.tif"):
        collect_tiffs([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ClientError, match="no such file or folder"):
        collect_tiffs([tmp_path / "missing"])
