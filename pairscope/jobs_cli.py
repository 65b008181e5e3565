"""Client commands for the model life cycle of a pairing: dataset snapshots, training jobs
(followed with a progress bar), versions and their scores, promotion and rollback, and
enhancement of local files on the service. Each is a thin sequence of REST calls; errors are the
service's own, one line each (`ClientError`), so scripts and people read the same thing."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pairscope.client import Client, ClientError
from pairscope.inputs import collect_tiffs, output_folder, output_name
from pairscope.upload import _Progress

FINISHED = ("succeeded", "failed", "cancelled")
METHODS = (("generated", "gen"), ("richardson_lucy", "RL"), ("identity", "id"))
POLL_S = 1.0

Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- snapshots


def create_snapshot(
    client: Client,
    pairing: int,
    fractions: dict[str, float] | None = None,
    seed: int = 0,
    say: Say = _say,
) -> dict[str, Any]:
    """Freeze the pairing's accepted pairs into a dataset, split by field."""
    body: dict[str, Any] = {"seed": seed}
    if fractions is not None:
        body["fractions"] = fractions
    dataset = client.post(f"/pairings/{pairing}/datasets", json=body)
    counts = dataset["counts"]
    say(
        f"dataset {dataset['id']} of pairing {pairing}: "
        f"{counts.get('train', 0)} train, {counts.get('validation', 0)} validation, "
        f"{counts.get('test', 0)} test fields (seed {dataset['seed']})"
    )
    say(f"  digest {dataset['digest']}")
    return dataset


# --------------------------------------------------------------------------- training


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs; values are read as JSON when they parse (400, 0.5, true, null) and as
    text otherwise, so `--set upsampling=bilinear` needs no quotes. The service validates them."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ClientError(f"--set {item!r}: expected key=value")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        overrides[key.strip()] = value
    return overrides


def start_training(
    client: Client,
    pairing: int,
    dataset: int,
    preset: str = "cpu-small",
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    minutes: float | None = None,
    say: Say = _say,
    init: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"dataset_id": dataset, "preset": preset, "overrides": overrides or {}}
    if init is not None:
        body["init"] = init
    if seed is not None:
        body["seed"] = seed
    if minutes is not None:
        body["minutes"] = minutes
    job = client.post(f"/pairings/{pairing}/training-jobs", json=body)
    budget = f", budget {job['minutes']:g} min" if job.get("minutes") else ""
    say(
        f"training job {job['id']} {job['state']} on pairing {pairing}: preset {job['preset']}, "
        f"{job['config']['steps']} steps max{budget}, seed {job['seed']}, dataset {dataset}, "
        f"starts from {job['config'].get('init', 'scratch')}"
    )
    return job


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _training_postfix(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    parts = [f"step {progress.get('step') or 0}/{progress.get('total') or '?'}"]
    if job["state"] == "running" and progress.get("phase") != "evaluating":
        parts.append(f"ETA {_duration(progress.get('eta_s'))}")
    if progress.get("val_psnr") is not None:
        parts.append(
            f"val PSNR {float(progress['val_psnr']):.2f} dB SSIM {float(progress['val_ssim']):.3f}"
        )
    if job.get("stale"):
        parts.append("worker silent")
    return ", ".join(parts)


def _training_phase(job: dict[str, Any]) -> str:
    phase = (job.get("progress") or {}).get("phase")
    if job["state"] == "running" and phase == "evaluating":
        return "evaluating"
    return {"running": "training"}.get(job["state"], job["state"])


def cancel_hint(pairing: int, job_id: int) -> str:
    return f"pairscope cancel --pairing {pairing} --job {job_id}"


def follow_hint(pairing: int, job_id: int) -> str:
    return f"pairscope follow --pairing {pairing} --job {job_id}"


def follow_training(
    client: Client,
    pairing: int,
    job_id: int,
    poll_s: float = POLL_S,
    say: Say = _say,
    show_bar: bool = True,
) -> dict[str, Any] | None:
    """Poll the job until it ends, drawing percent, steps, the worker's ETA and the latest
    validation scores (unless `show_bar` is False: a script reading --json waits quietly).
    Ctrl-C only stops following (the job is the worker's, not ours) and returns None after
    saying how to cancel."""
    bar: tqdm | None = None
    try:
        bar = tqdm(
            total=100.0,
            desc=f"job {job_id} queued",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]",
            disable=not show_bar,
        )
        while True:
            job = client.get(f"/pairings/{pairing}/training-jobs/{job_id}")
            bar.set_description_str(f"job {job_id} {_training_phase(job)}", refresh=False)
            bar.set_postfix_str(_training_postfix(job), refresh=False)
            bar.n = float((job.get("progress") or {}).get("percent") or 0.0)
            bar.refresh()
            if job["state"] in FINISHED:
                return job
            time.sleep(poll_s)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        say(
            f"stopped following; training job {job_id} keeps running on the worker. "
            f"Follow it again: {follow_hint(pairing, job_id)}; stop it: "
            f"{cancel_hint(pairing, job_id)}"
        )
        return None
    finally:
        if bar is not None:
            bar.close()


def job_status(client: Client, pairing: int, job_id: int, say: Say = _say) -> dict[str, Any]:
    """Say where the job is now, in one line: the progress bar's figures, or how it ended."""
    job = client.get(f"/pairings/{pairing}/training-jobs/{job_id}")
    line = f"training job {job_id} {_training_phase(job)}: {_training_postfix(job)}"
    if job["state"] == "succeeded":
        line += f"; version {job['version']}"
    elif job["state"] in FINISHED and job.get("reason"):
        line += f"; {job['reason']}"
    say(line)
    return job


def _float(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def medians_lines(version: dict[str, Any]) -> list[str]:
    """The version's median scores on its evaluation fields, one line per method."""
    metrics = version.get("metrics") or {}
    medians = metrics.get("medians") or {}
    fields = metrics.get("fields") or []
    lines = [
        f"median scores on {len(fields)} {metrics.get('split', 'test')} field(s) "
        "(PSNR dB / SSIM / NRMSE):"
    ]
    names = {
        "generated": f"version {version['number']}",
        "richardson_lucy": "Richardson–Lucy",
        "identity": "input (identity)",
    }
    for method, scores in medians.items():
        lines.append(
            f"  {names.get(method, method):<26} {_float(scores.get('psnr')):7.2f}  "
            f"{_float(scores.get('ssim')):6.3f}  {_float(scores.get('nrmse')):6.3f}"
        )
    return lines


def report_finished(
    client: Client, pairing: int, job: dict[str, Any], say: Say = _say
) -> dict[str, Any] | None:
    """Say how the job ended; for a success, the version and its medians (returned)."""
    if job["state"] != "succeeded":
        say(f"training job {job['id']} {job['state']}: {job.get('reason') or 'no reason given'}")
        return None
    version = client.get(f"/pairings/{pairing}/versions/{job['version']}")
    training = version.get("training") or {}
    note = f" ({job['reason']})" if job.get("reason") else ""
    say(
        f"training job {job['id']} succeeded{note}: version {version['number']}, "
        f"{training.get('steps', '?')} steps in {_duration(training.get('elapsed_s'))} "
        f"on {version.get('device') or '?'}"
    )
    for line in medians_lines(version):
        say(line)
    return version


def cancel_training(client: Client, pairing: int, job_id: int, say: Say = _say) -> dict[str, Any]:
    job = client.post(f"/pairings/{pairing}/training-jobs/{job_id}/cancel")
    if job["state"] == "cancelled":
        say(f"training job {job_id} cancelled ({job.get('reason') or 'before it started'})")
    else:
        say(
            f"training job {job_id}: cancel requested; it stops at its next step "
            f"(now at step {(job.get('progress') or {}).get('step', 0)}) and keeps its checkpoint"
        )
    return job


# --------------------------------------------------------------------------- versions


def _pair(scores: dict[str, Any] | None, metric: str, fmt: str) -> str:
    if not scores or scores.get(metric) is None:
        return "-"
    return format(float(scores[metric]), fmt)


def versions_table(versions: list[dict[str, Any]]) -> str:
    """A fixed-width table: one row per version, medians of generated / RL / identity."""
    head = (
        "v",
        "created",
        "steps",
        "device",
        "PSNR gen / RL / id",
        "SSIM gen / RL / id",
        "aliases",
    )
    rows = [head]
    for v in versions:
        medians = (v.get("metrics") or {}).get("medians") or {}
        created = datetime.fromisoformat(v["created_at"]).strftime("%Y-%m-%d %H:%M")
        rows.append(
            (
                str(v["number"]),
                created,
                str((v.get("training") or {}).get("steps", "?")),
                v.get("device") or "?",
                " / ".join(_pair(medians.get(m), "psnr", ".2f") for m, _ in METHODS),
                " / ".join(_pair(medians.get(m), "ssim", ".3f") for m, _ in METHODS),
                ", ".join(v.get("aliases") or []) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def list_versions(client: Client, pairing: int, say: Say = _say) -> list[dict[str, Any]]:
    versions = client.all_pages(f"/pairings/{pairing}/versions")
    if not versions:
        say(f"pairing {pairing} has no versions yet; train one with `pairscope train`")
    else:
        say(versions_table(versions))
    return versions


def gate_lines(error: dict[str, Any]) -> list[str]:
    """The quality gate's figures from a 409, as lines a person can compare."""
    figures = error.get("figures") or {}
    lines = []
    rows = [
        ("candidate", figures.get("candidate")),
        ("Richardson–Lucy", figures.get("richardson_lucy")),
    ]
    production = figures.get("production")
    if production:
        rows.append(
            (f"production (version {production.get('version')})", production.get("medians"))
        )
    for name, scores in rows:
        psnr, ssim = _pair(scores, "psnr", ".2f"), _pair(scores, "ssim", ".3f")
        lines.append(f"  {name:<26} PSNR {psnr:>6}  SSIM {ssim}")
    lines += [f"  - {failure}" for failure in figures.get("failures") or []]
    return lines


def promote(
    client: Client,
    pairing: int,
    version: int,
    alias: str = "production",
    override_reason: str | None = None,
    say: Say = _say,
) -> bool:
    """Move the alias; False (with the gate's figures said) when the quality gate refuses."""
    body: dict[str, Any] = {"version": version}
    if override_reason is not None:
        body["override_reason"] = override_reason
    try:
        moved = client.put(f"/pairings/{pairing}/aliases/{alias}", json=body)
    except ClientError as exc:
        if exc.status != 409 or exc.error.get("code") != "quality_gate":
            raise
        say(f"refused: version {version} does not pass the quality gate for {alias}")
        for line in gate_lines(exc.error):
            say(line)
        return False
    overridden = f" (gate overridden: {override_reason})" if override_reason else ""
    say(
        f"{moved['name']} of pairing {pairing} now points at version {moved['version']}{overridden}"
    )
    return True


def rollback(
    client: Client, pairing: int, alias: str = "production", say: Say = _say
) -> dict[str, Any]:
    moved = client.post(f"/pairings/{pairing}/aliases/{alias}/rollback")
    say(f"{moved['name']} of pairing {pairing} rolled back to version {moved['version']}")
    return moved


# --------------------------------------------------------------------------- enhancement


def wait_enhancement(
    client: Client, pairing: int, job: dict[str, Any], poll_s: float = 0.5
) -> dict[str, Any]:
    """Poll until every image has ended, one tick per image."""
    total = len(job["items"])
    with tqdm(total=total, desc=f"enhancement {job['id']}", unit="image") as bar:
        while True:
            done = sum(item["state"] in FINISHED for item in job["items"])
            bar.update(done - bar.n)
            if job["state"] in FINISHED and done == total:
                return job
            time.sleep(poll_s)
            job = client.get(f"/pairings/{pairing}/enhancements/{job['id']}")


def enhance_remote(
    client: Client,
    pairing: int,
    inputs: Sequence[Path],
    out_dir: Path,
    version: int | None = None,
    out_dtype: str = "float32",
    ensemble: bool = False,
    say: Say = _say,
    output_format: str = "ome-tiff",
) -> tuple[dict[str, Any] | None, dict[str, Path], dict[str, str]]:
    """Upload the inputs in one request, follow the job, download each output to `out_dir`
    (``<stem>_enhanced.ome.tif``, or for ``ome-zarr`` the zipped store
    ``<stem>_enhanced.ome.zarr.zip``).

    Returns the finished job (None when following was interrupted), the written outputs by
    input filename, and the failures by input filename."""
    files = collect_tiffs(inputs)
    output_folder(out_dir)
    data = {
        "out_dtype": out_dtype,
        "ensemble": "true" if ensemble else "false",
        "format": output_format,
    }
    if version is not None:
        data["version"] = str(version)
    total = sum(p.stat().st_size for p in files)
    with (
        contextlib.ExitStack() as stack,
        tqdm(total=total, unit="B", unit_scale=True, desc="upload") as bar,
    ):
        parts = [
            ("files", (p.name, _Progress(stack.enter_context(p.open("rb")), bar), "image/tiff"))
            for p in files
        ]
        job = client.post(f"/pairings/{pairing}/enhancements", files=parts, data=data)
    say(
        f"enhancement {job['id']}: {len(files)} image(s) with version {job['version']} "
        f"({out_dtype}{', ensemble' if ensemble else ''}, {output_format})"
    )
    try:
        job = wait_enhancement(client, pairing, job)
    except KeyboardInterrupt:
        say(
            f"stopped following; enhancement {job['id']} goes on on the worker. The same "
            "command again later downloads its results (they are reused, not recomputed)."
        )
        return None, {}, {}
    written: dict[str, Path] = {}
    failed: dict[str, str] = {}
    for item in tqdm(job["items"], desc="download", unit="file"):
        if item["state"] != "succeeded":
            failed[item["filename"]] = item.get("reason") or item["state"]
            continue
        dest = out_dir / output_name(item["filename"], output_format)
        if output_format == "ome-zarr":
            dest = dest.with_name(dest.name + ".zip")  # the service sends the store zipped
        client.download(
            f"/pairings/{pairing}/enhancements/{job['id']}/items/{item['id']}/output", dest
        )
        written[item["filename"]] = dest
    say(f"{len(written)} of {len(files)} enhanced image(s) written to {out_dir}")
    for name, reason in failed.items():
        say(f"  failed {name}: {reason}")
    return job, written, failed
