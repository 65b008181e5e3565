"""Load benchmark ("never a 5xx, nothing lost"): a real `pairscope serve --no-worker` on
PostgreSQL, Redis and a moto S3 server, all on loopback, under concurrent readers, uploaders and
enhancement submitters; the raw object-store PUT rate measured in the same run as the uploads'
baseline.

    .venv/bin/python bench/load.py [--seconds 20] [--readers 50] [--uploaders 10]

Every scenario stops after `--seconds` or `--max-requests`, whichever comes first; the whole run
stops by itself and drops its PostgreSQL schema and Redis database. Enhancement submissions
only need the API to accept them (the task waits in Redis; no worker runs).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import tifffile
from sqlalchemy import create_engine, select, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.settings import Settings  # noqa: E402
from api.tables import Image  # noqa: E402
from pairscope.testing import flow  # noqa: E402
from pairscope.testing.processes import (  # noqa: E402
    POSTGRES_URL,
    REDIS_URL,
    create_key_with_cli,
    free_port,
    moto_server,
    s3_client,
    stop,
    wait_for_http,
)
from pairscope.testing.seeding import seed_version  # noqa: E402

BUCKET = "load"


@dataclass
class Stats:
    """What one scenario measured: each request's latency and status, transport errors."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    transport_kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    megabytes: float = 0.0
    by_route: dict[str, list[float]] = field(default_factory=dict)

    def record(self, started: float, status: int | None, error: str = "", route: str = "") -> None:
        latency = time.perf_counter() - started
        self.latencies.append(latency)
        if route:
            self.by_route.setdefault(route, []).append(latency)
        if status is None:
            self.transport_errors += 1
            self.transport_kinds[error] += 1
        else:
            self.statuses[status] += 1

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def client_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if 400 <= status < 500)

    def quantile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- the service under test


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A schema of its own in database `test`, dropped afterwards (as tests/conftest.py does)."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"pairscope_load_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database index nobody else holds (the tests' lock keys), flushed afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for index in range(15, 0, -1):
        if client.set(f"pairscope-test-lock-{index}", os.getpid(), nx=True, ex=3600):
            break
    else:
        raise RuntimeError("no free Redis database index")
    url = f"{REDIS_URL}/{index}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        client.delete(f"pairscope-test-lock-{index}")


def service_env(work: Path, database_url: str, redis_url: str, s3_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSCOPE_")}
    return env | {
        "PAIRSCOPE_DATA_DIR": str(work / "var"),
        "PAIRSCOPE_DATABASE_URL": database_url,
        "PAIRSCOPE_BROKER_URL": redis_url,
        "PAIRSCOPE_RESULT_BACKEND": redis_url,
        "PAIRSCOPE_STORAGE_BACKEND": "s3",
        "PAIRSCOPE_S3_BUCKET": BUCKET,
        "PAIRSCOPE_S3_ENDPOINT_URL": s3_url,
        "PAIRSCOPE_S3_ACCESS_KEY_ID": "test",
        "PAIRSCOPE_S3_SECRET_ACCESS_KEY": "test",
        "PAIRSCOPE_LOG_LEVEL": "warning",
    }


# ---------------------------------------------------------------- load generators


async def closed_loop(
    stats: Stats,
    clients: int,
    seconds: float,
    max_requests: int,
    request: Callable[[httpx.AsyncClient, int], object],
    base_url: str,
    think_s: float = 0.0,
) -> None:
    """`clients` concurrent clients, each sending its next request when the last one answered
    (after `think_s` ± 50 %, if given), until the time or the request budget is spent."""
    budget = itertools.count()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:

        async def one_client(number: int) -> None:
            rng = random.Random(number)
            if think_s:
                await asyncio.sleep(rng.uniform(0, think_s))
            while time.perf_counter() < deadline and next(budget) < max_requests:
                started = time.perf_counter()
                try:
                    response = await request(http, number)  # type: ignore[misc]
                    route = re.sub(r"/\d+", "/{id}", response.request.url.path)
                    stats.record(started, response.status_code, route=route)
                except httpx.HTTPError as exc:
                    stats.record(started, None, type(exc).__name__)
                if think_s:
                    await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        stats.seconds = time.perf_counter() - t0


def threaded(stats: Stats, workers: int, files: list[Path], send: Callable[[Path], int]) -> None:
    """`workers` threads taking files from one queue until it is empty; the rate is the bytes
    of every file over the wall time of all of them."""
    todo: queue.Queue[Path] = queue.Queue()
    for path in files:
        todo.put(path)

    def work() -> None:
        while True:
            try:
                path = todo.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            try:
                stats.record(started, send(path))
            except httpx.HTTPError as exc:
                stats.record(started, None, type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.seconds = time.perf_counter() - t0
    stats.megabytes = sum(p.stat().st_size for p in files) / 1e6


def make_tiffs(folder: Path, count: int, low_mb: float, high_mb: float, seed: int) -> list[Path]:
    """Distinct 3-channel uint16 TIFFs of low_mb to high_mb megabytes each."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        side = int((rng.uniform(low_mb, high_mb) * 1e6 / 6) ** 0.5)
        data = rng.integers(0, 4095, (3, side, side), dtype=np.uint16)
        path = folder / f"load_{seed}_{i:03d}.tif"
        tifffile.imwrite(path, data, metadata={"axes": "CYX"})
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the scenarios


@dataclass
class Fixture:
    base: str
    net: flow.Network
    lq_images: list[int]
    enhancement: int
    s3: object
    uploaded: list[int] = field(default_factory=list)

    def lab(self) -> dict[str, str]:
        return self.net.lab


def read_paths(fx: Fixture) -> list[str]:
    p = f"/api/v1/pairings/{fx.net.pairing}"
    image = fx.lq_images[0]
    return [
        "/api/v1/pairings",
        p,
        f"{p}/images?limit=50",
        f"{p}/images/{image}",
        f"{p}/pairs",
        f"{p}/versions",
        f"{p}/versions/1",
        f"{p}/enhancements",
        f"{p}/enhancements/{fx.enhancement}",
        "/api/v1/institutions",
        "/api/v1/microscopes",
        "/api/v1/me",
    ]


def reader(fx: Fixture) -> Callable[[httpx.AsyncClient, int], object]:
    paths = itertools.cycle(read_paths(fx))
    headers = fx.lab()
    return lambda http, _: http.get(next(paths), headers=headers)


def submitter(fx: Fixture) -> Callable[[httpx.AsyncClient, int], object]:
    url = fx.net.url("/enhancements")
    headers = fx.lab()
    return lambda http, n: http.post(
        url,
        headers=headers,
        json={"image_ids": [fx.lq_images[n % len(fx.lq_images)]], "version": 1},
    )


def api_uploader(fx: Fixture, client: httpx.Client) -> Callable[[Path], int]:
    def send(path: Path) -> int:
        with path.open("rb") as f:
            response = client.post(
                fx.net.url("/images"),
                headers=fx.lab(),
                params={"side": "lq", "field_id": path.stem},
                files={"file": (path.name, f, "image/tiff")},
            )
        if response.status_code == 201:
            fx.uploaded.append(response.json()["id"])
        return response.status_code

    return send


def raw_putter(s3) -> Callable[[Path], int]:  # type: ignore[no-untyped-def]
    def send(path: Path) -> int:
        with path.open("rb") as f:
            s3.upload_fileobj(f, BUCKET, f"baseline/{uuid.uuid4().hex}/{path.name}")
        return 200

    return send


def run_scenarios(args: argparse.Namespace, fx: Fixture, work: Path) -> list[tuple[Stats, str]]:
    results: list[tuple[Stats, str]] = []
    seconds, cap = args.seconds, args.max_requests

    print(f"reads: {args.readers} clients, back to back …", flush=True)
    saturated = Stats(f"reads, {args.readers} clients back to back")
    asyncio.run(closed_loop(saturated, args.readers, seconds, cap, reader(fx), fx.base))
    results.append((saturated, "capacity"))

    print(f"reads: {args.readers} clients, {args.think_s:g} s between requests …", flush=True)
    paced = Stats(f"reads, {args.readers} clients, {args.think_s:g} s think")
    asyncio.run(
        closed_loop(paced, args.readers, seconds, cap, reader(fx), fx.base, think_s=args.think_s)
    )
    results.append((paced, "p99 < 100 ms"))

    print(f"enhancement submissions: {args.uploaders} clients …", flush=True)
    submits = Stats(f"enhancement submissions, {args.uploaders} clients")
    asyncio.run(closed_loop(submits, args.uploaders, seconds, cap, submitter(fx), fx.base))
    results.append((submits, ""))

    print(f"making {3 * args.files} TIFFs of {args.low_mb:g}–{args.high_mb:g} MB …", flush=True)
    rounds = [make_tiffs(work, args.files, args.low_mb, args.high_mb, seed) for seed in (1, 2)]
    mixed_files = make_tiffs(work, args.files, args.low_mb, args.high_mb, 3)
    raw, api = Stats("raw PUT (boto3 → S3)"), Stats("API upload → validate → S3")
    with httpx.Client(base_url=fx.base, timeout=600) as client:
        for number, files in enumerate(rounds, 1):  # interleaved: shared cores drift
            print(f"uploads, round {number}: raw PUT then API …", flush=True)
            one_raw, one_api = Stats(raw.name), Stats(api.name)
            threaded(one_raw, args.uploaders, files, raw_putter(fx.s3))
            threaded(one_api, args.uploaders, files, api_uploader(fx, client))
            for best, one in ((raw, one_raw), (api, one_api)):
                if not best.seconds or one.megabytes / one.seconds > best.megabytes / best.seconds:
                    best.latencies, best.seconds, best.megabytes = (
                        one.latencies,
                        one.seconds,
                        one.megabytes,
                    )
                best.statuses.update(one.statuses)
                best.transport_errors += one.transport_errors
        results.append((raw, "baseline"))
        results.append((api, "≥ 0.80 × raw"))

        print("mixed: paced readers + submitters while uploaders run …", flush=True)
        mixed_reads = Stats(f"mixed: reads ({args.readers} clients, paced)")
        mixed_submits = Stats("mixed: enhancement submissions")
        mixed_uploads = Stats(f"mixed: uploads ({args.uploaders} uploaders)")
        uploading = threading.Thread(
            target=threaded,
            args=(mixed_uploads, args.uploaders, mixed_files, api_uploader(fx, client)),
        )
        uploading.start()

        async def together() -> None:
            await asyncio.gather(
                closed_loop(
                    mixed_reads,
                    args.readers,
                    seconds,
                    cap,
                    reader(fx),
                    fx.base,
                    think_s=args.think_s,
                ),
                closed_loop(mixed_submits, 2, seconds, cap, submitter(fx), fx.base, think_s=0.2),
            )

        asyncio.run(together())
        uploading.join()
        results += [(mixed_reads, ""), (mixed_submits, ""), (mixed_uploads, "")]
    return results


@dataclass
class Tally:
    """Uploads answered 201, their records and objects found afterwards, and objects in the
    bucket that no image row names (left behind by a failed upload)."""

    answered: int
    records: int
    objects: int
    orphans: int


def nothing_lost(fx: Fixture, database_url: str) -> Tally:
    """Every upload answered 201 has its record (read through the API) and its object (the key
    the database holds, listed in the bucket), and nothing else is in the bucket."""
    with httpx.Client(base_url=fx.base, timeout=60, headers=fx.lab()) as http:
        records = sum(
            http.get(fx.net.url(f"/images/{image}")).status_code == 200 for image in fx.uploaded
        )
    engine = create_engine(database_url)
    with engine.connect() as connection:
        object_keys = dict(connection.execute(select(Image.id, Image.object_key)).all())
    engine.dispose()
    stored = set()
    for listing in fx.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):  # type: ignore[attr-defined]
        stored |= {obj["Key"] for obj in listing.get("Contents", [])}
    registry_objects = {key for key in stored if not key.startswith("baseline/")}
    return Tally(
        answered=len(fx.uploaded),
        records=records,
        objects=sum(object_keys.get(image) in stored for image in fx.uploaded),
        orphans=len(registry_objects - set(object_keys.values())),
    )


def print_table(results: list[tuple[Stats, str]], load: str) -> None:
    raw = next(s for s, target in results if target == "baseline")
    raw_rate = raw.megabytes / raw.seconds
    print(f"\nload average before / after: {load}\n")
    print(
        "| scenario | requests | req/s | MB/s | ratio | p50 ms | p99 ms | 5xx | 4xx | "
        "transport errors | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for stats, target in results:
        mbs = stats.megabytes / stats.seconds if stats.megabytes else None
        ratio = f"{mbs / raw_rate:.2f}" if mbs else ""
        print(
            f"| {stats.name} | {len(stats.latencies)} | {stats.rate:.1f} | "
            f"{f'{mbs:.1f}' if mbs else ''} | {ratio} | {stats.quantile_ms(50):.0f} | "
            f"{stats.quantile_ms(99):.0f} | {stats.server_errors} | {stats.client_errors} | "
            f"{stats.transport_errors} | {target} |"
        )
    for stats, target in results:
        if target.startswith("p99"):
            print(f"\nby route, {stats.name}:\n")
            print("| route | requests | p50 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|")
            for route, times in sorted(stats.by_route.items()):
                p50, p99, top = (float(np.percentile(times, q)) * 1000 for q in (50, 99, 100))
                print(f"| {route} | {len(times)} | {p50:.0f} | {p99:.0f} | {top:.0f} |")
    for stats, _ in results:
        if stats.transport_kinds:
            kinds = ", ".join(f"{n} {kind}" for kind, n in stats.transport_kinds.most_common())
            print(f"  transport errors in {stats.name}: {kinds}")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="per scenario, at most")
    parser.add_argument("--max-requests", type=int, default=20000, help="per scenario, at most")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--think-s", type=float, default=1.0, help="paced readers' pause")
    parser.add_argument("--uploaders", type=int, default=10)
    parser.add_argument("--files", type=int, default=20, help="TIFFs per upload round")
    parser.add_argument("--low-mb", type=float, default=5)
    parser.add_argument("--high-mb", type=float, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pairscope-bench-load-"))
    started = time.perf_counter()
    before = load_average()
    try:
        with (
            postgres_schema() as database_url,
            redis_database() as redis_url,
            moto_server(work / "moto.log") as s3_url,
        ):
            env = service_env(work, database_url, redis_url, s3_url)
            results, tally, log = serve_and_run(args, work, env, s3_url)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(results, f"{before} / {load_average()}")
    tracebacks = log.count("Traceback")
    print(
        f"\nnothing lost: {tally.answered} uploads answered 201, {tally.records} records, "
        f"{tally.objects} objects, {tally.orphans} objects no row names; "
        f"{sum(s.server_errors for s, _ in results)} 5xx in all, {tracebacks} tracebacks in the "
        f"server log; whole run {time.perf_counter() - started:.0f} s"
    )
    errors = Counter(re.findall(r"^([\w.]+(?:Error|Exception)): ?(.{0,100})", log, re.MULTILINE))
    for (name, message), count in errors.most_common(5):
        print(f"  {count} × {name}: {message}")


def serve_and_run(
    args: argparse.Namespace, work: Path, env: dict[str, str], s3_url: str
) -> tuple[list[tuple[Stats, str]], Tally, str]:
    s3 = s3_client(s3_url)
    s3.create_bucket(Bucket=BUCKET)
    cli = [sys.executable, "-m", "pairscope"]
    admin = create_key_with_cli(env, "Operations").stdout.strip()
    port = free_port()
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        api = subprocess.Popen(
            [*cli, "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", process=api)
        print("seeding: a network, 10 small pairs, version 1, one enhancement …", flush=True)
        with httpx.Client(base_url=base, timeout=60) as http:
            net = flow.build_network(http, admin, "load")
            flow.upload_synthetic(net, 10)
            settings = Settings(
                data_dir=work / "var",
                database_url=env["PAIRSCOPE_DATABASE_URL"],
                storage_backend="s3",
                s3_bucket=BUCKET,
            )
            seed_version(settings, net.pairing)
            images = http.get(net.url("/images"), headers=net.lab, params={"side": "lq"})
            lq_images = [item["id"] for item in images.json()["items"]]
            first = http.post(
                net.url("/enhancements"),
                headers=net.lab,
                json={"image_ids": lq_images[:1], "version": 1},
            )
            first.raise_for_status()
        fx = Fixture(base, net, lq_images, first.json()["id"], s3)
        results = run_scenarios(args, fx, work)
        return (
            results,
            nothing_lost(fx, settings.database_url),
            log_path.read_text(errors="replace"),
        )
    finally:
        stop(api)


if __name__ == "__main__":
    main()
