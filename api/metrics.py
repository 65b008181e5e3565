"""Prometheus metrics at /metrics: request latency by route template, bytes uploaded, queue
depths and jobs by state.

The worker is a separate process (often on another machine), so job outcomes and durations are
read from the database at scrape time rather than recorded in the worker: every API replica
reports the same truth and nothing is lost when a worker restarts. Only counts, durations and
fixed names (route templates, queues, states) are exposed: no ids, names, keys or addresses, so
the endpoint needs no key."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.celery_config import QUEUES
from api.settings import Settings

log = logging.getLogger("pairscope.api")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in keys beside its own.
REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
UNMATCHED = "unmatched"  # any path no route answers: never the raw path (unbounded, may leak)


class ApiMetrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "pairscope_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "pairscope_upload_bytes",
            "Bytes received in multipart uploads, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.registry.register(QueueDepthCollector(settings))
        self.registry.register(JobCollector(session_factory))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class QueueDepthCollector(Collector):
    """Messages waiting per queue: LLEN on Redis, message files for the filesystem broker."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "pairscope_queue_depth", "Tasks waiting in each queue of the broker.", labels=["queue"]
        )
        try:
            depths = self._depths()
        except Exception as exc:  # a scrape reports what it can; the broker's state is /readyz's
            log.warning("metrics: cannot count queued tasks: %s", exc)
            return
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family

    def _depths(self) -> dict[str, int]:
        settings = self._settings
        if settings.uses_embedded_broker:
            folder = settings.broker_dir / "queue"
            return {q: sum(1 for _ in folder.glob(f"*.{q}.msg")) for q in QUEUES}
        if not settings.resolved_broker_url.startswith(("redis://", "rediss://")):
            return {}
        import redis

        client = redis.Redis.from_url(
            settings.resolved_broker_url, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            return {
                q: sum(client.llen(q + suffix) for suffix in REDIS_PRIORITY_SUFFIXES)
                for q in QUEUES
            }
        finally:
            client.close()


class JobCollector(Collector):
    """Training and enhancement jobs by state, and the durations of finished ones, from the
    database (the worker's record of each job's outcome)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterable[Metric]:
        from api.tables import EnhancementJob, JobState, TrainingJob

        jobs = GaugeMetricFamily(
            "pairscope_jobs", "Jobs by kind and state.", labels=["kind", "state"]
        )
        durations = SummaryMetricFamily(
            "pairscope_job_duration_seconds",
            "Run time of finished jobs (training: start to end; enhancement: request to end), "
            "by kind and outcome.",
            labels=["kind", "state"],
        )
        finished = (JobState.succeeded, JobState.failed, JobState.cancelled)
        kinds = (
            ("training", TrainingJob, TrainingJob.started_at),
            ("enhancement", EnhancementJob, EnhancementJob.created_at),
        )
        try:
            with self._session_factory() as session:
                for kind, table, start in kinds:
                    counts = dict(
                        session.execute(select(table.state, func.count()).group_by(table.state))
                        .tuples()
                        .all()
                    )
                    for state in JobState:
                        jobs.add_metric([kind, state.value], counts.get(state, 0))
                    spans = session.execute(
                        select(table.state, start, table.finished_at).where(
                            table.state.in_(finished),
                            start.is_not(None),
                            table.finished_at.is_not(None),
                        )
                    ).tuples()
                    totals = {state: [0, 0.0] for state in finished}
                    for state, began, ended in spans:
                        totals[state][0] += 1
                        totals[state][1] += max(0.0, (ended - began).total_seconds())
                    for state, (count, total) in totals.items():
                        durations.add_metric([kind, state.value], count, total)
        except Exception as exc:  # the database being down is /readyz's to report
            log.warning("metrics: cannot count jobs: %s", exc)
            return
        yield jobs
        yield durations


def route_template(scope: Scope) -> str:
    """The template of the route that answered, with the prefixes of the routers it was
    included through (FastAPI keeps the route's own path in the scope, without /api/v1)."""
    route = scope.get("route")
    regex, template = getattr(route, "path_regex", None), getattr(route, "path", None)
    if regex is None or template is None:
        return UNMATCHED
    path: str = scope["path"]
    for cut, char in enumerate(path):
        if char == "/" and regex.match(path[cut:]):
            return path[:cut] + template  # the outer prefixes here are static (/api/v1)
    return UNMATCHED


class MetricsMiddleware:
    """Times every HTTP request and counts upload bytes, labelled by the route template that
    answered it (`/api/v1/pairings/{pairing_id}/images`), never by the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: ApiMetrics = scope["app"].state.metrics
        started = time.perf_counter()
        status = 500
        received = 0
        multipart = any(
            name == b"content-type" and value.startswith(b"multipart/form-data")
            for name, value in scope.get("headers", [])
        )

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive if multipart else receive, recording_send)
        finally:
            route = route_template(scope)
            metrics.latency.labels(route, scope["method"], str(status)).observe(
                time.perf_counter() - started
            )
            if multipart:
                metrics.upload_bytes.labels(route).inc(received)


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
def metrics(request: Request) -> Response:
    """Request latency by route, upload bytes, queue depths and jobs by state, in Prometheus'
    text format. No key needed: only counts and durations, no names or ids."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
