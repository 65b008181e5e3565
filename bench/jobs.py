"""Job benchmarks: dispatch latency on both brokers, training in the worker against
`train-local`, and enhancement through the service against an in-process predict.

    .venv/bin/python bench/jobs.py [--dispatch 30] [--preset cpu-small] [--steps 60]
                                   [--fields 8] [--size 2048]

Everything is measured in this one run on this machine; each row is a ratio against its
baseline (targets from the jobs issue: training ≥ 0.95, enhancement ≥ 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import tifffile
from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.main import create_app  # noqa: E402
from api.migrate import upgrade  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.tables import Role  # noqa: E402
from pairscope.testing import flow  # noqa: E402
from pairscope.testing.flow import make_key  # noqa: E402
from pairscope.testing.processes import REDIS_URL, W2S, running_worker  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


@contextlib.contextmanager
def service(work: Path, queues: str, **extra):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=work / "var", **extra)
    upgrade(settings)
    _, admin = make_key(settings, "Operations", Role.admin)
    with (
        running_worker(settings, queues, work / "worker.log", "bench"),
        TestClient(create_app(settings)) as client,
    ):
        yield client, admin, settings


def dispatch_latency(work: Path, n: int, **extra) -> list[float]:  # type: ignore[no-untyped-def]
    """Submit a readiness report, wait for it to finish, n times: seconds from the API's commit
    to the worker starting the task."""
    with service(work, "default", **extra) as (client, admin, _):
        net = flow.build_network(client, admin, "dispatch")
        latencies = []
        for _ in range(n + 2):
            report = client.post(net.url("/readiness"), headers=net.admin).json()
            done = flow.wait(
                net,
                f"/readiness/{report['id']}",
                lambda r: r["state"] in ("succeeded", "failed"),
                timeout=60,
            )
            created = np.datetime64(done["created_at"].rstrip("Z"))
            started = np.datetime64(done["started_at"].rstrip("Z"))
            latencies.append(float((started - created) / np.timedelta64(1, "ms")) / 1000)
        return latencies[2:]  # the first two include the worker's warm-up


def upload_w2s(net: flow.Network, fields: int) -> None:
    for i in range(1, fields + 1):
        for side, who in (("lq", net.lab), ("hq", net.partner)):
            path = W2S / side / f"field_{i:03d}.tif"
            r = net.client.post(
                net.url("/images"),
                headers=who,
                params={"side": side},
                files={"file": (path.name, path.read_bytes(), "image/tiff")},
            )
            r.raise_for_status()


def w2s_network(client: TestClient, admin: str) -> flow.Network:
    net = flow.build_network(client, admin, "jobs-bench")
    for scope in client.get("/api/v1/microscopes", headers=net.admin).json()["items"]:
        client.patch(
            f"/api/v1/microscopes/{scope['id']}",
            headers=net.admin,
            json={"pixel_size_um": 0.1, "numerical_aperture": 1.49},
        )
    return net


def train_local_rate(work: Path, net: flow.Network, dataset: dict, config: dict) -> float:
    """`pairscope train-local` on the snapshot's aligned training pairs: steps per second of
    its training loop, from the model it saves."""
    folders = {side: work / "local" / side for side in ("lq", "hq")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    pairs = {
        p["field_id"]: p
        for p in net.client.get(net.url("/pairs?limit=1000"), headers=net.lab).json()["items"]
    }
    for member in dataset["members"]:
        pair = pairs[member["field_id"]]
        for side in ("lq", "hq"):
            data = net.client.get(
                net.url(f"/pairs/{pair['id']}/aligned/{side}"), headers=net.lab
            ).content
            (folders[side] / f"{member['field_id']}.tif").write_bytes(data)
    out = work / "local-model.zip"
    command = [
        sys.executable,
        "-m",
        "pairscope",
        "train-local",
        "--lq",
        str(folders["lq"]),
        "--hq",
        str(folders["hq"]),
        "--out",
        str(out),
        "--preset",
        config["preset"],
        "--steps",
        str(config["steps"]),
        "--seed",
        "3",
    ]
    subprocess.run(command, check=True, capture_output=True)
    meta = json.loads(zipfile.ZipFile(out).read("metadata.json"))
    return meta["training"]["steps"] / meta["training"]["elapsed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatch", type=int, default=30)
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--fields", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []

    with tempfile.TemporaryDirectory(prefix="pairscope-bench-jobs-") as tmp:
        work = Path(tmp)
        print("dispatch latency …", flush=True)
        embedded = dispatch_latency(work / "embedded", args.dispatch)
        redis = dispatch_latency(
            work / "redis",
            args.dispatch,
            broker_url=f"{REDIS_URL}/14",
            result_backend=f"{REDIS_URL}/14",
        )
        for name, values in (("embedded filesystem broker", embedded), ("Redis", redis)):
            rows.append(
                (
                    f"dispatch latency, {name}",
                    f"p50 {1000 * statistics.median(values):.0f} ms",
                    f"p95 {1000 * percentile(values, 95):.0f} ms",
                    "",
                )
            )

        with service(work / "jobs", "train,infer,default", job_progress_interval_s=2.0) as (
            client,
            admin,
            _,
        ):
            net = w2s_network(client, admin)
            print(f"uploading {args.fields} W2S pairs …", flush=True)
            upload_w2s(net, args.fields)
            dataset = flow.accepted_snapshot(net, args.fields)
            steps = args.steps
            overrides = {
                "steps": steps,
                "checkpoint_every": max(1, steps // 4),
                "val_every": max(1, steps // 2),
                "minutes": None,
            }
            print(f"training in the worker ({args.preset}, {steps} steps) …", flush=True)
            job = client.post(
                net.url("/training-jobs"),
                headers=net.lab,
                json={
                    "dataset_id": dataset["id"],
                    "preset": args.preset,
                    "overrides": overrides,
                    "seed": 3,
                },
            ).json()
            job = flow.wait_job(net, job["id"], timeout=3600)
            assert job["state"] == "succeeded", job["reason"]
            worker_rate = job["progress"]["step"] / job["progress"]["elapsed_s"]
            print("training with train-local …", flush=True)
            local_rate = train_local_rate(
                work, net, dataset, {"preset": args.preset, "steps": steps}
            )
            rows.append(
                (f"training steps/s, train-local ({args.preset})", f"{local_rate:.3f}", "1.00", "")
            )
            rows.append(
                (
                    "training steps/s, worker job (progress, checkpoints, heartbeats)",
                    f"{worker_rate:.3f}",
                    f"{worker_rate / local_rate:.2f}",
                    "≥ 0.95",
                )
            )

            print(f"enhancing a {args.size}² × 3 image …", flush=True)
            client.put(
                net.url("/aliases/production"),
                headers=net.admin,
                json={"version": job["version"], "override_reason": "benchmark"},
            )
            rng = np.random.default_rng(0)
            images = [
                rng.integers(0, 255, (3, args.size, args.size), dtype=np.uint8) for _ in range(2)
            ]
            service_s = []
            for image in images:  # the first warms the worker's model cache
                t0 = time.perf_counter()
                posted = client.post(
                    net.url("/enhancements"),
                    headers=net.lab,
                    files=[("files", ("big.tif", flow.tiff(image), "image/tiff"))],
                ).json()
                done = flow.wait(net, f"/enhancements/{posted['id']}", flow.finished, 3600)
                item = done["items"][0]
                out = client.get(
                    net.url(f"/enhancements/{done['id']}/items/{item['id']}/output"),
                    headers=net.lab,
                ).content
                service_s.append(time.perf_counter() - t0)
                assert tifffile.imread(io.BytesIO(out)).shape == image.shape
            model_zip = client.get(
                net.url(f"/versions/{job['version']}/model"), headers=net.lab
            ).content
        from models import EnhancementModel

        (work / "model.zip").write_bytes(model_zip)
        model = EnhancementModel.load(work / "model.zip")
        model.predict(images[0].astype(np.float32), "CYX")  # warm-up, as the worker's cache
        t0 = time.perf_counter()
        model.predict(images[1].astype(np.float32), "CYX")
        local_s = time.perf_counter() - t0
        rows.append(
            (f"enhance {args.size}²×3, models predict in process", f"{local_s:.1f} s", "1.00", "")
        )
        rows.append(
            (
                "enhance through the service (upload → job → download)",
                f"{service_s[1]:.1f} s",
                f"{local_s / service_s[1]:.2f}",
                "≥ 0.80",
            )
        )

    print(f"\n| {'measure':64} | {'value':>14} | {'ratio':>12} | target |")
    print(f"|{'-' * 66}|{'-' * 16}|{'-' * 14}|--------|")
    for name, value, ratio, target in rows:
        print(f"| {name:64} | {value:>14} | {ratio:>12} | {target:6} |")


if __name__ == "__main__":
    main()
