"""What `pairscope serve` and `pairscope worker` check and do around their processes: refuse to
start against a database they cannot reach (one line, password masked), stop a child's whole
process tree, and stop a served worker whose `serve` is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings

#: How long a worker has to finish a cold shutdown before its group is killed.
STOP_GRACE_S = 20.0


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
    """Ask the child to stop (SIGQUIT: a Celery worker's cold shutdown, which stops its pool and
    embedded beat, hands a running task's message back and exits), then SIGKILL whatever is
    left of its group after `grace_s`, so nothing is orphaned. The child must lead its own group
    (start_new_session). SIGTERM to the whole group was slower and could hang: it killed the pool
    under a worker in warm shutdown, which then waited for a message it had just received, until
    the SIGKILL lost that message. A job interrupted either way resumes from its stale heartbeat."""
    if process.poll() is not None:
        _signal_group(process.pid, signal.SIGKILL)  # its children may outlive it
        return
    try:
        process.send_signal(signal.SIGQUIT)
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


def stop_when_parent_ends(
    parent_pid: int, ready: threading.Event, interval_s: float = 1.0, grace_s: float = STOP_GRACE_S
) -> None:
    """Stop this process as `stop_process_group` would (SIGQUIT, then SIGKILL to its group after
    `grace_s`) once its parent is no longer `parent_pid`. `serve` starts its worker in a session
    of its own, out of reach of a terminal's hang-up or a group kill; a `serve` killed with
    SIGKILL or SIGHUP cannot stop it, so the worker watches for that itself. The SIGQUIT waits
    for `ready` (Celery loses one that comes while it is still starting)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        ready.wait(grace_s)
        os.kill(os.getpid(), signal.SIGQUIT)
        time.sleep(grace_s)
        if os.getpgrp() == os.getpid():  # its own group: its pool and embedded beat
            _signal_group(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="stop-when-parent-ends", daemon=True).start()
