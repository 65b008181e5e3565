"""The database is the source of truth for accepted work; the broker only carries reminders.

Every worker runs `reconcile` at start and on a timer in its main process (not only the one
with beat), so a message lost anywhere (Redis restarted without persistence, a dispatch that
crashed, a broker that was down when the API accepted the request, a worker killed mid-task) is
sent again:

* a row that was never sent (`dispatched_at` empty) is sent at once;
* a row still waiting `PAIRSCOPE_DISPATCH_GRACE_S` after it was sent is sent again, but only
  when its queue is empty: a waiting message would still be ahead of it in a busy queue;
* a running training, pretraining or enhancement job whose heartbeat is older than
  `PAIRSCOPE_JOB_STALE_AFTER_S` (its worker died) is put back in the queue by
  `worker/reaper.py` (which fails one that used up its attempts) and sent.

Each send is preceded by a conditional UPDATE of `dispatched_at`, so of two workers sweeping at
once only one sends a row. The tasks are idempotent (they claim their row), so a duplicate is
harmless."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Celery
from kombu.exceptions import ChannelError
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.celery_config import ALIGN_PAIR, ENHANCE, PRETRAIN, READINESS_REPORT, TASK_ROUTES, TRAIN
from api.db import session_scope
from api.settings import Settings
from api.tables import (
    EnhancementJob,
    JobState,
    Pair,
    PairStatus,
    PretrainingJob,
    ReadinessReport,
    TaskState,
    TrainingJob,
    utcnow,
)
from worker import reaper

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WaitingWork:
    """One kind of row that waits for a task: its table, the task and when a row waits."""

    task: str
    table: Any
    waiting: ColumnElement[bool]

    @property
    def queue(self) -> str:
        return TASK_ROUTES[self.task]["queue"]


WAITING_WORK = (
    WaitingWork(TRAIN, TrainingJob, TrainingJob.state == JobState.queued),
    WaitingWork(PRETRAIN, PretrainingJob, PretrainingJob.state == JobState.queued),
    WaitingWork(ENHANCE, EnhancementJob, EnhancementJob.state == JobState.queued),
    WaitingWork(ALIGN_PAIR, Pair, Pair.status == PairStatus.pending),
    WaitingWork(READINESS_REPORT, ReadinessReport, ReadinessReport.state == TaskState.queued),
)


def reconcile(factory: sessionmaker[Session], settings: Settings, app: Celery) -> dict[str, Any]:
    """Requeue work whose worker died, then send every waiting row that is due."""
    reaped = reaper.reap(factory, settings)
    sent: dict[str, list[int]] = {}
    for work in WAITING_WORK:
        ids = send_due(factory, settings, app, work)
        if ids:
            sent[work.task] = ids
    if sent:
        logger.warning("re-sent waiting work: %s", sent)
    return {**reaped, "sent": sent}


def send_due(
    factory: sessionmaker[Session], settings: Settings, app: Celery, work: WaitingWork
) -> list[int]:
    now = utcnow()
    table = work.table
    never_sent = table.dispatched_at.is_(None)
    due = never_sent
    if queue_is_empty(app, work.queue):
        due = or_(
            never_sent, table.dispatched_at < now - timedelta(seconds=settings.dispatch_grace_s)
        )
    with session_scope(factory) as session:
        candidates = session.scalars(select(table.id).where(work.waiting, due)).all()
    sent: list[int] = []
    for row_id in candidates:
        with session_scope(factory) as session:
            taken = session.execute(
                update(table)
                .where(table.id == row_id, work.waiting, due)
                .values(dispatched_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
        if not taken:
            continue  # another worker sent it, or a worker took it meanwhile
        try:
            app.send_task(work.task, args=[row_id])
        except Exception as exc:  # the broker is down: try again on the next sweep
            logger.warning("cannot send %s %s yet: %s", work.task, row_id, exc)
            with session_scope(factory) as session:
                session.execute(update(table).where(table.id == row_id).values(dispatched_at=None))
            break
        sent.append(row_id)
    return sent


def queue_is_empty(app: Celery, queue: str) -> bool:
    """Whether no message waits in the queue (an unknown answer counts as empty: a duplicate is
    harmless, a lost job is not)."""
    try:
        with app.connection_for_write() as connection:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return not declared.message_count
    except ChannelError:  # Redis: an empty queue's key does not exist
        return True
    except Exception as exc:
        logger.warning("cannot count the messages in %s: %s", queue, exc)
        return True


def start_sweeping(
    factory: sessionmaker[Session], settings: Settings, app: Celery
) -> threading.Thread:
    """Reconcile now and then every half grace or stale period, whichever is shorter, in a
    daemon thread of the worker's main process; a failed sweep (database down) is logged in one
    line and tried again."""
    interval = max(1.0, min(settings.dispatch_grace_s, settings.job_stale_after_s) / 2)

    def sweep_forever() -> None:
        while True:
            try:
                reconcile(factory, settings, app)
            except Exception as exc:
                logger.warning("reconciling waiting work failed (%s); retrying", exc)
            time.sleep(interval)

    thread = threading.Thread(target=sweep_forever, name="pairscope-reconciler", daemon=True)
    thread.start()
    return thread
