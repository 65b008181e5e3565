"""Celery tasks. Each takes an id, is idempotent, and records its outcome in the database."""

from __future__ import annotations

import socket
from typing import Any

from api.celery_config import READINESS_REPORT
from api.db import session_scope
from api.tables import Pairing, ReadinessReport, TaskState, utcnow
from worker.app import app, session_factory
from worker.readiness import pairing_readiness


@app.task(name=READINESS_REPORT, acks_late=True)
def readiness_report(report_id: int) -> dict[str, Any]:
    """Compute a pairing's readiness report; a second delivery returns the stored result."""
    with session_scope(session_factory()) as session:
        report = session.get(ReadinessReport, report_id)
        if report is None:
            return {"report_id": report_id, "skipped": "the report no longer exists"}
        if report.state == TaskState.succeeded and report.report is not None:
            return report.report
        report.state = TaskState.running
        report.worker_host = socket.gethostname()
        session.commit()
        try:
            result = pairing_readiness(session.get_one(Pairing, report.pairing_id))
        except Exception as exc:
            report.state = TaskState.failed
            report.error = f"{type(exc).__name__}: {exc}"[:2000]
            report.finished_at = utcnow()
            return {"report_id": report_id, "error": report.error}
        report.report = result
        report.state = TaskState.succeeded
        report.finished_at = utcnow()
        return result
