"""The `pairscope` command. Thin: parses arguments and calls api/, worker/ or models/."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.output_formats import DEFAULT_FORMAT, OUTPUT_FORMATS
from pairscope import __version__, registry_cli, review_cli
from pairscope.cli_support import (
    HelpFormatter,
    client_options,
    command,
    fail,
    make_client,
    pairing_option,
    print_json,
    run_client,
    to_stderr,
)
from pairscope.server_processes import (
    STOP_GRACE_S,
    database_problem,
    stop_process_group,
    stop_when_parent_ends,
)
from pairscope.worker_extra import HINT, INSTALL, needs_worker_extra, worker_extra_installed

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
    if problem := database_problem(settings):
        return fail(problem, 1)
    upgrade(settings)
    worker: subprocess.Popen[bytes] | None = None
    wants_worker = settings.serve_worker and not args.no_worker
    if wants_worker and worker_extra_installed():
        # Its own process group, so stopping it stops its pool and embedded beat too.
        worker = subprocess.Popen(
            [sys.executable, "-m", "pairscope", "worker", "--queues", ALL_QUEUES, "--beat"]
            + ["--parent-pid", str(os.getpid())],
            env=os.environ.copy(),
            start_new_session=True,
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
    print(f"  worker   : {_worker_line(worker, wants_worker)}")
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
            stop_process_group(worker, grace_s=STOP_GRACE_S)
    return 0


def _worker_line(worker: subprocess.Popen[bytes] | None, wanted: bool) -> str:
    if worker is not None:
        return f"started, pid {worker.pid}"
    return f"not started, it needs the worker extra: {INSTALL}" if wanted else "not started here"


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


@needs_worker_extra
def cmd_worker(args: argparse.Namespace) -> int:
    from celery.signals import worker_ready

    from worker.app import app
    from worker.devices import count_gpus

    if args.parent_pid is not None:
        ready = threading.Event()
        worker_ready.connect(lambda **_: ready.set(), weak=False)
        stop_when_parent_ends(args.parent_pid, ready)

    settings = _settings()
    if problem := database_problem(settings):
        return fail(problem, 1)
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


def cmd_check_store(args: argparse.Namespace) -> int:
    from pairscope.store_check import check_store, render

    report = check_store(_settings())
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 1 if report.missing else 0


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


def run_science(run: Callable[[], object]) -> int:
    """Run a science-core call here, TensorFlow imported quietly first (`run` imports what it
    calls from models/ after that): a bad input is one line and exit 2, success exit 0."""
    from pairscope.quiet_tensorflow import import_tensorflow_quietly

    import_tensorflow_quietly()
    from models.cli_science import ScienceInputError

    try:
        run()
    except ScienceInputError as exc:
        return fail(exc, 2)
    return 0


@needs_worker_extra
def cmd_train_local(args: argparse.Namespace) -> int:
    def run() -> None:
        from models.cli_science import train_local

        train_local(
            args.lq,
            args.hq,
            args.out,
            preset=args.preset,
            minutes=args.minutes,
            seed=args.seed,
            steps=args.steps,
            init=args.init,
        )

    return run_science(run)


def cmd_pretrain(args: argparse.Namespace) -> int:
    def run() -> None:
        from models.cli_pretraining import pretrain_local

        pretrain_local(
            args.out,
            minutes=args.minutes,
            synthetic=args.synthetic,
            pairs_dirs=args.pairs_dir or [],
            preset=args.preset,
            seed=args.seed,
            steps=args.steps,
            shape=args.shape,
        )

    return run_science(run)


def cmd_export(args: argparse.Namespace) -> int:
    """`export --model DIR --sample TIFF` builds a package here; `export --pairing P --version
    N` downloads the one the service built when the version was published."""
    if (args.model is None) == (args.pairing is None):
        return fail("give either --model (a saved model) or --pairing and --version", 2)
    if args.pairing is not None:
        return _download_package(args)
    if args.sample is None:
        return fail("--model needs --sample, a real LQ field of the model's microscope", 2)
    if not worker_extra_installed():  # building a package runs the network here
        return fail(HINT, 2)
    from pairscope.quiet_tensorflow import import_tensorflow_quietly

    import_tensorflow_quietly()
    from models.bioimageio_export import ExportError, export_files
    from models.cli_science import ScienceInputError

    names = [n.strip() for n in args.channel_names.split(",")] if args.channel_names else None
    try:
        result = export_files(
            args.model,
            args.out,
            args.sample,
            channel_names=names,
            pixel_size_um=args.pixel_size_um,
            dataset_digest=args.dataset_digest,
        )
    except (ScienceInputError, ValueError) as exc:
        return fail(exc, 2)
    except ExportError as exc:
        return fail(exc, 1)
    diffs = ", ".join(f"{k} {v:.3g}" for k, v in result.max_abs_diff.items())
    print(
        f"bioimage.io package written to {result.path} (halo {result.halo} px; largest "
        f"difference from Keras: {diffs}; tolerance {result.absolute_tolerance:.3g})"
    )
    return 0


def _download_package(args: argparse.Namespace) -> int:
    if args.version is None:
        return fail("--pairing needs --version N", 2)
    if args.channel_names or args.pixel_size_um or args.dataset_digest:
        return fail("the service's package already names its channels, pixel and snapshot", 2)

    def run() -> None:
        out = Path(args.out)
        path = f"/pairings/{args.pairing}/versions/{args.version}/bioimageio.zip"
        size = make_client(args).download(path, out)
        print(f"bioimage.io package of version {args.version} written to {out} ({size} bytes)")

    return run_client(run)


@needs_worker_extra
def cmd_enhance(args: argparse.Namespace) -> int:
    """`enhance --model M IN OUT` (one file, as before) or `enhance --model M IN... --out DIR`
    (files and folders, the model loaded once for all of them)."""
    from models.files import looks_like_zarr
    from pairscope.client import ClientError
    from pairscope.inputs import collect_tiffs, output_folder, output_name
    from pairscope.quiet_tensorflow import import_tensorflow_quietly

    paths = [Path(p) for p in args.paths]
    if args.out is None:
        if len(paths) != 2:
            return fail(
                "give one input and its output file, or any number of inputs and --out FOLDER",
                2,
            )
        if paths[0].is_dir() and not looks_like_zarr(paths[0]):
            return fail(f"{paths[0]}: a folder; give --out FOLDER for its results", 2)

        def run() -> None:
            from models.cli_science import enhance

            enhance(
                args.model,
                paths[0],
                paths[1],
                ensemble=args.ensemble,
                out_dtype=args.dtype,
                output_format=args.format,
                consistency_path=args.consistency,
                uncertainty_path=args.uncertainty,
            )

        return run_science(run)
    try:
        files = collect_tiffs(paths, zarr=True)
        out_dir = output_folder(Path(args.out))
    except ClientError as exc:
        return fail(exc, exc.exit_code)
    import_tensorflow_quietly()
    from models.cli_science import ScienceInputError, enhance_files

    def result_format(path: Path) -> str:  # by default each result keeps its input's format
        return args.format or ("ome-zarr" if looks_like_zarr(path) else "ome-tiff")

    jobs = [(p, out_dir / output_name(p.name, result_format(p))) for p in files]
    try:
        for folder in (args.consistency, args.uncertainty):
            if folder is not None:
                output_folder(Path(folder))
    except ClientError as exc:
        return fail(exc, exc.exit_code)
    try:
        failed = enhance_files(
            args.model,
            jobs,
            ensemble=args.ensemble,
            out_dtype=args.dtype,
            consistency_dir=args.consistency,
            uncertainty_dir=args.uncertainty,
        )
    except ScienceInputError as exc:
        return fail(exc, 2)
    print(f"{len(files) - len(failed)} of {len(files)} enhanced image(s) written to {out_dir}")
    for path, reason in failed.items():
        print(f"  failed {path}: {reason.removeprefix(f'{path}: ')}")
    return 1 if failed else 0


def cmd_upload(args: argparse.Namespace) -> int:
    from pairscope.upload import upload_folder

    def run() -> int:
        counts = upload_folder(
            make_client(args),
            args.pairing,
            args.side,
            Path(args.folder),
            Path(args.mapping) if args.mapping else None,
            wait_s=args.wait,
        )
        return 1 if counts.get("refused") or counts.get("rejected") else 0

    return run_client(run)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    fractions = {"train": args.train, "validation": args.validation, "test": args.test}
    return run_client(
        lambda: jobs_cli.create_snapshot(make_client(args), args.pairing, fractions, args.seed)
    )


def cmd_train(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> int:
        client = make_client(args)
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

    return run_client(run)


def _follow(client: Client, pairing: int, job_id: int, as_json: bool = False) -> int:
    """0 when the job succeeded, 1 when it failed or was cancelled, 130 when following was
    interrupted; with `as_json`, the finished job on stdout and nothing else there."""
    from pairscope import jobs_cli

    if as_json:
        finished = jobs_cli.follow_training(client, pairing, job_id, say=to_stderr, show_bar=False)
    else:
        finished = jobs_cli.follow_training(client, pairing, job_id)
    if finished is None:
        return 130
    if as_json:
        print_json(finished)
        return 0 if finished["state"] == "succeeded" else 1
    return 0 if jobs_cli.report_finished(client, pairing, finished) else 1


def cmd_follow(args: argparse.Namespace) -> int:
    return run_client(lambda: _follow(make_client(args), args.pairing, args.job, args.json))


def cmd_status(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> None:
        client = make_client(args)
        if args.json:
            print_json(client.get(f"/pairings/{args.pairing}/training-jobs/{args.job}"))
        else:
            jobs_cli.job_status(client, args.pairing, args.job)

    return run_client(run)


def cmd_cancel(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    return run_client(lambda: jobs_cli.cancel_training(make_client(args), args.pairing, args.job))


def cmd_versions(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> None:
        if args.json:
            print_json(make_client(args).all_pages(f"/pairings/{args.pairing}/versions"))
        else:
            jobs_cli.list_versions(make_client(args), args.pairing)

    return run_client(run)


def cmd_promote(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> int:
        moved = jobs_cli.promote(
            make_client(args), args.pairing, args.version, args.alias, args.override_reason
        )
        if not moved and args.override_reason is None:
            print("an admin key may override: add --override-reason TEXT (it is recorded)")
        return 0 if moved else 1

    return run_client(run)


def cmd_rollback(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    return run_client(lambda: jobs_cli.rollback(make_client(args), args.pairing, args.alias))


def cmd_enhance_remote(args: argparse.Namespace) -> int:
    from pairscope import jobs_cli

    def run() -> int:
        job, _, failed = jobs_cli.enhance_remote(
            make_client(args),
            args.pairing,
            [Path(p) for p in args.inputs],
            Path(args.out),
            args.version,
            args.dtype,
            args.ensemble,
            output_format=args.format,
        )
        if job is None:
            return 130
        return 1 if failed else 0

    return run_client(run)


def cmd_demo(args: argparse.Namespace) -> int:
    from pairscope.demo import DemoError, run_demo

    def run() -> int:
        try:
            run_demo(args.url, args.key, Path(args.out), args.fields, args.size, args.steps)
        except DemoError as exc:  # a step did not succeed: not the command's fault
            return fail(exc, 1)
        return 0

    return run_client(run)


# --------------------------------------------------------------------------- the parser


DESCRIPTION = """Pairscope: cross-system microscopy enhancement, as a service for a network of labs.

Server commands (serve, worker, db, admin) run where the service runs. Client commands talk to
a service over its REST API: --url and --key, or $PAIRSCOPE_URL and $PAIRSCOPE_API_KEY. The
registry (institutions, microscopes, pairings, keys) and what a lab reviews (pairs, datasets,
aliases, report, model) are groups of verbs: `pairscope pairs list --pairing 1`. Every read
command prints an aligned table, or JSON with --json. train-local and enhance need no service.
worker, train-local and enhance need the worker extra (TensorFlow): pip install 'pairscope[worker]'.
`pairscope COMMAND -h` shows a command's options and examples."""

EPILOG = """examples (a whole workflow):
  pairscope serve --demo
  pairscope institutions create --name 'Widefield Lab' --country PL --contact-email a@lab.org
  pairscope microscopes create --institution 2 --name WF60 --modality widefield ...
  pairscope pairings create --name wf-to-confocal --lq 1 --hq 2
  pairscope keys create --institution 2 --role lab
  pairscope upload --pairing 1 --side lq widefield/
  pairscope pairs list --pairing 1 --status rejected
  pairscope snapshot --pairing 1
  pairscope train --pairing 1 --dataset 1
  pairscope versions --pairing 1
  pairscope report --pairing 1 --version 1 --out reports/
  pairscope promote --pairing 1 --version 1
  pairscope enhance-remote --pairing 1 --out enhanced/ new-fields/

exit status: 0 when everything asked for succeeded; 1 when some of it failed (each failure is
named with its reason) or the service cannot be reached; 2 for a usage error (bad arguments, a
missing file, a request the service refuses); 130 when interrupted."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairscope",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pairscope {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND -h: how)"
    )
    _server_commands(sub)
    registry_cli.register(sub)
    _data_commands(sub)
    review_cli.register(sub)
    _model_commands(sub)
    _local_commands(sub)
    return parser


def _server_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = command(
        sub,
        "serve",
        "run the API (and one worker) on the configured settings",
        """
With no settings it runs on SQLite, local files and an embedded broker in ./var, migrating
the database first. PAIRSCOPE_* variables (or a .env file) choose PostgreSQL, S3 and Redis.
""",
        """
pairscope serve
pairscope serve --host 0.0.0.0 --port 8080 --no-worker
pairscope serve --demo     # first run: issue an admin key and show the whole network working
""",
    )
    serve.add_argument("--host", help="address to listen on (default $PAIRSCOPE_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="port to listen on (default $PAIRSCOPE_PORT or 8000)"
    )
    serve.add_argument("--no-worker", action="store_true", help="do not start a worker here")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="on a fresh database, issue the first admin key and run `pairscope demo` once",
    )
    serve.set_defaults(func=cmd_serve)

    worker = command(
        sub,
        "worker",
        "run a Celery worker",
        """
Aligns uploaded pairs, trains and enhances, taking tasks from the broker of the settings.
A worker on the train queue runs one training per GPU it finds (nvidia-smi).
""",
        """
pairscope worker
pairscope worker --queues train --name gpu-box-1
pairscope worker --queues default,infer --beat    # also the periodic checks, once per deployment
""",
    )
    worker.add_argument(
        "--queues", default=ALL_QUEUES, help="comma-separated queues to take tasks from"
    )
    worker.add_argument(
        "--concurrency", type=int, help="processes (default: one per GPU for train, else 1)"
    )
    worker.add_argument(
        "--beat",
        action="store_true",
        help="also run the periodic checks (stale jobs); one per deployment",
    )
    worker.add_argument(
        "--loglevel",
        default="info",
        help="Celery's log level: debug, info, warning, error or critical",
    )
    worker.add_argument("--name", default="pairscope", help="worker name, before @hostname")
    worker.add_argument(
        "--parent-pid",
        type=int,
        help="stop when the parent process is no longer PID (`serve` passes its own)",
    )
    worker.set_defaults(func=cmd_worker)

    db = command(
        sub,
        "db",
        "database migrations",
        "Apply (upgrade) or undo (downgrade) migrations on the configured database.",
        """
pairscope db upgrade
pairscope db downgrade --revision -1
""",
    )
    db.add_argument("action", choices=["upgrade", "downgrade"], help="which way to migrate")
    db.add_argument("--revision", help="target (default: head for upgrade, -1 for downgrade)")
    db.set_defaults(func=cmd_db)

    admin = command(
        sub,
        "admin",
        "administration on the server itself",
        "Commands that write straight into the configured database, without the REST API.",
        "pairscope admin create-key --institution 'Network Operations'",
    )
    admin_sub = admin.add_subparsers(
        dest="admin_command", required=True, metavar="COMMAND", help="what to do"
    )
    key = command(
        admin_sub,
        "create-key",
        "issue an API key and print it once",
        """
The key goes to stdout (its description to stderr), so `KEY=$(pairscope admin create-key ...)`
keeps it. The institution is created when it does not exist.
""",
        """
pairscope admin create-key --institution 'Network Operations'
pairscope admin create-key --institution 'Widefield Lab' --role lab --label 'microscope PC'
""",
    )
    key.add_argument(
        "--institution", required=True, help="the key's institution; created if it does not exist"
    )
    key.add_argument(
        "--role", choices=["admin", "lab", "partner"], default="admin", help="what the key may do"
    )
    key.add_argument("--label", default="", help="a note to recognise the key by")
    key.add_argument("--country", default="unspecified", help="for a new institution")
    key.add_argument("--contact-email", default="", help="for a new institution")
    key.set_defaults(func=cmd_create_key)
    check = command(
        admin_sub,
        "check-store",
        "list database rows whose objects are missing from the store",
        """
Asks the object store for every object the database refers to: images, aligned pairs and
previews, dataset members, version artifacts, enhancement inputs and outputs, checkpoints.
Exit 1 with a table of the rows whose object is missing; exit 0 when all are present.
""",
        """
pairscope admin check-store
pairscope admin check-store --json
""",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=cmd_check_store)


def _data_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    upload = command(
        sub,
        "upload",
        "upload every TIFF of a folder to one side of a pairing",
        """
Files already on the server (same field and checksum) are skipped, so it can be run again
after an interruption. Each file's field is its name without the .tif/.ome.tif suffix, or
the field_id of its row in --mapping. Then it waits for the worker to align the new pairs
and prints how many were accepted or rejected, and why. Exit 1 when a file was refused or
a pair rejected.
""",
        """
pairscope upload --pairing 1 --side lq widefield/
pairscope upload --pairing 1 --side hq confocal/ --mapping fields.csv --wait 0
""",
    )
    pairing_option(upload)
    upload.add_argument(
        "--side", choices=["lq", "hq"], required=True, help="which microscope took these images"
    )
    upload.add_argument("folder", help="folder of TIFF files (other files are ignored)")
    upload.add_argument(
        "--mapping", metavar="CSV", help="CSV with columns filename,field_id naming each field"
    )
    upload.add_argument(
        "--wait",
        type=float,
        default=120,
        metavar="SECONDS",
        help="how long to wait for alignment before the summary",
    )
    client_options(upload)
    upload.set_defaults(func=cmd_upload)

    snapshot = command(
        sub,
        "snapshot",
        "freeze a pairing's accepted pairs into a dataset",
        """
The accepted pairs are split by field into train, validation and test; the dataset id it
prints is what `pairscope train --dataset` takes.
""",
        """
pairscope snapshot --pairing 1
pairscope snapshot --pairing 1 --train 0.8 --validation 0.1 --test 0.1 --seed 3
""",
    )
    pairing_option(snapshot)
    snapshot.add_argument("--train", type=float, default=0.7, help="fraction of fields")
    snapshot.add_argument("--validation", type=float, default=0.15, help="fraction of fields")
    snapshot.add_argument("--test", type=float, default=0.15, help="fraction of fields")
    snapshot.add_argument("--seed", type=int, default=0, help="decides the split")
    client_options(snapshot)
    snapshot.set_defaults(func=cmd_snapshot)


def _model_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    job = "--pairing 1 --job 7"
    remote_train = command(
        sub,
        "train",
        "start a training job on the service and follow it until it ends",
        """
A worker trains; this command draws its progress (steps, ETA, validation scores) and, when
it succeeds, the new version with its median scores against Richardson-Lucy and the input.
Ctrl-C stops following, not the job. Exit 1 when the job failed or was cancelled.
""",
        """
pairscope train --pairing 1 --dataset 2
pairscope train --pairing 1 --dataset 2 --preset tiny --set steps=400 --set learning_rate=2e-3
pairscope train --pairing 1 --dataset 2 --minutes 30 --no-follow
""",
    )
    pairing_option(remote_train)
    remote_train.add_argument(
        "--dataset", type=int, required=True, metavar="ID", help="a snapshot id"
    )
    remote_train.add_argument("--preset", default="cpu-small", help="paper, cpu-small or tiny")
    remote_train.add_argument("--minutes", type=float, help="time budget (default: the preset's)")
    remote_train.add_argument("--seed", type=int, help="training seed (default: the preset's)")
    remote_train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a Config field (repeatable), e.g. --set steps=400",
    )
    remote_train.add_argument(
        "--no-follow", action="store_true", help="print the job id and return at once"
    )
    client_options(remote_train)
    remote_train.set_defaults(func=cmd_train)

    follow = command(
        sub,
        "follow",
        "follow a training job until it ends",
        """
The same progress and report as `pairscope train`, for a job started earlier or elsewhere.
With --json it waits without a progress bar and prints the finished job as JSON. Exit 1
when the job failed or was cancelled.
""",
        f"""
pairscope follow {job}
pairscope follow {job} --json | jq .version
""",
    )
    pairing_option(follow)
    follow.add_argument("--job", type=int, required=True, metavar="ID", help="training job id")
    follow.add_argument("--json", action="store_true", help="print the finished job as JSON")
    client_options(follow)
    follow.set_defaults(func=cmd_follow)

    status = command(
        sub,
        "status",
        "show where a training job is now",
        "One line (state, step, ETA, latest validation scores), or the job as JSON.",
        f"""
pairscope status {job}
pairscope status {job} --json | jq -r .state
""",
    )
    pairing_option(status)
    status.add_argument("--job", type=int, required=True, metavar="ID", help="training job id")
    status.add_argument("--json", action="store_true", help="print the job as JSON")
    client_options(status)
    status.set_defaults(func=cmd_status)

    cancel = command(
        sub,
        "cancel",
        "stop a training job at its next step",
        "A queued job is cancelled at once; a running one stops at its next step.",
        f"pairscope cancel {job}",
    )
    pairing_option(cancel)
    cancel.add_argument("--job", type=int, required=True, metavar="ID", help="training job id")
    client_options(cancel)
    cancel.set_defaults(func=cmd_cancel)

    versions = command(
        sub,
        "versions",
        "a pairing's versions with their median scores",
        """
One row per version: when, how many steps, on which device, the median PSNR and SSIM of the
generator, Richardson-Lucy and the input on the test fields, and the aliases pointing at it.
""",
        """
pairscope versions --pairing 1
pairscope versions --pairing 1 --json | jq '.[] | {number, aliases}'
""",
    )
    pairing_option(versions)
    versions.add_argument("--json", action="store_true", help="print the versions as JSON")
    client_options(versions)
    versions.set_defaults(func=cmd_versions)

    promote = command(
        sub,
        "promote",
        "point an alias at a version (quality-gated)",
        """
The service refuses a version that does not beat Richardson-Lucy and the current production
version; the refusal shows the figures and exits 1. An admin key may override with a reason.
""",
        """
pairscope promote --pairing 1 --version 3
pairscope promote --pairing 1 --version 3 --alias staging
pairscope promote --pairing 1 --version 3 --override-reason 'new stain, RL not comparable'
""",
    )
    pairing_option(promote)
    promote.add_argument(
        "--version", type=int, required=True, metavar="N", help="the version's number"
    )
    promote.add_argument(
        "--alias", choices=["production", "staging"], default="production", help="which alias"
    )
    promote.add_argument("--override-reason", help="admin only: promote past the quality gate")
    client_options(promote)
    promote.set_defaults(func=cmd_promote)

    rollback = command(
        sub,
        "rollback",
        "move an alias back to its previous version",
        "The alias returns to the version it pointed at before its last move.",
        """
pairscope rollback --pairing 1
pairscope rollback --pairing 1 --alias staging
""",
    )
    pairing_option(rollback)
    rollback.add_argument(
        "--alias", choices=["production", "staging"], default="production", help="which alias"
    )
    client_options(rollback)
    rollback.set_defaults(func=cmd_rollback)

    remote = command(
        sub,
        "enhance-remote",
        "enhance TIFF files or folders on the service, download results",
        """
All inputs go up in one request; a worker enhances them with the pairing's production
version (or --version) and each result is downloaded as <stem>_enhanced.ome.tif (with
--format ome-zarr: <stem>_enhanced.ome.zarr.zip, an OME-Zarr store zipped). Results already
computed are reused. Exit 1 when some image failed (each is named with its reason).
""",
        """
pairscope enhance-remote --pairing 1 --out enhanced/ new-fields/
pairscope enhance-remote --pairing 1 --version 3 --dtype uint16 --ensemble --out out/ a.tif b.tif
pairscope enhance-remote --pairing 1 --format ome-zarr --out enhanced/ big-field.tif
""",
    )
    pairing_option(remote)
    remote.add_argument(
        "--version", type=int, metavar="N", help="version number (default: the production alias)"
    )
    remote.add_argument(
        "--dtype", choices=["float32", "uint16"], default="float32", help="output pixel type"
    )
    remote.add_argument("--ensemble", action="store_true", help="average the 8 flips/rotations")
    remote.add_argument(
        "--format",
        choices=list(OUTPUT_FORMATS),
        default=DEFAULT_FORMAT,
        help="output file: OME-TIFF, or an OME-Zarr store (NGFF 0.4, pyramid) zipped",
    )
    remote.add_argument("inputs", nargs="+", metavar="INPUT", help="TIFF files or folders")
    remote.add_argument("--out", required=True, help="folder for the <stem>_enhanced outputs")
    client_options(remote)
    remote.set_defaults(func=cmd_enhance_remote)

    demo = command(
        sub,
        "demo",
        "show the whole network working through a running service's REST API",
        """
Registers two labs and their microscopes, pairs them, uploads synthetic fields from both
sides, snapshots, trains a tiny generator, promotes it and enhances a new field, all over
HTTP. Needs an admin key, or runs from the folder `pairscope serve` runs in to issue one.
""",
        """
pairscope demo
pairscope demo --url http://lab-server:8000 --key $ADMIN_KEY --steps 300
""",
    )
    demo.add_argument("--out", default="demo-output", help="folder for what the demo downloads")
    demo.add_argument("--fields", type=int, default=8, help="synthetic fields to upload")
    demo.add_argument("--size", type=int, default=160, help="side of each field, pixels")
    demo.add_argument("--steps", type=int, default=600, help="training steps")
    client_options(demo)
    demo.set_defaults(func=cmd_demo)


TF_LOGS = "TensorFlow's start-up logs are hidden; set TF_CPP_MIN_LOG_LEVEL=0 to see them."


def _local_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    train = command(
        sub,
        "train-local",
        "train a generator from two folders, no server",
        f"""
Files of the two folders pair by name (field_001.tif with field_001.tif); every pair must
have one shape. The model folder appears at --out only when training finished.
{TF_LOGS}
""",
        """
pairscope train-local --lq widefield/ --hq confocal/ --out my-model
pairscope train-local --lq wf/ --hq conf/ --out quick-model --preset tiny --steps 200
""",
    )
    train.add_argument("--lq", required=True, metavar="FOLDER", help="the low-quality images")
    train.add_argument("--hq", required=True, metavar="FOLDER", help="their high-quality partners")
    train.add_argument("--out", required=True, metavar="MODEL", help="folder to save the model to")
    train.add_argument(
        "--preset",
        default="cpu-small",
        choices=["paper", "cpu-small", "tiny"],
        help="network size and training schedule",
    )
    train.add_argument("--minutes", type=float, help="time budget (default: the preset's)")
    train.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument(
        "--init",
        metavar="base|DIR",
        help="start from a base: 'base' (shipped with the package) or a model folder",
    )
    train.set_defaults(func=cmd_train_local)

    pretrain = command(
        sub,
        "pretrain",
        "train a channel-agnostic base model, no server",
        f"""
The base is one single-channel generator trained on every channel of synthetic pairs (over a
range of optics, pixel sizes and noise) and of the aligned pairs in each --pairs-dir (a folder
with lq/ and hq/ subfolders, files paired by name); train-local --init DIR starts from it.
{TF_LOGS}
""",
        """
pairscope pretrain --out my-base --minutes 30 --synthetic 64
pairscope pretrain --out my-base --minutes 60 --synthetic 32 --pairs-dir lab-a/ --pairs-dir lab-b/
pairscope train-local --lq wf/ --hq conf/ --out my-model --init my-base
""",
    )
    pretrain.add_argument("--out", required=True, metavar="DIR", help="folder to save the base to")
    pretrain.add_argument("--minutes", type=float, help="time budget (default: the preset's)")
    pretrain.add_argument(
        "--synthetic", type=int, default=32, metavar="N", help="synthetic fields to simulate"
    )
    pretrain.add_argument(
        "--pairs-dir",
        action="append",
        metavar="FOLDER",
        help="a folder with lq/ and hq/ aligned pairs (repeatable)",
    )
    pretrain.add_argument(
        "--preset",
        default="cpu-small",
        choices=["paper", "cpu-small", "tiny"],
        help="network size and training schedule",
    )
    pretrain.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    pretrain.add_argument("--seed", type=int, default=0, help="random seed")
    pretrain.add_argument(
        "--shape",
        type=int,
        default=96,
        metavar="PX",
        help="side of each synthetic field in pixels (at least the preset's patch size)",
    )
    pretrain.set_defaults(func=cmd_pretrain)

    enhance = command(
        sub,
        "enhance",
        "enhance TIFF files with a saved model, no server",
        f"""
Either one input and its output file, or any number of files and folders with --out: each
result is written there as <stem>_enhanced.ome.tif, the model loaded once for all of them.
Exit 1 when some input could not be enhanced (each is named with its reason).
An input named *.zarr (or a folder holding Zarr metadata) is read as OME-Zarr; an output is
OME-Zarr (NGFF 0.4, with a pyramid) when it ends in .zarr or --format ome-zarr is given (with
--out each result keeps its input's format unless --format says otherwise). OME-Zarr in and
out is enhanced block by block: the image never has to fit in memory.
{TF_LOGS}
""",
        """
pairscope enhance --model my-model field_001.tif field_001_enhanced.ome.tif
pairscope enhance --model my-model --out enhanced/ new-fields/ extra.tif
pairscope enhance --model my-model --dtype uint16 --ensemble --out enhanced/ new-fields/
pairscope enhance --model my-model slide.ome.zarr slide_enhanced.ome.zarr
""",
    )
    enhance.add_argument("--model", required=True, help="a saved model folder (or its .zip)")
    enhance.add_argument(
        "paths",
        nargs="+",
        metavar="INPUT",
        help="TIFF files or folders; without --out exactly two: the input and the output file",
    )
    enhance.add_argument("--out", metavar="FOLDER", help="folder for <stem>_enhanced.ome.tif")
    enhance.add_argument("--ensemble", action="store_true", help="average the 8 flips/rotations")
    enhance.add_argument(
        "--dtype", choices=["float32", "uint16"], default="float32", help="output pixel type"
    )
    enhance.add_argument(
        "--format",
        choices=list(OUTPUT_FORMATS),
        help="output format (default: by the output's suffix; with --out, the input's)",
    )
    enhance.add_argument(
        "--consistency",
        metavar="PATH",
        help="also write the consistency maps (an OME-TIFF of named channels): a file for one "
        "input, with --out a folder for <stem>_enhanced_trust.ome.tif",
    )
    enhance.add_argument(
        "--uncertainty",
        metavar="PATH",
        help="also write the calibrated uncertainty maps (like --consistency); only for models "
        "that carry a calibration",
    )
    enhance.set_defaults(func=cmd_enhance)

    export = command(
        sub,
        "export",
        "a model as a bioimage.io package: a saved model here, or a service version's",
        f"""
The package (model description format 0.5) runs in deepImageJ, ilastik or bioimageio.core:
ONNX and Keras HDF5 weights, each checked against the model's own output; the normalisation
fixed to the percentiles of a field of the model's microscope that also gives the test tensors
and the cover.

With --model, the package is built here from --sample. The .zip appears only when it
validates. Exit 1 when a weight format does not reproduce the model within the stated
tolerance. {TF_LOGS}

With --pairing and --version, the package the service built when it published the version
(from its representative test field, with the pairing's channel names and pixel grid) is
downloaded; no TensorFlow here. Exit 2 when the version has none (the reason is printed).
""",
        """
pairscope export --model my-model --sample widefield/field_001.tif --out my-model.bioimageio.zip
pairscope export --model v3.zip --sample f.tif --channel-names DAPI,actin --out pkg.zip
pairscope export --pairing 1 --version 3 --out wf-to-confocal-v3.bioimageio.zip
""",
    )
    export.add_argument("--model", help="a saved model folder (or its .zip)")
    export.add_argument("--out", required=True, metavar="PKG.zip", help="the package to write")
    export.add_argument(
        "--sample", metavar="TIFF", help="with --model: a real LQ field of the model's microscope"
    )
    export.add_argument(
        "--channel-names", metavar="A,B", help="channel names, comma-separated (default channel0…)"
    )
    export.add_argument(
        "--pixel-size-um", type=float, help="pixel size in µm (default: the sample's metadata)"
    )
    export.add_argument("--dataset-digest", help="the training snapshot's digest, if known")
    export.add_argument("--pairing", type=int, metavar="ID", help="a service pairing's id")
    export.add_argument("--version", type=int, metavar="N", help="with --pairing: its version")
    client_options(export)
    export.set_defaults(func=cmd_export)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
