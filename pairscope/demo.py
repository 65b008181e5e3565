"""`pairscope demo`: the whole network working, through the REST API of a running service.

Everything goes over HTTP exactly as two real labs and an operator would do it, so the demo is
also the shortest proof that a deployment works: an operator registers a wide-field lab and a
confocal core with their microscopes (the paper's optics), pairs them and gives each a key; each
lab uploads its side of synthetic cross-system fields (models/synthetic.py, slightly
misregistered) and the worker aligns them; the wide-field lab snapshots the pairs, fine-tunes the
network's base on them (the base shipped with Pairscope in a new network), gets version 1 with
its evaluation report, promotes it, and enhances a new field.

Names carry a timestamp, so running it again against the same service builds a second network
beside the first instead of colliding with it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import numpy as np

from pairscope import jobs_cli
from pairscope.client import Client, ClientError, service_url

if TYPE_CHECKING:
    from api.settings import Settings

# The tiny preset made just big enough to learn visibly on the synthetic fields in seconds on two
# CPU cores: 16 base filters and a gentler adversarial weight lift the test-field PSNR by about
# 4-6 dB over the input (the plain tiny preset barely moves it); 600 steps take ~15 s there.
TRAINING = {
    "patch_size": 64,
    "adv_weight": 0.001,
    "checkpoint_every": 100,
    "val_every": 50,
}
# the network of a demo started from scratch (a service with no base: PAIRSCOPE_SHIPPED_BASE off)
SCRATCH_NETWORK = {"depth": 3, "base_filters": 16}
DEFAULT_STEPS = 600
PIXEL_SIZE_UM = 0.08  # Nyquist-samples the bluest channel at NA 1.4 (0.61·461 nm / 1.4 / 2.3)
MISREGISTRATION = {"shift": (2.0, -3.0), "rotation_deg": 0.5}
CHANNELS = [
    {"name": "Hoechst", "fluorophore": "Hoechst 33342", "excitation_nm": 350, "emission_nm": 461},
    {"name": "AF488", "fluorophore": "Alexa Fluor 488", "excitation_nm": 495, "emission_nm": 520},
    {"name": "AF555", "fluorophore": "Alexa Fluor 555", "excitation_nm": 555, "emission_nm": 565},
]
OPTICS = {"numerical_aperture": 1.4, "immersion_index": 1.515, "pixel_size_um": PIXEL_SIZE_UM}
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class DemoError(Exception):
    """A step of the demo could not be completed; the message says which and why."""


@dataclass
class DemoResult:
    url: str
    pairing: int
    version: int
    keys: dict[str, str]
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _say(text: str) -> None:
    print(text, flush=True)


def _tiff(path: Path, array: np.ndarray, pixel_size_um: float) -> None:
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    resolution = (1e4 / pixel_size_um, 1e4 / pixel_size_um)  # pixels per cm
    tifffile.imwrite(
        path,
        array,
        photometric="minisblack",
        metadata={"axes": "CYX"},
        resolution=resolution,
        resolutionunit="CENTIMETER",
    )


def wait_ready(url: str, timeout_s: float = 120) -> None:
    """Wait for the service's /readyz (database, objects and broker all answer)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url + "/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise DemoError(f"the service at {url} is not ready after {timeout_s:g} s ({last})")


def local_settings(url: str) -> Settings:
    """The embedded settings of the service at `url` when it runs on this machine from this
    folder (so a key issued here is one it accepts); otherwise a ClientError saying what the
    demo needs instead."""
    from api.settings import get_settings

    settings = get_settings()
    local = (urlsplit(url).hostname or "") in LOOPBACK
    embedded = not settings.database_url
    if local and embedded and (settings.data_dir / "pairscope.sqlite").exists():
        return settings
    where = "" if local and embedded else " on the service's machine"
    raise ClientError(
        "the demo needs an admin key: pass --key or set PAIRSCOPE_API_KEY (issue one"
        f"{where} with `pairscope admin create-key --institution NAME`, or run the demo "
        "from the folder `pairscope serve` runs in)"
    )


def issue_key(settings: Settings | None, say: jobs_cli.Say = _say) -> str:
    """A new admin key, issued as `pairscope admin create-key` issues it, printed once."""
    from pairscope.admin import create_key

    assert settings is not None, "issue_key needs local_settings() first"
    issued = create_key(settings, "Network Operations", "admin", "pairscope demo")
    say(f"issued an admin key for 'Network Operations' (shown once): {issued.key}")
    return issued.key


def _check_admin(client: Client, url: str, issued_here: bool) -> None:
    try:
        me = client.get("/me")
    except ClientError as exc:
        if exc.status == 401 and issued_here:
            raise ClientError(
                f"the service at {url} does not accept the key issued in ./var: it uses "
                "another database; pass --key"
            ) from exc
        raise
    if me["role"] != "admin":
        raise ClientError(
            f"the demo registers institutions: it needs an admin key, not a {me['role']} key"
        )


def _microscope(client: Client, institution: int, name: str, modality: str, mag: int) -> int:
    body = {
        "institution_id": institution,
        "name": name,
        "modality": modality,
        "make_model": "simulated (models/synthetic.py)",
        "objective_magnification": mag,
        "channels": CHANNELS,
        **OPTICS,
    }
    return int(client.post("/microscopes", json=body)["id"])


def _readiness(client: Client, pairing: int, say: jobs_cli.Say, timeout_s: float = 120) -> None:
    report = client.post(f"/pairings/{pairing}/readiness")
    deadline = time.monotonic() + timeout_s
    while report["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        report = client.get(f"/pairings/{pairing}/readiness/{report['id']}")
    if report["state"] != "succeeded":
        raise DemoError(
            f"no worker produced the readiness report ({report['state']}: {report.get('error')});"
            " is a worker running (`pairscope serve` starts one)?"
        )
    body = report["report"]
    first = body["channels"][0]
    say(
        f"  readiness: {'ready' if body['ready'] else 'NOT ready'}; {first['lq_channel']} "
        f"resolves {first['lq_resolution_um']} µm, Nyquist pixel {first['lq_nyquist_pixel_um']} "
        f"µm (ours {PIXEL_SIZE_UM} µm); LQ→HQ scale {body['lq_to_hq_scale']:g}"
    )
    for warning in body["warnings"] + body["blocking"]:
        say(f"  ! {warning}")


@dataclass
class _Network:
    """What the first steps made and the later ones use."""

    url: str
    tag: str
    admin: Client
    lab: Client
    core: Client
    pairing: int
    keys: dict[str, str]


def run_demo(
    url: str | None = None,
    key: str | None = None,
    out_dir: Path = Path("demo-output"),
    fields: int = 8,
    size: int = 160,
    steps: int = DEFAULT_STEPS,
    say: jobs_cli.Say = _say,
    wait_s: float = 30,
) -> DemoResult:
    """Run every step against the service at `url`; returns what it made."""
    url = service_url(url)
    out_dir = out_dir.resolve()
    started = time.monotonic()
    tag = f"demo {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}"
    step = iter(range(1, 10))

    def head(text: str) -> None:
        say(f"\n[{next(step)}/9] {text}")

    say(f"Pairscope demo against {url} ({tag}); files go to {out_dir}")
    key = key or os.environ.get("PAIRSCOPE_API_KEY")
    settings = None if key else local_settings(url)  # fail before waiting for the service
    wait_ready(url, wait_s)
    admin = Client(url, key or issue_key(settings, say))
    _check_admin(admin, url, issued_here=not key)

    net = _register_network(admin, url, tag, head, say)
    head(f"Each lab uploads its side of {fields} synthetic fields; the worker aligns them")
    synthetic = _upload_fields(net, out_dir / "synthetic-fields", fields, size, say)
    head("The wide-field lab freezes the aligned pairs into a dataset snapshot")
    dataset = jobs_cli.create_snapshot(
        net.lab, net.pairing, {"train": 0.5, "validation": 0.25, "test": 0.25}, seed=0, say=say
    )
    head("A worker fine-tunes the network's base on it (a `tiny` schedule)")
    job_id, number = _train_version(net, dataset["id"], steps, say)
    result = DemoResult(
        url,
        net.pairing,
        number,
        {"wide-field lab": net.keys["lq"], "confocal core": net.keys["hq"]},
    )
    head(f"Version {number}: its evaluation report")
    _download_report(net, number, out_dir, result, say)
    head(f"Version {number} is promoted to production")
    _promote(net, number, result, say)
    head("The wide-field lab enhances a new field with the production version")
    _enhance_new_field(net, out_dir, result, say)
    head("Done")
    say(
        f"In {time.monotonic() - started:.0f} s, through {url}/api/v1: 2 institutions, "
        f"2 microscopes, pairing {net.pairing}, {fields} fields uploaded from both sides and "
        f"aligned, dataset {dataset['id']}, training job {job_id} → version {number}, promoted "
        "to production, and one new field enhanced."
    )
    _where_to_look(net, result, synthetic, fields, say)
    return result


def _register_network(
    admin: Client, url: str, tag: str, head: jobs_cli.Say, say: jobs_cli.Say
) -> _Network:
    """Steps 1-2: two institutions with a microscope each, paired, a key per lab, readiness."""
    head("The operator registers a wide-field lab and a confocal core")
    labs = {}
    for side, name in (("lq", f"Widefield Lab ({tag})"), ("hq", f"Confocal Core ({tag})")):
        labs[side] = admin.post(
            "/institutions",
            json={"name": name, "country": "PL", "contact_email": "demo@example.org"},
        )["id"]
        say(f"  institution {labs[side]}: {name}")
    lq_scope = _microscope(admin, labs["lq"], f"Wide-field 60x/1.4 ({tag})", "widefield", 60)
    hq_scope = _microscope(admin, labs["hq"], f"Confocal 63x/1.4 ({tag})", "confocal", 63)
    say(
        f"  microscopes {lq_scope} (wide-field) and {hq_scope} (confocal): NA 1.4, oil n 1.515, "
        f"{PIXEL_SIZE_UM} µm pixels, channels Hoechst 461 nm, AF488 520 nm, AF555 565 nm"
    )

    head("They are paired, each lab gets its own key, and a worker checks the optics")
    pairing = admin.post(
        "/pairings",
        json={
            "name": f"wf-to-confocal ({tag})",
            "lq_microscope_id": lq_scope,
            "hq_microscope_id": hq_scope,
        },
    )["id"]
    say(f"  pairing {pairing}: channels matched by name")
    keys = {
        side: admin.post(
            "/keys",
            json={"institution_id": labs[side], "role": role, "label": f"pairscope demo {side}"},
        )["key"]
        for side, role in (("lq", "lab"), ("hq", "partner"))
    }
    say("  a lab key for the wide-field lab, a partner key for the confocal core")
    _readiness(admin, pairing, say)
    return _Network(
        url, tag, admin, Client(url, keys["lq"]), Client(url, keys["hq"]), pairing, keys
    )


def _upload_fields(net: _Network, folder: Path, fields: int, size: int, say: jobs_cli.Say) -> Path:
    """Step 3: simulate misregistered fields, upload each side with its lab's key."""
    from models.synthetic import make_pair
    from pairscope.upload import upload_folder

    for i in range(fields):
        lq, hq, _ = make_pair(
            (size, size), seed=i, pixel_size_um=PIXEL_SIZE_UM, wf_na=1.4, **MISREGISTRATION
        )
        _tiff(folder / "wide-field" / f"cell-{i:02d}.tif", lq, PIXEL_SIZE_UM)
        _tiff(folder / "confocal" / f"cell-{i:02d}.tif", hq, PIXEL_SIZE_UM)
    say(
        f"  simulated {fields} fields of {size}×{size} px, the confocal side shifted by "
        f"{MISREGISTRATION['shift']} px and turned {MISREGISTRATION['rotation_deg']}°"
    )
    upload_folder(net.lab, net.pairing, "lq", folder / "wide-field", wait_s=0)
    counts = upload_folder(net.core, net.pairing, "hq", folder / "confocal", wait_s=300)
    if counts.get("accepted", 0) < 3:
        raise DemoError(f"only {counts.get('accepted', 0)} pairs were accepted; need 3 or more")
    return folder


def _train_version(net: _Network, dataset: int, steps: int, say: jobs_cli.Say) -> tuple[int, int]:
    """Step 5: train, follow, and return (job id, version number). The new pairing starts from
    the network's base (the one shipped with Pairscope while the network has none of its own),
    keeping its architecture; a service without any base trains from scratch."""
    overrides = {**TRAINING, "steps": steps}
    try:
        job = jobs_cli.start_training(
            net.lab, net.pairing, dataset, "tiny", overrides, seed=0, say=say, init="base"
        )
    except ClientError as exc:
        if exc.status != 422 or "base" not in str(exc):
            raise
        say(f"no base to start from ({exc}); training from scratch")
        job = jobs_cli.start_training(
            net.lab, net.pairing, dataset, "tiny", {**overrides, **SCRATCH_NETWORK}, seed=0, say=say
        )
    finished = jobs_cli.follow_training(net.lab, net.pairing, job["id"], say=say)
    if finished is None:
        raise DemoError("interrupted while following the training job")
    version = jobs_cli.report_finished(net.lab, net.pairing, finished, say=say)
    if version is None:
        raise DemoError(f"training job {job['id']} did not succeed: {finished.get('reason')}")
    return int(job["id"]), int(version["number"])


def _download_report(
    net: _Network, number: int, out_dir: Path, result: DemoResult, say: jobs_cli.Say
) -> None:
    """Step 6: the version's report picture and JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("report.png", "report.json"):
        dest = out_dir / f"version-{number}-{suffix}"
        net.lab.download(f"/pairings/{net.pairing}/versions/{number}/{suffix}", dest)
        result.files.append(dest)
    say(f"  box plots and an LQ / Richardson–Lucy / generated / HQ panel: {result.files[0]}")


def _promote(net: _Network, number: int, result: DemoResult, say: jobs_cli.Say) -> None:
    """Step 7: promote; a tiny model below the gate is promoted by the admin with a reason."""
    if not jobs_cli.promote(net.lab, net.pairing, number, say=say):
        say(
            "  the tiny demo model does not pass the quality gate; the operator overrides it "
            'with the reason "demo" (kept in the audit log)'
        )
        jobs_cli.promote(net.admin, net.pairing, number, override_reason="demo", say=say)
        result.notes.append("promotion: the quality gate refused; overridden by the admin key")


def _enhance_new_field(net: _Network, out_dir: Path, result: DemoResult, say: jobs_cli.Say) -> None:
    """Step 8: enhance a field no model saw and score it against its simulated confocal truth."""
    import tifffile

    from models.metrics import score_image
    from models.synthetic import make_pair

    new_lq, new_hq, _ = make_pair((192, 160), seed=1000, pixel_size_um=PIXEL_SIZE_UM, wf_na=1.4)
    new_path = out_dir / "new-field.tif"
    truth_path = out_dir / "new-field_confocal-truth.tif"
    _tiff(new_path, new_lq, PIXEL_SIZE_UM)
    _tiff(truth_path, new_hq, PIXEL_SIZE_UM)
    job_done, written, failed = jobs_cli.enhance_remote(
        net.lab, net.pairing, [new_path], out_dir, out_dtype="float32", say=say
    )
    if job_done is None or failed or new_path.name not in written:
        raise DemoError(f"the enhancement did not succeed: {failed or 'interrupted'}")
    output = written[new_path.name]
    item = job_done["items"][0]
    preview = out_dir / "new-field_preview.png"
    net.lab.download(
        f"/pairings/{net.pairing}/enhancements/{job_done['id']}/items/{item['id']}/preview.png",
        preview,
    )
    result.files += [new_path, truth_path, output, preview]
    enhanced = tifffile.imread(output).astype(np.float32)
    truth = new_hq.astype(np.float32)
    before, after = score_image(new_lq.astype(np.float32), truth), score_image(enhanced, truth)
    say(
        f"  against the simulated confocal truth: PSNR {before['psnr']:.2f} → "
        f"{after['psnr']:.2f} dB, SSIM {before['ssim']:.3f} → {after['ssim']:.3f}"
    )


def _where_to_look(
    net: _Network, result: DemoResult, synthetic: Path, fields: int, say: jobs_cli.Say
) -> None:
    """Step 9's pointers: docs, the version, the keys and every file written."""
    for note in result.notes:
        say(f"  ({note})")
    url, base = net.url, f"/pairings/{net.pairing}/versions/{result.version}"
    say("Where to look:")
    say(f"  API docs            {url}/docs")
    say(f"  version {result.version}           {url}/api/v1{base}  (with the lab key below)")
    shell = f"pairscope versions --pairing {net.pairing} --url {url} --key LAB_KEY"
    say(f"  in the shell        {shell}")
    say(f"  keys (demo only)    wide-field lab {net.keys['lq']}")
    say(f"                      confocal core  {net.keys['hq']}")
    say("Files written:")
    for path in result.files:
        say(f"  {path}")
    say(f"  {synthetic}/  (the {fields} uploaded fields, both sides)")


class BackgroundDemo:
    """`pairscope serve --demo`: once the API answers /readyz, run `pairscope demo` against it
    in a child process (its own interpreter, so its numpy work never slows the server's event
    loop), with the access log muted meanwhile so the demo's lines stay readable."""

    def __init__(self, url: str, key: str, out_dir: Path = Path("demo-output")) -> None:
        self.url, self.key, self.out_dir = url, key, out_dir
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name="pairscope-demo", daemon=True)

    def start(self) -> BackgroundDemo:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            wait_ready(self.url)
        except DemoError as exc:
            print(f"demo not started: {exc}", file=sys.stderr, flush=True)
            return
        access = logging.getLogger("uvicorn.access")
        access.disabled = True
        try:
            if self._stopping:
                return
            env = {**os.environ, "PAIRSCOPE_API_KEY": self.key}
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pairscope",
                    "demo",
                    "--url",
                    self.url,
                    "--out",
                    str(self.out_dir),
                ],
                env=env,
            )
            code = self.process.wait()
        finally:
            access.disabled = False
        if code == 0:
            print(
                f"demo finished; the service keeps running on {self.url} (Ctrl-C stops it)",
                flush=True,
            )
        elif not self._stopping:
            print(
                f"demo failed (exit {code}); the service keeps running on {self.url}",
                file=sys.stderr,
                flush=True,
            )

    def stop(self) -> None:
        """End the demo if it is still running (the service is shutting down)."""
        self._stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def loopback_url(host: str, port: int) -> str:
    """The URL a local client uses for a server listening on `host` (wildcards → loopback)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
