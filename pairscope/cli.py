"""The `pairscope` command. Thin: parses arguments and calls api/, worker/ or models/."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pairscope import __version__

if TYPE_CHECKING:
    from api.settings import Settings
    from pairscope.client import Client
    from pairscope.demo import BackgroundDemo

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
    demo, demo_lines = _serve_demo(args, settings, host, port, keys)
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
    for line in demo_lines:
        print(line)
    if not keys and demo is None:
        print("  no API key yet: run `pairscope admin create-key --institution NAME` for the first")
    sys.stdout.flush()
    if demo is not None:
        demo.start()
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it; with the default action
    # that would end this process before `finally`, orphaning the worker. Exit normally instead.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    finally:
        if demo is not None:
            demo.stop()
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0


def _serve_demo(
    args: argparse.Namespace, settings: Settings, host: str, port: int, keys: int
) -> tuple[BackgroundDemo | None, list[str]]:
    """`serve --demo` on a fresh database: issue the first admin key (shown once) and return the
    demo to run once the API answers, with the lines to show; on a database in use, say why it
    is skipped (the demo is for a first run, not for every start)."""
    if not args.demo:
        return None, []
    if keys:
        return None, ["  demo     : skipped, the database is not fresh (run `pairscope demo`)"]
    from pairscope.admin import create_key
    from pairscope.demo import BackgroundDemo, loopback_url

    issued = create_key(settings, "Network Operations", "admin", "first key (serve --demo)")
    return BackgroundDemo(loopback_url(host, port), issued.key), [
        f"  admin key: {issued.key}  (shown once; the demo uses it too)",
        "  demo     : runs once the API is ready; its files go to ./demo-output",
    ]


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
    from pairscope.admin import create_key

    issued = create_key(
        _settings(), args.institution, args.role, args.label, args.country, args.contact_email
    )
    if issued.created_institution:
        print(f"created institution {args.institution!r}", file=sys.stderr)
    print(
        f"{args.role} key {issued.principal_id} for {args.institution!r} (shown once):",
        file=sys.stderr,
    )
    print(issued.key)
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


def _client_command(run: Callable[[], object]) -> int:
    """Run a client command: the service's refusals are one line on stderr and exit 2; Ctrl-C
    outside of following a job exits 130 without a traceback. An int result is the exit
    status; anything else (what the command printed about) means success."""
    from pairscope.client import ClientError

    try:
        result = run()
        return result if isinstance(result, int) and not isinstance(result, bool) else 0
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _client(args: argparse.Namespace) -> Client:
    from pairscope.client import Client

    return Client(args.url, args.key)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    fractions = {"train": args.train, "validation": args.validation, "test": args.test}
    return _client_command(
        lambda: jobs_cli.create_snapshot(_client(args), args.pairing, fractions, args.seed)
    )


def cmd_train(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> int:
        client = _client(args)
        overrides = jobs_cli.parse_overrides(args.set or [])
        job = jobs_cli.start_training(
            client, args.pairing, args.dataset, args.preset, overrides, args.seed, args.minutes
        )
        if args.no_follow:
            print(
                f"follow it: {jobs_cli.follow_hint(args.pairing, job['id'])}; "
                f"stop it: {jobs_cli.cancel_hint(args.pairing, job['id'])}"
            )
            return 0
        return _follow(client, args.pairing, job["id"])

    return _client_command(run)


def _follow(client: Client, pairing: int, job_id: int) -> int:
    from pairscope import jobs_cli

    finished = jobs_cli.follow_training(client, pairing, job_id)
    if finished is None:
        return 130
    return 0 if jobs_cli.report_finished(client, pairing, finished) else 1


def cmd_follow(args: argparse.Namespace) -> int:
    return _client_command(lambda: _follow(_client(args), args.pairing, args.job))


def cmd_cancel(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    return _client_command(lambda: jobs_cli.cancel_training(_client(args), args.pairing, args.job))


def cmd_versions(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    return _client_command(lambda: jobs_cli.list_versions(_client(args), args.pairing))


def cmd_promote(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> int:
        moved = jobs_cli.promote(
            _client(args), args.pairing, args.version, args.alias, args.override_reason
        )
        if not moved and args.override_reason is None:
            print("an admin key may override: add --override-reason TEXT (it is recorded)")
        return 0 if moved else 1

    return _client_command(run)


def cmd_rollback(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    return _client_command(lambda: jobs_cli.rollback(_client(args), args.pairing, args.alias))


def cmd_enhance_remote(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> int:
        job, _, failed = jobs_cli.enhance_remote(
            _client(args),
            args.pairing,
            [Path(p) for p in args.inputs],
            Path(args.out),
            args.version,
            args.dtype,
            args.ensemble,
        )
        if job is None:
            return 130
        return 1 if failed else 0

    return _client_command(run)


def cmd_demo(args: argparse.Namespace) -> int:
    from pairscope.demo import DemoError, run_demo

    def run() -> int:
        try:
            run_demo(args.url, args.key, Path(args.out), args.fields, args.size, args.steps)
        except DemoError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    return _client_command(run)


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
    serve.add_argument(
        "--demo",
        action="store_true",
        help="on a fresh database, issue the first admin key and run `pairscope demo` once",
    )
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

    snapshot = sub.add_parser("snapshot", help="freeze a pairing's accepted pairs into a dataset")
    snapshot.add_argument("--pairing", type=int, required=True)
    snapshot.add_argument("--train", type=float, default=0.7, help="fraction of fields")
    snapshot.add_argument("--validation", type=float, default=0.15, help="fraction of fields")
    snapshot.add_argument("--test", type=float, default=0.15, help="fraction of fields")
    snapshot.add_argument("--seed", type=int, default=0, help="decides the split")
    _client_options(snapshot)
    snapshot.set_defaults(func=cmd_snapshot)

    remote_train = sub.add_parser(
        "train", help="start a training job on the service and follow it until it ends"
    )
    remote_train.add_argument("--pairing", type=int, required=True)
    remote_train.add_argument("--dataset", type=int, required=True, help="a snapshot id")
    remote_train.add_argument("--preset", default="cpu-small", help="paper, cpu-small or tiny")
    remote_train.add_argument("--minutes", type=float, help="time budget")
    remote_train.add_argument("--seed", type=int)
    remote_train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a Config field (repeatable), e.g. --set steps=400",
    )
    remote_train.add_argument(
        "--no-follow", action="store_true", help="print the job id and return at once"
    )
    _client_options(remote_train)
    remote_train.set_defaults(func=cmd_train)

    follow = sub.add_parser("follow", help="follow a training job until it ends")
    follow.add_argument("--pairing", type=int, required=True)
    follow.add_argument("--job", type=int, required=True)
    _client_options(follow)
    follow.set_defaults(func=cmd_follow)

    cancel = sub.add_parser("cancel", help="stop a training job at its next step")
    cancel.add_argument("--pairing", type=int, required=True)
    cancel.add_argument("--job", type=int, required=True)
    _client_options(cancel)
    cancel.set_defaults(func=cmd_cancel)

    versions = sub.add_parser("versions", help="a pairing's versions with their median scores")
    versions.add_argument("--pairing", type=int, required=True)
    _client_options(versions)
    versions.set_defaults(func=cmd_versions)

    promote = sub.add_parser("promote", help="point an alias at a version (quality-gated)")
    promote.add_argument("--pairing", type=int, required=True)
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--alias", choices=["production", "staging"], default="production")
    promote.add_argument("--override-reason", help="admin only: promote past the quality gate")
    _client_options(promote)
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="move an alias back to its previous version")
    rollback.add_argument("--pairing", type=int, required=True)
    rollback.add_argument("--alias", choices=["production", "staging"], default="production")
    _client_options(rollback)
    rollback.set_defaults(func=cmd_rollback)

    remote = sub.add_parser(
        "enhance-remote", help="enhance TIFF files or folders on the service, download results"
    )
    remote.add_argument("--pairing", type=int, required=True)
    remote.add_argument("--version", type=int, help="default: the production alias")
    remote.add_argument("--dtype", choices=["float32", "uint16"], default="float32")
    remote.add_argument("--ensemble", action="store_true", help="average the 8 flips/rotations")
    remote.add_argument("inputs", nargs="+", metavar="INPUT", help="TIFF files or folders")
    remote.add_argument("--out", required=True, help="folder for <stem>_enhanced.ome.tif")
    _client_options(remote)
    remote.set_defaults(func=cmd_enhance_remote)

    demo = sub.add_parser(
        "demo", help="show the whole network working through a running service's REST API"
    )
    demo.add_argument("--out", default="demo-output", help="folder for what the demo downloads")
    demo.add_argument("--fields", type=int, default=8, help="synthetic fields to upload")
    demo.add_argument("--size", type=int, default=160, help="side of each field, pixels")
    demo.add_argument("--steps", type=int, default=600, help="training steps")
    _client_options(demo)
    demo.set_defaults(func=cmd_demo)

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
