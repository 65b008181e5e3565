"""`pairscope upload`: every TIFF of a folder into one side of a pairing, resumable by checksum,
with a progress bar and a summary of the pairs the service accepted or rejected."""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from pairscope.client import Client, ClientError, ServiceUnreachable
from pairscope.inputs import TIFF, tiffs_in


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
    files = tiffs_in(folder)
    if mapping is None:
        return {p: TIFF.sub("", p.name) for p in files}
    rows = _mapping_rows(mapping)
    missing = [p.name for p in files if p.name not in rows]
    if missing:
        raise ClientError(f"{mapping}: no field_id for {', '.join(missing[:5])}")
    return {p: rows[p.name] for p in files}


def _mapping_rows(mapping: Path) -> dict[str, str]:
    """filename → field_id from the CSV; a missing file or column is one line naming it."""
    try:
        with mapping.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            if not {"filename", "field_id"} <= columns:
                raise ClientError(
                    f"{mapping}: needs the columns filename,field_id "
                    f"(has {', '.join(sorted(columns)) or 'none'})"
                )
            return {row["filename"]: row["field_id"] for row in reader}
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise ClientError(f"{mapping}: cannot read the mapping ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ClientError(f"{mapping}: not a text CSV file ({exc.reason})") from exc


def upload_folder(
    client: Client,
    pairing: int,
    side: str,
    folder: Path,
    mapping: Path | None = None,
    wait_s: float = 120,
) -> dict[str, int]:
    """Upload what the service lacks, then summarise the pairs of the files it holds.

    The counts are those of `summarise`, plus `refused`: files the service turned down (each
    said with its reason). A refused file's field is left out of the summary: an earlier upload
    of the same field must not be reported as this one's pair."""
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
    refused: dict[Path, str] = {}
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
                except ServiceUnreachable:
                    raise  # every later file would fail the same way: stop here
                except ClientError as exc:
                    refused[item.path] = str(exc)
    for path, reason in refused.items():
        print(f"  refused {path.name}: {reason}")
    held = {p.field_id for p in plan if p.path not in refused}
    counts = summarise(client, pairing, held, wait_s)
    counts["refused"] = len(refused)
    if refused:
        print(f"{len(refused)} of {len(plan)} file(s) refused by the service")
    return counts


def summarise(client: Client, pairing: int, fields: set[str], wait_s: float) -> dict[str, int]:
    """Wait (up to wait_s) for alignment of these fields, then print accepted / rejected."""
    counts = dict.fromkeys(("accepted", "rejected", "pending", "aligning", "unpaired"), 0)
    if not fields:
        print("pairs: none (no file of this folder is on the server)")
        return counts
    deadline = time.monotonic() + wait_s
    while True:
        pairs = [
            p for p in client.all_pages(f"/pairings/{pairing}/pairs") if p["field_id"] in fields
        ]
        busy = [p for p in pairs if p["status"] in ("pending", "aligning")]
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(1)
    for status in ("accepted", "rejected", "pending", "aligning"):
        counts[status] = sum(p["status"] == status for p in pairs)
    counts["unpaired"] = len(fields) - len(pairs)
    print("pairs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for p in pairs:
        if p["status"] == "rejected":
            print(f"  rejected {p['field_id']}: {p['reason']}")
    return counts
