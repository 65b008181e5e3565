"""Ingestion benchmark: upload throughput through the API into S3 against plain boto3, and the
API process's peak memory while it receives a 1 GB file.

    .venv/bin/python bench/ingest.py [--files 20] [--mb 50] [--big-gb 1.0]

Everything runs on loopback in this one run: a moto S3 server, `pairscope serve --no-worker`
configured for S3, and boto3 `upload_fileobj` of the same bytes to the same endpoint.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import tifffile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pairscope.testing.processes import (  # noqa: E402
    create_key_with_cli,
    free_port,
    moto_server,
    s3_client,
    stop,
    wait_for_http,
)

CHANNELS = [
    {"name": n, "excitation_nm": e, "emission_nm": m}
    for n, e, m in (("DAPI", 350, 461), ("AF488", 495, 520), ("AF555", 555, 565))
]


def make_tiffs(folder: Path, count: int, megabytes: float, prefix: str) -> list[Path]:
    side = int((megabytes * 1e6 / 6) ** 0.5)  # 3 channels of uint16
    paths = []
    for i in range(count):
        data = np.random.default_rng(i).integers(0, 65535, (3, side, side), dtype=np.uint16)
        path = folder / f"{prefix}_{i:03d}.tif"
        tifffile.imwrite(path, data, metadata={"axes": "CYX"})
        paths.append(path)
    return paths


class PeakRss(threading.Thread):
    """Samples a process's resident memory every 20 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(pid), 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--big-gb", type=float, default=1.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pairscope-bench-ingest-"))
    with moto_server() as s3_url:
        run(args, work, s3_url)


def run(args: argparse.Namespace, work: Path, s3_url: str) -> None:
    """Everything measured against one moto server and one `pairscope serve --no-worker`."""
    api_port = free_port()
    s3 = s3_client(s3_url)
    s3.create_bucket(Bucket="bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    env |= {
        "PAIRSCOPE_DATA_DIR": str(work / "var"),
        "PAIRSCOPE_STORAGE_BACKEND": "s3",
        "PAIRSCOPE_S3_BUCKET": "bench",
        "PAIRSCOPE_S3_ENDPOINT_URL": s3_url,
        "PAIRSCOPE_S3_ACCESS_KEY_ID": "test",
        "PAIRSCOPE_S3_SECRET_ACCESS_KEY": "test",
        "PAIRSCOPE_LOG_LEVEL": "warning",
    }
    cli = [sys.executable, "-m", "pairscope"]
    admin = create_key_with_cli(env, "Ops").stdout.strip()
    api = subprocess.Popen(
        [*cli, "serve", "--no-worker", "--port", str(api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_http(base + "/healthz", process=api)
        http = httpx.Client(
            base_url=base + "/api/v1", timeout=600, headers={"Authorization": f"Bearer {admin}"}
        )
        scopes = []
        for name, modality in (("Bench WF", "widefield"), ("Bench LSM", "confocal")):
            inst = http.post(
                "/institutions",
                json={"name": name, "country": "PL", "contact_email": "b@example.org"},
            ).json()
            scopes.append(
                http.post(
                    "/microscopes",
                    json={
                        "institution_id": inst["id"],
                        "name": name,
                        "modality": modality,
                        "objective_magnification": 63,
                        "numerical_aperture": 1.4,
                        "immersion_index": 1.515,
                        "pixel_size_um": 0.1,
                        "channels": CHANNELS,
                    },
                ).json()
            )
        lab_key = http.post(
            "/keys", json={"institution_id": scopes[0]["institution_id"], "role": "lab"}
        ).json()["key"]
        pairing = http.post(
            "/pairings",
            json={
                "name": "bench",
                "lq_microscope_id": scopes[0]["id"],
                "hq_microscope_id": scopes[1]["id"],
            },
        ).json()["id"]
        lab = httpx.Client(
            base_url=base + "/api/v1", timeout=600, headers={"Authorization": f"Bearer {lab_key}"}
        )

        print(f"making {args.files} × {args.mb:g} MB TIFFs …", flush=True)
        files = make_tiffs(work, args.files, args.mb, "field")
        total_mb = sum(p.stat().st_size for p in files) / 1e6

        t0 = time.perf_counter()
        for path in files:
            with path.open("rb") as f:
                s3.upload_fileobj(f, "bench", f"baseline/{path.name}")
        boto_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        for path in files:
            with path.open("rb") as f:
                r = lab.post(
                    f"/pairings/{pairing}/images",
                    params={"side": "lq"},
                    files={"file": (path.name, f, "image/tiff")},
                )
                r.raise_for_status()
        api_s = time.perf_counter() - t0

        print(f"making a {args.big_gb:g} GB TIFF …", flush=True)
        big = make_tiffs(work, 1, args.big_gb * 1000, "big")[0]
        idle_rss = psutil.Process(api.pid).memory_info().rss
        sampler = PeakRss(api.pid)
        sampler.start()
        t0 = time.perf_counter()
        with big.open("rb") as f:
            r = lab.post(
                f"/pairings/{pairing}/images",
                params={"side": "lq"},
                files={"file": (big.name, f, "image/tiff")},
            )
        big_s = time.perf_counter() - t0
        sampler.running = False
        sampler.join()
        r.raise_for_status()

        boto_rate, api_rate = total_mb / boto_s, total_mb / api_s
        rows = [
            ("boto3 upload_fileobj → S3 (baseline)", f"{boto_rate:8.1f} MB/s", "1.00", ""),
            (
                "API upload → validate → S3",
                f"{api_rate:8.1f} MB/s",
                f"{api_rate / boto_rate:.2f}",
                "≥ 0.80",
            ),
            (
                f"API peak RSS receiving {big.stat().st_size / 1e9:.2f} GB",
                f"{sampler.peak / 2**20:8.0f} MiB",
                f"idle {idle_rss / 2**20:.0f} MiB",
                "< 300 MiB",
            ),
            (
                "  (that upload's throughput)",
                f"{big.stat().st_size / 1e6 / big_s:8.1f} MB/s",
                "",
                "",
            ),
        ]
        print(f"\n{args.files} files, {total_mb:.0f} MB in all, S3 = moto server on loopback\n")
        print(f"| {'measure':44} | {'value':>13} | {'ratio':>12} | target |")
        print(f"|{'-' * 46}|{'-' * 15}|{'-' * 14}|--------|")
        for name, value, ratio, target in rows:
            print(f"| {name:44} | {value:>13} | {ratio:>12} | {target:6} |")
    finally:
        stop(api)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
