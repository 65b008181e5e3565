"""A background heartbeat for a job whose steps may each take longer than the stale limit (one
large image): a thread writes `heartbeat_at` every interval until the job's work ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from api.tables import utcnow


@contextmanager
def heartbeat(
    factory: sessionmaker[Session], table: Any, row_id: int, interval_s: float
) -> Iterator[None]:
    stopped = threading.Event()

    def beat() -> None:
        while not stopped.wait(interval_s):
            try:
                with factory() as session:
                    session.execute(
                        update(table).where(table.id == row_id).values(heartbeat_at=utcnow())
                    )
                    session.commit()
            except Exception:  # a missed beat is harmless; the next one tries again
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat-{row_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join(timeout=5)
