"""A tested restore: back up a registry's database and object folder the way docs/operations.md
says, restore both into a fresh place, migrate, and check that every object the database names
is there with the hash it records, and that the restored API serves the same bytes.

    .venv/bin/python bench/restore_check.py [--database sqlite|postgres|both]

SQLite is copied with its online backup API (what `sqlite3 db ".backup copy"` does); PostgreSQL
with `pg_dump --format=custom` and `pg_restore` into a new database (127.0.0.1:5432, dropped at
the end); the object folder with a plain copy (standing in for `mc mirror` / `aws s3 sync`).
Finally one restored object is removed, to show the check notices. Exits non-zero on any
inconsistency.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.main import create_app  # noqa: E402
from api.migrate import upgrade  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.storage import ObjectNotFound, make_store  # noqa: E402
from api.tables import Role  # noqa: E402
from pairscope.testing import flow  # noqa: E402
from pairscope.testing.processes import POSTGRES_URL, settings_env  # noqa: E402

# (table, object key column, its sha256 column or None): every object a row can name
OBJECT_COLUMNS = [
    ("images", "object_key", "sha256"),
    ("pairs", "lq_aligned_key", "lq_aligned_sha256"),
    ("pairs", "hq_aligned_key", "hq_aligned_sha256"),
    ("pairs", "preview_key", None),
    ("dataset_members", "lq_aligned_key", "lq_aligned_sha256"),
    ("dataset_members", "hq_aligned_key", "hq_aligned_sha256"),
    ("training_jobs", "checkpoint_key", "checkpoint_sha256"),
    ("model_versions", "model_key", "model_sha256"),
    ("model_versions", "report_key", "report_sha256"),
    ("model_versions", "report_png_key", "report_png_sha256"),
    ("model_versions", "bioimageio_key", "bioimageio_sha256"),
    ("enhancement_items", "input_key", "input_sha256"),
    ("enhancement_items", "output_key", "output_sha256"),
    ("enhancement_items", "preview_key", None),
]


def store_problems(settings: Settings) -> tuple[int, list[str]]:
    """Rows against objects: (objects checked, problems). A missing object, or one whose bytes
    do not hash to what its row records, is a problem."""
    engine = create_engine(settings.resolved_database_url)
    store = make_store(settings)
    checked, problems = 0, []
    with engine.connect() as connection:
        for table, key_column, sha_column in OBJECT_COLUMNS:
            columns = f"id, {key_column}, {sha_column or 'NULL'}"
            rows = connection.execute(
                text(f"SELECT {columns} FROM {table} WHERE {key_column} IS NOT NULL")
            )
            for row_id, key, sha256 in rows:
                checked += 1
                digest = hashlib.sha256()
                try:
                    for chunk in store.iter_bytes(key):
                        digest.update(chunk)
                except ObjectNotFound:
                    problems.append(f"{table} {row_id}: {key_column} {key} is missing")
                    continue
                if sha256 and digest.hexdigest() != sha256:
                    problems.append(f"{table} {row_id}: {key} does not hash to {sha256[:12]}…")
    engine.dispose()
    return checked, problems


def populate(settings: Settings, fields: int) -> list[tuple[int, str]]:
    """A registry with a network and `fields` synthetic pairs uploaded from both sides; returns
    the images' (id, sha256)."""
    upgrade(settings)
    _, admin = flow.make_key(settings, "Operations", Role.admin)
    with TestClient(create_app(settings)) as client:
        net = flow.build_network(client, admin, "backup")
        flow.upload_synthetic(net, fields)
        items = client.get(net.url("/images"), headers=net.admin).json()["items"]
    return [(item["id"], item["sha256"]) for item in items]


def served_hashes(settings: Settings, images: list[tuple[int, str]]) -> list[str]:
    """Each image downloaded through the restored API; the ones whose bytes differ."""
    _, admin = flow.make_key(settings, "Restore check", Role.admin)
    wrong = []
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {admin}"}
        pairing = client.get("/api/v1/pairings", headers=headers).json()["items"][0]["id"]
        for image, sha256 in images:
            body = client.get(f"/api/v1/pairings/{pairing}/images/{image}/file", headers=headers)
            if body.status_code != 200 or hashlib.sha256(body.content).hexdigest() != sha256:
                wrong.append(f"image {image}: {body.status_code}")
    return wrong


# ---------------------------------------------------------------- database backends


@contextmanager
def sqlite_database(folder: Path) -> Iterator[tuple[str, callable, callable]]:  # type: ignore[valid-type]
    source = folder / "source" / "pairscope.sqlite"

    def back_up(backup: Path) -> None:
        with sqlite3.connect(source) as live, sqlite3.connect(backup / "pairscope.sqlite") as copy:
            live.backup(copy)  # consistent while the service writes

    def restore(backup: Path) -> str:
        target = folder / "restored" / "pairscope.sqlite"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(backup / "pairscope.sqlite", target)
        return f"sqlite:///{target}"

    yield f"sqlite:///{source}", back_up, restore


def libpq(url: str) -> str:
    """The SQLAlchemy URL as pg_dump / pg_restore take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_database(folder: Path) -> Iterator[tuple[str, callable, callable]]:  # type: ignore[valid-type]
    """A source database and a fresh one to restore into, both dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:10]
    source, target = f"pairscope_backup_{suffix}", f"pairscope_restored_{suffix}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{source}"'))
    base = make_url(POSTGRES_URL)

    def back_up(backup: Path) -> None:
        dump = backup / "pairscope.dump"
        url = libpq(base.set(database=source).render_as_string(hide_password=False))
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", url], check=True)

    def restore(backup: Path) -> str:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{target}"'))
        url = base.set(database=target).render_as_string(hide_password=False)
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={libpq(url)}", str(backup / "pairscope.dump")],
            check=True,
        )
        return url

    try:
        yield base.set(database=source).render_as_string(hide_password=False), back_up, restore
    finally:
        with admin.connect() as connection:
            for name in (source, target):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---------------------------------------------------------------- the check


def check(kind: str, work: Path, fields: int) -> bool:
    backend = sqlite_database if kind == "sqlite" else postgres_database
    folder = work / kind
    (folder / "source").mkdir(parents=True)
    backup = folder / "backup"
    backup.mkdir()
    with backend(folder) as (database_url, back_up, restore):
        source = Settings(
            data_dir=folder / "source", database_url=database_url, storage_backend="local"
        )
        images = populate(source, fields)

        # back up: database first, then objects (an object newer than the dump is harmless;
        # a row newer than the objects copy would name a missing object)
        back_up(backup)
        shutil.copytree(source.resolved_objects_dir, backup / "objects")
        shutil.rmtree(folder / "source")  # the original site is gone

        restored_url = restore(backup)
        restored = Settings(
            data_dir=folder / "restored",
            database_url=restored_url,
            objects_dir=folder / "restored" / "objects",
            storage_backend="local",
        )
        shutil.copytree(backup / "objects", restored.resolved_objects_dir)
        subprocess.run(
            [sys.executable, "-m", "pairscope", "db", "upgrade"],
            env=settings_env(restored),
            check=True,
            capture_output=True,
        )
        checked, problems = store_problems(restored)
        wrong = served_hashes(restored, images)

        first = next(p for p in restored.resolved_objects_dir.rglob("*") if p.is_file())
        first.unlink()
        _, after_loss = store_problems(restored)

    ok = not problems and not wrong and len(after_loss) == 1 and checked >= len(images) > 0
    print(
        f"{kind:8}: {len(images)} images, {checked} objects named by rows checked after restore: "
        f"{len(problems)} problems, {len(wrong)} served wrongly; "
        f"one object removed → {len(after_loss)} problem found — {'OK' if ok else 'FAILED'}"
    )
    for line in problems + wrong:
        print("    problem:", line)
    for line in after_loss:
        print("    found after removing it on purpose:", line)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--fields", type=int, default=4, help="synthetic pairs to back up")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    work = Path(tempfile.mkdtemp(prefix="pairscope-restore-check-"))
    try:
        results = [check(kind, work, args.fields) for kind in kinds]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
