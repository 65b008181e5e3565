"""The `pairscope` command. Thin: parses arguments and calls api/, worker/ or models/."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pairscope import __version__

ALL_QUEUES = "train,infer,default"


def _settings():  # type: ignore[no-untyped-def]
    from api.settings import get_settings

    return get_settings()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy import func, select

    from api.db import make_engine, make_session_factory
    from api.main import create_app
    from api.migrate import upgrade
    from api.tables import Principal

    settings = _settings()
    host, port = args.host or settings.host, args.port or settings.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings)
    worker: subprocess.Popen[bytes] | None = None
    if settings.serve_worker and not args.no_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "pairscope", "worker", "--queues", ALL_QUEUES, "--beat"],
            env=os.environ.copy(),
        )
    with make_session_factory(make_engine(settings))() as session:
        keys = session.scalar(select(func.count(Principal.id))) or 0
    print(f"Pairscope {__version__} on http://{host}:{port}  (API docs: /docs)")
    print(f"  database : {settings.resolved_database_url}")
    local = settings.storage_backend == "local"
    where = settings.resolved_objects_dir if local else f"s3://{settings.s3_bucket}"
    print(f"  objects  : {where}")
    print(
        f"  broker   : {settings.resolved_broker_url}"
        f"{'  (' + str(settings.broker_dir) + ')' if settings.uses_embedded_broker else ''}"
    )
    print(f"  worker   : {'started, pid ' + str(worker.pid) if worker else 'not started here'}")
    if not keys:
        print("  no API key yet: run `pairscope admin create-key --institution NAME` for the first")
    sys.stdout.flush()
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker.app import app
    from worker.devices import count_gpus

    settings = _settings()
    concurrency = args.concurrency
    if concurrency is None:  # one training at a time per GPU; one process otherwise
        concurrency = max(1, count_gpus()) if "train" in args.queues.split(",") else 1
    argv = [
        "worker",
        "--queues",
        args.queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        args.loglevel,
        "--hostname",
        f"{args.name}@%h",
    ]
    if settings.uses_embedded_broker:
        argv += ["--without-mingle", "--without-gossip"]
    if args.beat:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--beat", "--schedule", str(settings.data_dir.resolve() / "beat-schedule")]
    app.worker_main(argv)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from api.migrate import downgrade, upgrade

    settings = _settings()
    if args.action == "upgrade":
        upgrade(settings, args.revision or "head")
    else:
        downgrade(settings, args.revision or "-1")
    print(f"database {args.action}d: {settings.resolved_database_url}")
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from api.auth import issue_key
    from api.db import make_engine, make_session_factory, session_scope
    from api.migrate import upgrade
    from api.tables import Institution, Role

    settings = _settings()
    upgrade(settings)
    with session_scope(make_session_factory(make_engine(settings))) as session:
        institution = session.scalar(
            select(Institution).where(Institution.name == args.institution)
        )
        if institution is None:
            institution = Institution(
                name=args.institution, country=args.country, contact_email=args.contact_email
            )
            session.add(institution)
            print(f"created institution {args.institution!r}", file=sys.stderr)
        principal, key = issue_key(session, institution, Role(args.role), args.label)
        session.flush()
        print(
            f"{args.role} key {principal.id} for {args.institution!r} (shown once):",
            file=sys.stderr,
        )
    print(key)
    return 0


def cmd_train_local(args: argparse.Namespace) -> int:
    from models.cli_science import ScienceInputError, train_local

    try:
        train_local(
            args.lq,
            args.hq,
            args.out,
            preset=args.preset,
            minutes=args.minutes,
            seed=args.seed,
            steps=args.steps,
        )
    except ScienceInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_enhance(args: argparse.Namespace) -> int:
    from models.cli_science import ScienceInputError, enhance

    try:
        enhance(args.model, args.input, args.output, ensemble=args.ensemble, out_dtype=args.dtype)
    except ScienceInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from pairscope.client import Client, ClientError
    from pairscope.upload import upload_folder

    try:
        counts = upload_folder(
            Client(args.url, args.key),
            args.pairing,
            args.side,
            Path(args.folder),
            Path(args.mapping) if args.mapping else None,
            wait_s=args.wait,
        )
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if not counts.get("rejected") else 1


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="service URL (default $PAIRSCOPE_URL or http://127.0.0.1:8000)"
    )
    parser.add_argument("--key", help="API key (default $PAIRSCOPE_API_KEY)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pairscope", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pairscope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (and one worker) on the configured settings")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-worker", action="store_true", help="do not start a worker here")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default=ALL_QUEUES, help=f"comma-separated ({ALL_QUEUES})")
    worker.add_argument("--concurrency", type=int, help="default: one per GPU for train, else 1")
    worker.add_argument(
        "--beat",
        action="store_true",
        help="also run the periodic checks (stale jobs); one per deployment",
    )
    worker.add_argument("--loglevel", default="info")
    worker.add_argument("--name", default="pairscope")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("--revision", help="default: head for upgrade, -1 for downgrade")
    db.set_defaults(func=cmd_db)

    admin = sub.add_parser("admin", help="administration on the server itself")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    key = admin_sub.add_parser("create-key", help="issue an API key and print it once")
    key.add_argument("--institution", required=True, help="created if it does not exist")
    key.add_argument("--role", choices=["admin", "lab", "partner"], default="admin")
    key.add_argument("--label", default="")
    key.add_argument("--country", default="unspecified", help="for a new institution")
    key.add_argument("--contact-email", default="", help="for a new institution")
    key.set_defaults(func=cmd_create_key)

    upload = sub.add_parser("upload", help="upload every TIFF of a folder to one side of a pairing")
    upload.add_argument("--pairing", type=int, required=True)
    upload.add_argument("--side", choices=["lq", "hq"], required=True)
    upload.add_argument("folder")
    upload.add_argument("--mapping", help="CSV with columns filename,field_id")
    upload.add_argument(
        "--wait", type=float, default=120, help="seconds to wait for alignment before the summary"
    )
    _client_options(upload)
    upload.set_defaults(func=cmd_upload)

    train = sub.add_parser("train-local", help="train a generator from two folders, no server")
    train.add_argument("--lq", required=True)
    train.add_argument("--hq", required=True)
    train.add_argument("--out", required=True)
    train.add_argument("--preset", default="cpu-small", choices=["paper", "cpu-small", "tiny"])
    train.add_argument("--minutes", type=float)
    train.add_argument("--steps", type=int)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train_local)

    enhance = sub.add_parser("enhance", help="enhance a TIFF with a saved model, no server")
    enhance.add_argument("--model", required=True)
    enhance.add_argument("input")
    enhance.add_argument("output")
    enhance.add_argument("--ensemble", action="store_true", help="average the 8 flips/rotations")
    enhance.add_argument("--dtype", choices=["float32", "uint16"], default="float32")
    enhance.set_defaults(func=cmd_enhance)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
