"""Sends tasks to the workers by name. The API never imports worker code."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from api.celery_config import celery_config
from api.errors import ApiError
from api.settings import Settings


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
        return self.app.send_task(name, args=list(args)).id

    def send_or_undo(self, session: Session, name: str, row: Any) -> None:
        """Send the task for a row just committed; if the broker cannot be reached, delete the
        row again and answer 503, so a failed request leaves nothing behind."""
        try:
            self.send(name, row.id)
        except Exception as exc:
            session.delete(row)
            session.commit()
            raise ApiError(
                503,
                "broker_unavailable",
                f"the task queue cannot be reached; nothing was queued ({exc})",
            ) from exc

    def check(self) -> str:
        """Raise if the broker cannot be reached; describe it otherwise."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
            transport = connection.transport_cls
        url = self._settings.resolved_broker_url
        safe = url.split("@")[-1] if "@" in url else url
        return f"{transport}:{safe}" if "://" not in safe else safe
