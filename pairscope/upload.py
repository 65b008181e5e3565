"""`pairscope upload`: every TIFF of a folder into one side of a pairing, resumable by checksum,
with a progress bar and a summary of the pairs the service accepted or rejected."""

from __future__ import annotations

import csv
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from pairscope.client import Client, ClientError

TIFF = re.compile(r"\.(ome\.)?tiff?$", re.I)


@dataclass
class Planned:
    path: Path
    field_id: str
    sha256: str


class _Progress:
    """A file wrapper that advances a byte progress bar as httpx reads it."""

    def __init__(self, raw: BinaryIO, bar: tqdm) -> None:
        self._raw, self._bar = raw, bar

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._bar.update(len(data))
        return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def field_ids(folder: Path, mapping: Path | None) -> dict[Path, str]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and TIFF.search(p.name))
    if not files:
        raise ClientError(f"{folder}: no TIFF files")
    if mapping is None:
        return {p: TIFF.sub("", p.name) for p in files}
    with mapping.open(newline="") as f:
        rows = {row["filename"]: row["field_id"] for row in csv.DictReader(f)}
    missing = [p.name for p in files if p.name not in rows]
    if missing:
        raise ClientError(f"{mapping}: no field_id for {', '.join(missing[:5])}")
    return {p: rows[p.name] for p in files}


def upload_folder(
    client: Client,
    pairing: int,
    side: str,
    folder: Path,
    mapping: Path | None = None,
    wait_s: float = 120,
) -> dict[str, int]:
    names = field_ids(folder, mapping)
    plan = [
        Planned(p, f, sha256_of(p))
        for p, f in tqdm(names.items(), desc="checksums", unit="file", leave=False)
    ]
    existing = {
        (i["field_id"], i["sha256"])
        for i in client.all_pages(f"/pairings/{pairing}/images", side=side)
    }
    todo = [p for p in plan if (p.field_id, p.sha256) not in existing]
    print(
        f"{len(plan)} TIFF files, {len(plan) - len(todo)} already on the server, "
        f"{len(todo)} to upload"
    )
    failures: list[str] = []
    total = sum(p.path.stat().st_size for p in todo)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"upload {side}") as bar:
        for item in todo:
            with item.path.open("rb") as f:
                try:
                    client.request(
                        "POST",
                        f"/pairings/{pairing}/images",
                        params={"side": side, "field_id": item.field_id},
                        files={"file": (item.path.name, _Progress(f, bar), "image/tiff")},
                    )
                except ClientError as exc:
                    failures.append(f"{item.path.name}: {exc}")
    for failure in failures:
        print(f"  refused {failure}")
    return summarise(client, pairing, {p.field_id for p in plan}, wait_s)


def summarise(client: Client, pairing: int, fields: set[str], wait_s: float) -> dict[str, int]:
    """Wait (up to wait_s) for alignment of these fields, then print accepted / rejected."""
    deadline = time.monotonic() + wait_s
    while True:
        pairs = [
            p for p in client.all_pages(f"/pairings/{pairing}/pairs") if p["field_id"] in fields
        ]
        busy = [p for p in pairs if p["status"] in ("pending", "aligning")]
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(1)
    counts = {
        s: sum(p["status"] == s for p in pairs)
        for s in ("accepted", "rejected", "pending", "aligning")
    }
    counts["unpaired"] = len(fields) - len(pairs)
    print("pairs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for p in pairs:
        if p["status"] == "rejected":
            print(f"  rejected {p['field_id']}: {p['reason']}")
    return counts
