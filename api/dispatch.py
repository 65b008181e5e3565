"""Sends tasks to the workers by name. The API never imports worker code."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from api.celery_config import celery_config
from api.settings import Settings

logger = logging.getLogger(__name__)


class Dispatcher:
    """A send-only Celery client configured from the same settings as the worker."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def app(self) -> Celery:
        app = Celery("pairscope-api")
        app.conf.update(celery_config(self._settings))
        return app

    def send(self, name: str, *args: Any) -> str:
        """Send a task; a broker failure is logged here with its text (callers answer in words
        that do not reveal the broker's address) and raised."""
        try:
            return self.app.send_task(name, args=list(args)).id
        except Exception:
            logger.warning("could not send %s%r to the broker", name, args, exc_info=True)
            raise

    def send_recorded(self, session: Session, name: str, row: Any) -> bool:
        """Send the task for a row just committed with `dispatched_at` set. If the broker cannot
        be reached the row stays queued with `dispatched_at` cleared, and the reconciler in every
        worker sends it once the broker is back: accepted work is never dropped for a broker
        outage. Returns whether it was sent now."""
        try:
            self.send(name, row.id)
        except Exception as exc:
            logger.warning("%s %s waits for the task queue: %s", name, row.id, exc)
            row.dispatched_at = None
            session.commit()
            return False
        return True

    def check(self) -> str:
        """Raise if the broker cannot be reached; describe it otherwise."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
            transport = connection.transport_cls
        url = self._settings.resolved_broker_url
        safe = url.split("@")[-1] if "@" in url else url
        return f"{transport}:{safe}" if "://" not in safe else safe
