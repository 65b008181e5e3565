"""`pairscope demo` and the client commands against the real embedded service (`pairscope serve`
with its worker): the demo builds a network and version 1 through the REST API; then the
commands a lab would type work on that pairing — versions, training (followed, detached,
interrupted, cancelled), the quality gate, remote enhancement, datasets, aliases, reports and
models — and bad input is one line. A second network is registered with the registry commands
alone (institutions, microscopes, pairings, keys), and its pairs are reviewed with `pairs`."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from models.synthetic import make_pair
from pairscope.testing.processes import free_port
from tests.ome_output import read_back
from tests.worker.conftest import PAIRSCOPE, EmbeddedService

DEMO_STEPS = "300"  # enough for a visible gain on the synthetic fields, seconds on two cores


@dataclass
class Demo:
    output: str
    folder: Path
    pairing: int
    dataset: str
    lab_key: str
    job: int


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
    job = re.search(r"training job (\d+) queued", run.stdout)
    assert pairing and dataset and lab_key and job, run.stdout
    return Demo(
        run.stdout,
        folder,
        int(pairing.group(1)),
        dataset.group(1),
        lab_key.group(1),
        int(job.group(1)),
    )


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
    # the new pairing starts from the shipped base when the service uses it (tests turn it off)
    shipped = os.environ.get("PAIRSCOPE_SHIPPED_BASE", "true").lower() in ("1", "true", "yes")
    assert f"starts from {'base:shipped' if shipped else 'scratch'}" in demo.output
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


def test_the_learning_curve_shows_version_1_at_its_field_count(
    embedded_service: EmbeddedService, demo: Demo
) -> None:
    import httpx

    def get(path: str) -> dict:
        response = httpx.get(
            f"{embedded_service.url}/api/v1/pairings/{demo.pairing}/{path}",
            headers={"Authorization": f"Bearer {demo.lab_key}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    curve, version = get("learning-curve"), get("versions/1")
    dataset = get(f"datasets/{version['dataset_id']}")
    (point,) = curve["points"]
    assert point["version"] == 1 and point["train_fields"] == dataset["counts"]["train"]
    assert point["psnr"] == version["metrics"]["medians"]["generated"]["psnr"]
    assert point["input_psnr"] == version["metrics"]["medians"]["identity"]["psnr"]
    assert point["init"] == version["config"].get("init", "scratch") and point["minutes"] > 0
    assert curve["fields_available"] >= 8
    # one field count is not a curve: no expectation is drawn, and the answer says why
    assert curve["expected"] == [] and "at least 3 different numbers of fields" in curve["fit"]


def test_read_commands_answer_json_for_scripts(
    embedded_service: EmbeddedService, demo: Demo
) -> None:
    pairing, job = ("--pairing", str(demo.pairing)), ("--job", str(demo.job))
    versions = json.loads(embedded_service.cli("versions", *pairing, "--json").stdout)
    assert versions[0]["number"] == 1 and "production" in versions[0]["aliases"]
    assert "generated" in versions[0]["metrics"]["medians"]

    line = embedded_service.cli("status", *pairing, *job, key=demo.lab_key)
    assert line.stdout.startswith(f"training job {demo.job} succeeded: step {DEMO_STEPS}/")
    assert line.stdout.rstrip().endswith("version 1")
    status = json.loads(embedded_service.cli("status", *pairing, *job, "--json").stdout)
    assert status["id"] == demo.job and status["state"] == "succeeded"

    # follow --json: stdout is the finished job and nothing else, no progress bar anywhere.
    followed = embedded_service.cli("follow", *pairing, *job, "--json", key=demo.lab_key)
    finished = json.loads(followed.stdout)
    assert finished["state"] == "succeeded" and finished["version"] == 1
    assert "%|" not in followed.stderr


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

    # A job that did not succeed is a failure for a script: exit 1, the job says why.
    ended = embedded_service.cli(
        "follow", "--pairing", pairing, "--job", str(followed), "--json", check=False
    )
    assert ended.returncode == 1, ended.stdout + ended.stderr
    assert json.loads(ended.stdout)["state"] == "cancelled"


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

    # --format ome-zarr: each result a zipped OME-Zarr store with the OME-TIFF's metadata
    import ngff_zarr as nz

    zarr_out = tmp_path / "enhanced-zarr"
    run = embedded_service.cli(
        "enhance-remote",
        *("--pairing", str(demo.pairing), "--version", "1", "--format", "ome-zarr"),
        *(str(inputs), "--out", str(zarr_out)),
        key=demo.lab_key,
    )
    assert "2 of 2 enhanced image(s) written" in run.stdout, run.stdout + run.stderr[-2000:]
    tiff = read_back(out / "field-500_enhanced.ome.tif").pixels
    multiscales = nz.from_ome_zarr(str(zarr_out / "field-500_enhanced.ome.zarr.zip"))
    image = multiscales.images[0]
    assert image.data.shape == (3, 128, 96) and image.data.dtype == np.float32
    assert [c.label for c in multiscales.metadata.omero.channels] == [c.name for c in tiff.channels]
    assert image.scale["x"] == pytest.approx(tiff.physical_size_x)
    assert image.scale["y"] == pytest.approx(tiff.physical_size_y)
    assert image.axes_units["x"] == "micrometer" and len(multiscales.images) >= 2
    np.testing.assert_allclose(
        np.asarray(image.data), tifffile.imread(out / "field-500_enhanced.ome.tif"), atol=1e-5
    )


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


# --------------------------------------------------------------------------- the registry


CHANNELS = [
    {"name": "Hoechst", "fluorophore": "Hoechst 33342", "excitation_nm": 350, "emission_nm": 461},
    {"name": "AF488", "fluorophore": "Alexa Fluor 488", "excitation_nm": 495, "emission_nm": 520},
    {"name": "AF555", "fluorophore": "Alexa Fluor 555", "excitation_nm": 555, "emission_nm": 565},
]
OPTICS = ("--magnification", "60", "--na", "1.4", "--immersion-index", "1.515")
PIXEL_SIZE_UM = 0.08


@dataclass
class Network:
    """A second network, registered with the registry commands only."""

    institutions: dict[str, int]
    microscopes: dict[str, int]
    pairing: int
    keys: dict[str, str]


def _json(run: subprocess.CompletedProcess[str]) -> dict | list:
    return json.loads(run.stdout)


def _one_line_refusal(run: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2 and one `error:` line on stderr holding each needle; nothing on stdout."""
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("error: ") and run.stderr.strip().count("\n") == 0, run.stderr
    assert run.stdout == "" and "Traceback" not in run.stderr
    for needle in needles:
        assert needle in run.stderr, (needle, run.stderr)


@pytest.fixture(scope="module")
def network(embedded_service: EmbeddedService, tmp_path_factory: pytest.TempPathFactory) -> Network:
    cli = embedded_service.cli
    institutions = {}
    for side, name, country in (("lq", "CLI Widefield Lab", "PL"), ("hq", "CLI Core", "CH")):
        made = cli(
            "institutions",
            "create",
            *("--name", name, "--country", country, "--contact-email", f"{side}@example.org"),
            "--json",
        )
        institutions[side] = _json(made)["id"]

    # One microscope's channels as --channel options, the other's as a JSON file.
    lq = cli(
        "microscopes",
        "create",
        *("--institution", str(institutions["lq"]), "--name", "CLI WF 60x"),
        *("--modality", "widefield", *OPTICS, "--pixel-size", str(PIXEL_SIZE_UM)),
        *("--channel", "Hoechst:Hoechst 33342:350:461"),
        *("--channel", "AF488:Alexa Fluor 488:495:520"),
        *("--channel", "AF555:Alexa Fluor 555:555:565"),
    )
    created = re.fullmatch(
        r"microscope (\d+) created: CLI WF 60x \(widefield, NA 1\.4, "
        r"channels Hoechst,AF488,AF555\)\n",
        lq.stdout,
    )
    assert created, lq.stdout
    channels = tmp_path_factory.mktemp("registry") / "channels.json"
    channels.write_text(json.dumps(CHANNELS))
    hq = cli(
        "microscopes",
        "create",
        *("--institution", str(institutions["hq"]), "--name", "CLI Confocal 63x"),
        *("--modality", "confocal", *OPTICS, "--pixel-size", str(PIXEL_SIZE_UM)),
        *("--channels-file", str(channels), "--make-model", "simulated", "--json"),
    )
    microscopes = {"lq": int(created.group(1)), "hq": _json(hq)["id"]}

    pairing = cli(
        "pairings",
        "create",
        *("--name", "cli wf-to-confocal", "--lq", str(microscopes["lq"])),
        *("--hq", str(microscopes["hq"]), "--json"),
    )
    keys = {}
    for side, role in (("lq", "lab"), ("hq", "partner")):
        issued = cli("keys", "create", "--institution", str(institutions[side]), "--role", role)
        assert f"{role} key" in issued.stderr and "shown once" in issued.stderr
        keys[side] = issued.stdout.strip()
        assert keys[side].startswith("psk_") and "\n" not in keys[side]
    return Network(institutions, microscopes, _json(pairing)["id"], keys)


def test_the_registry_through_the_command_line(
    embedded_service: EmbeddedService, network: Network
) -> None:
    cli = embedded_service.cli
    listed = _json(cli("institutions", "list", "--name", "cli ", "--json"))
    assert sorted(i["id"] for i in listed) == sorted(network.institutions.values())
    table = cli("institutions", "list", "--name", "cli ").stdout.splitlines()
    assert table[0].split() == ["id", "name", "country", "contact", "created"]
    assert len(table) == 3 and "CLI Widefield Lab" in table[1] and "PL" in table[1].split()
    shown = cli("institutions", "show", str(network.institutions["hq"])).stdout
    assert "name:" in shown and "CLI Core" in shown and "hq@example.org" in shown

    lq = _json(cli("microscopes", "show", str(network.microscopes["lq"]), "--json"))
    hq = _json(cli("microscopes", "show", str(network.microscopes["hq"]), "--json"))
    for scope in (lq, hq):
        assert scope["channels"] == [
            {
                **c,
                "excitation_nm": float(c["excitation_nm"]),
                "emission_nm": float(c["emission_nm"]),
            }
            for c in CHANNELS
        ]
        assert scope["numerical_aperture"] == 1.4 and scope["pixel_size_um"] == PIXEL_SIZE_UM
    assert hq["make_model"] == "simulated" and hq["modality"] == "confocal"
    shown = cli("microscopes", "show", str(network.microscopes["hq"])).stdout
    assert "channel" in shown and re.search(r"AF555\s+Alexa Fluor 555\s+555\s+565", shown)
    mine = _json(
        cli("microscopes", "list", "--institution", str(network.institutions["lq"]), "--json")
    )
    assert [m["id"] for m in mine] == [network.microscopes["lq"]]

    pairing = str(network.pairing)
    shown_pairing = _json(cli("pairings", "show", pairing, "--json"))
    assert [(c["lq_channel"], c["hq_channel"]) for c in shown_pairing["channel_map"]] == [
        (c["name"], c["name"]) for c in CHANNELS
    ]
    rows = cli("pairings", "list", "--microscope", str(network.microscopes["hq"])).stdout
    assert "cli wf-to-confocal" in rows and "Hoechst→Hoechst" in rows

    readiness = cli("pairings", "readiness", pairing, "--wait", "120")
    assert readiness.stdout.startswith(f"pairing {pairing}: ready"), readiness.stdout
    assert "Hoechst→Hoechst" in readiness.stdout and "sampled" in readiness.stdout
    report = _json(cli("pairings", "readiness", pairing, "--json"))
    assert report["state"] == "succeeded" and report["report"]["ready"] is True
    again = cli("pairings", "readiness", pairing, "--report", str(report["id"]), "--json")
    assert _json(again)["id"] == report["id"]

    keys = _json(cli("keys", "list", "--institution", str(network.institutions["lq"]), "--json"))
    assert [k["role"] for k in keys] == ["lab"]
    assert network.keys["lq"].startswith(keys[0]["key_prefix"])
    spare = _json(
        cli(
            "keys",
            "create",
            *("--institution", str(network.institutions["lq"]), "--role", "lab"),
            *("--label", "to revoke", "--json"),
        )
    )
    assert cli("institutions", "list", key=spare["key"]).returncode == 0
    revoked = cli("keys", "revoke", str(spare["id"]))
    assert f"key {spare['id']} revoked" in revoked.stdout
    listed_keys = _json(cli("keys", "list", "--role", "lab", "--json"))
    assert next(k for k in listed_keys if k["id"] == spare["id"])["revoked_at"]
    _one_line_refusal(cli("institutions", "list", key=spare["key"], check=False), "401", "revoked")


def test_refusals_are_one_line_and_exit_2(
    embedded_service: EmbeddedService, network: Network, demo: Demo
) -> None:
    """Registry writes need an admin key: a lab key gets the service's 403 in one line. A key
    of an institution outside a pairing does not even see it (404). Bad channels and optics
    are refused before or by the service, naming what is wrong."""
    cli = embedded_service.cli
    lab = network.keys["lq"]
    admin_only = [
        ("institutions", "create", "--name", "X", "--country", "PL", "--contact-email", "x@y.org"),
        (
            "microscopes",
            "create",
            *("--institution", str(network.institutions["lq"]), "--name", "X"),
            *("--modality", "other", *OPTICS, "--pixel-size", "0.1", "--channel", "A::400:500"),
        ),
        ("pairings", "create", "--name", "X", "--lq", "1", "--hq", "2"),
        ("keys", "list"),
        ("keys", "create", "--institution", str(network.institutions["lq"]), "--role", "admin"),
        ("keys", "revoke", "1"),
    ]
    for command in admin_only:
        _one_line_refusal(cli(*command, key=lab, check=False), "403", "needs an admin key")

    outsider = demo.lab_key  # the demo's wide-field lab takes no part in this pairing
    for command in (
        ("pairings", "show", str(network.pairing)),
        ("pairs", "list", "--pairing", str(network.pairing)),
        ("microscopes", "show", str(network.microscopes["hq"])),
    ):
        _one_line_refusal(cli(*command, key=outsider, check=False), "404", "does not exist")

    scope = ("microscopes", "create", "--institution", str(network.institutions["lq"]))
    scope += ("--name", "Y", "--modality", "other", "--pixel-size", "0.1")
    _one_line_refusal(
        cli(*scope, *OPTICS, "--channel", "A:400", check=False), "expected NAME:FLUOROPHORE"
    )
    _one_line_refusal(cli(*scope, *OPTICS, check=False), "--channel (repeated) or")
    too_wide = ("--magnification", "60", "--na", "1.6", "--immersion-index", "1.515")
    _one_line_refusal(
        cli(*scope, *too_wide, "--channel", "A::400:500", check=False),
        "422",
        "numerical_aperture 1.6 cannot exceed immersion_index",
    )


def _tiff(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path,
        array,
        photometric="minisblack",
        metadata={"axes": "CYX"},
        resolution=(1e4 / PIXEL_SIZE_UM, 1e4 / PIXEL_SIZE_UM),
        resolutionunit="CENTIMETER",
    )


def test_pairs_are_reviewed_through_the_command_line(
    embedded_service: EmbeddedService, network: Network, tmp_path: Path
) -> None:
    """Two good fields and one whose confocal channels are swapped: the aligner rejects that
    one, keeping its preview; the lab looks at it and accepts it by hand. Then it rejects a
    good field by hand with a reason, finds it among the rejected pairs, and accepts it again."""
    cli = embedded_service.cli
    for i, field in enumerate(("cell-00", "cell-01", "swapped")):
        lq, hq, _ = make_pair((128, 128), seed=40 + i, pixel_size_um=PIXEL_SIZE_UM, wf_na=1.4)
        _tiff(tmp_path / "lq" / f"{field}.tif", lq)
        _tiff(tmp_path / "hq" / f"{field}.tif", hq[[1, 0, 2]] if field == "swapped" else hq)
    pairing = ("--pairing", str(network.pairing))
    lab, partner = network.keys["lq"], network.keys["hq"]
    cli("upload", *pairing, "--side", "lq", str(tmp_path / "lq"), "--wait", "0", key=lab)
    uploaded = cli(
        "upload", *pairing, "--side", "hq", str(tmp_path / "hq"), key=partner, check=False
    )
    assert uploaded.returncode == 1, uploaded.stdout + uploaded.stderr  # one pair rejected
    assert "pairs: 2 accepted, 1 rejected" in uploaded.stdout, uploaded.stdout

    pairs = {p["field_id"]: p for p in _json(cli("pairs", "list", *pairing, "--json", key=lab))}
    assert {f: p["status"] for f, p in pairs.items()} == {
        "cell-00": "accepted",
        "cell-01": "accepted",
        "swapped": "rejected",
    }
    swapped = pairs["swapped"]
    rejected = cli("pairs", "list", *pairing, "--status", "rejected", key=partner).stdout
    header, row = rejected.splitlines()
    assert header.split()[:4] == ["id", "field", "status", "NCC"]
    assert row.split()[:3] == [str(swapped["id"]), "swapped", "rejected"]
    assert "alignment score too low" in row and row.endswith("…")  # cut; --json has all

    preview = tmp_path / "swapped.png"
    shown = cli("pairs", "preview", *pairing, str(swapped["id"]), "--out", str(preview), key=lab)
    assert f"written to {preview}" in shown.stdout
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    accepted = cli("pairs", "accept", *pairing, str(swapped["id"]), key=lab)
    assert f"pair {swapped['id']} (field swapped) accepted by hand" in accepted.stdout
    after = _json(cli("pairs", "list", *pairing, "--field", "swapped", "--json"))
    assert after[0]["status"] == "accepted" and after[0]["accepted_manually_at"]
    _one_line_refusal(
        cli("pairs", "accept", *pairing, str(swapped["id"]), key=lab, check=False),
        "409",
        "only a rejected pair",
    )

    # The lab takes a field the gate let through out of training, then takes it back.
    cell = str(pairs["cell-00"]["id"])
    rejected = cli("pairs", "reject", *pairing, cell, "--reason", "out of focus", key=lab)
    assert f"pair {cell} (field cell-00) rejected by hand: out of focus" in rejected.stdout
    _, row = cli("pairs", "list", *pairing, "--status", "rejected").stdout.splitlines()
    assert row.split()[:3] == [cell, "cell-00", "rejected"] and row.endswith("out of focus")
    shown = _json(cli("pairs", "list", *pairing, "--field", "cell-00", "--json", key=partner))
    assert shown[0]["rejected_manually_at"] and shown[0]["reason"] == "out of focus"
    _one_line_refusal(
        cli("pairs", "reject", *pairing, cell, "--reason", "again", key=lab, check=False),
        "409",
        "only an accepted pair",
    )
    _one_line_refusal(
        cli("pairs", "reject", *pairing, str(swapped["id"]), "--reason", " ", check=False), "422"
    )
    readmitted = cli("pairs", "accept", *pairing, cell, key=lab)
    assert f"pair {cell} (field cell-00) accepted by hand" in readmitted.stdout
    statuses = {p["field_id"]: p["status"] for p in _json(cli("pairs", "list", *pairing, "--json"))}
    assert set(statuses.values()) == {"accepted"}, statuses
    _one_line_refusal(
        cli("pairs", "preview", *pairing, "999999", "--out", str(tmp_path / "no.png"), check=False),
        "404",
    )
    assert not list(tmp_path.glob("no.png*"))  # no half file either


def test_datasets_aliases_report_and_model(
    embedded_service: EmbeddedService, demo: Demo, tmp_path: Path
) -> None:
    cli = embedded_service.cli
    pairing = ("--pairing", str(demo.pairing))
    datasets = _json(cli("datasets", "list", *pairing, "--json", key=demo.lab_key))
    assert int(demo.dataset) in [d["id"] for d in datasets]
    header = cli("datasets", "list", *pairing).stdout.splitlines()[0]
    assert header.split() == ["id", "created", "seed", "train", "validation", "test", "digest"]
    shown = cli("datasets", "show", *pairing, demo.dataset, key=demo.lab_key).stdout
    assert f"dataset: {demo.dataset}" in shown and "4 train, 2 validation, 2 test" in shown
    assert re.search(r"cell-\d\d\s+(train|validation|test)\s+\d+", shown)
    dataset = _json(cli("datasets", "show", *pairing, demo.dataset, "--json"))
    assert len(dataset["members"]) == 8

    aliases = {a["name"]: a["version"] for a in _json(cli("aliases", "list", *pairing, "--json"))}
    assert aliases["production"] == 1
    table = cli("aliases", "list", *pairing, key=demo.lab_key).stdout.splitlines()
    assert table[0].split() == ["alias", "version", "moved"]
    assert any(row.split()[:2] == ["production", "1"] for row in table[1:])
    events = _json(cli("aliases", "log", *pairing, "--json", key=demo.lab_key))
    first = next(e for e in events if e["alias"] == "production")
    assert first["to_version"] == 1 and first["from_version"] is None
    log = cli("aliases", "log", *pairing).stdout.splitlines()
    assert log[0].split()[:4] == ["when", "alias", "action", "from"]
    assert any(" production " in row for row in log[1:])

    version = ("--version", "1")
    reports = tmp_path / "reports"
    written = cli("report", *pairing, *version, "--out", str(reports), key=demo.lab_key)
    assert str(reports / "v1-report.json") in written.stdout
    report = json.loads((reports / "v1-report.json").read_text())
    assert "generated" in report["report"]["medians"]
    assert (reports / "v1-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = _json(cli("report", *pairing, *version, "--json"))
    assert printed.keys() == report.keys() and printed["training"] == report["training"]

    model = tmp_path / "v1.zip"
    saved = cli("model", *pairing, *version, "--out", str(model), key=demo.lab_key)
    assert f"model of version 1 written to {model}" in saved.stdout
    assert f"pairscope enhance --model {model}" in saved.stdout
    assert zipfile.is_zipfile(model) and zipfile.ZipFile(model).namelist()
    _one_line_refusal(
        cli("model", *pairing, "--version", "99", "--out", str(tmp_path / "v99.zip"), check=False),
        "404",
    )
    assert not list(tmp_path.glob("v99.zip*"))


def test_overrides_and_inputs_are_read_as_typed(tmp_path: Path) -> None:
    from pairscope.client import ClientError
    from pairscope.inputs import collect_tiffs, output_name
    from pairscope.jobs_cli import parse_overrides

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


def test_every_option_and_command_is_explained() -> None:
    """`pairscope ... -h` is the manual: every option says what it does, every command what it
    is for and how it is typed."""
    from pairscope.cli import build_parser

    def walk(parser: argparse.ArgumentParser, name: str) -> Iterator[str]:
        if not (parser.description or "").strip():
            yield f"{name}: no description"
        if "example" not in (parser.epilog or "") or "pairscope " not in (parser.epilog or ""):
            yield f"{name}: no example"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                if not action.help:
                    yield f"{name} COMMAND: no help"
                for command, child in action.choices.items():
                    yield from walk(child, f"{name} {command}")
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                yield f"{name} {'/'.join(action.option_strings) or action.dest}: no help"

    parser = build_parser()
    assert list(walk(parser, "pairscope")) == []
    upload = parser._subparsers._group_actions[0].choices["upload"].format_help()
    assert re.search(r"\(default:\s+120\)", upload), upload  # defaults are shown


def test_usage_errors_exit_2_without_a_traceback(tmp_path: Path) -> None:
    for args in (("versions",), ("enhance", "--model", "m", "a", "b", "c"), ("no-such-command",)):
        run = subprocess.run([*PAIRSCOPE, *args], capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 2, (args, run.stderr)
        assert "error:" in run.stderr and "Traceback" not in run.stderr


def test_unreachable_service_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Nothing listens at the URL: every client command says so in one line and exits 1 (the
    command was right; the service is not there)."""
    url = f"http://127.0.0.1:{free_port()}"
    folder = tmp_path / "fields"
    folder.mkdir()
    lq, _, _ = make_pair((64, 64), seed=1, pixel_size_um=0.08)
    tifffile.imwrite(folder / "cell.tif", lq, photometric="minisblack", metadata={"axes": "CYX"})
    pairing, job = ("--pairing", "1"), ("--job", "1")
    commands = [
        ("versions", *pairing),
        ("versions", *pairing, "--json"),
        ("snapshot", *pairing),
        ("train", *pairing, "--dataset", "1"),
        ("follow", *pairing, *job),
        ("status", *pairing, *job),
        ("cancel", *pairing, *job),
        ("promote", *pairing, "--version", "1"),
        ("rollback", *pairing),
        ("enhance-remote", *pairing, str(folder), "--out", str(tmp_path / "out")),
        ("upload", *pairing, "--side", "lq", str(folder)),
        ("institutions", "list"),
        ("pairs", "list", *pairing, "--json"),
        ("model", *pairing, "--version", "1", "--out", str(tmp_path / "m.zip")),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    for command in commands:
        run = subprocess.run(
            [*PAIRSCOPE, *command, "--url", url, "--key", "psk_nobody"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert run.returncode == 1, (command, run.stdout, run.stderr)
        errors = [line for line in run.stderr.splitlines() if "error:" in line]
        said = re.search(rf"cannot (reach|download \S+ from) {re.escape(url)}", errors[0])
        assert len(errors) == 1 and said, (command, run.stderr)
        assert "Traceback" not in run.stderr, command
