"""The Celery application, configured from the same settings as the API."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from api.celery_config import REAP_STALE_JOBS, celery_config
from api.db import make_engine, make_session_factory
from api.settings import get_settings
from api.storage import ObjectStore, make_store


def create_celery() -> Celery:
    settings = get_settings()
    app = Celery("pairscope", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    # Look for stale jobs twice per stale period, so a dead worker's job waits at most 1.5×.
    app.conf.beat_schedule = {
        "reap-stale-jobs": {
            "task": REAP_STALE_JOBS,
            "schedule": max(1.0, settings.job_stale_after_s / 2),
        },
    }
    return app


app = create_celery()


@lru_cache
def session_factory() -> sessionmaker[Session]:
    """One engine per worker process, made on first use (after the pool forks)."""
    return make_session_factory(make_engine(get_settings()))


@lru_cache
def reconciler_session_factory() -> sessionmaker[Session]:
    """The worker main process's own engine for the reconciler thread; pool processes never use
    it (they make theirs with `session_factory` after they fork)."""
    return make_session_factory(make_engine(get_settings()))


@lru_cache
def object_store() -> ObjectStore:
    return make_store(get_settings())
