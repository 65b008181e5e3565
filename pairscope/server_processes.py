"""What `pairscope serve` and `pairscope worker` check and do around their processes: refuse to
start against a database they cannot reach (one line, password masked), and stop a child's
whole process tree."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings


def database_problem(settings: Settings) -> str | None:
    """None if the database answers; otherwise one line naming it (password masked) and why."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from api.db import make_engine

    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        url = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        lines = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        return f"cannot reach the database {url}: {lines[0].strip()}"
    finally:
        engine.dispose()
    return None


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the child's process group (a Celery worker finishes or requeues its tasks), then
    SIGKILL whatever is left of it after `grace_s`: pool processes and an embedded beat
    included, so nothing is orphaned. The child must lead its own group (start_new_session)."""
    if process.poll() is not None:
        _signal_group(process.pid, signal.SIGKILL)  # its children may outlive it
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
