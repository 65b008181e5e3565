"""Engine and session factory: SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings


def make_engine(settings: Settings, statement_timeout: bool = True) -> Engine:
    """Create the engine; SQLite gets WAL and a busy timeout so API and worker can share it.
    PostgreSQL gets a connect timeout and (unless `statement_timeout` is off, as for
    migrations) a statement timeout, so an unreachable or stuck server is an error, not a hang."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    connect_args: dict[str, object] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = settings.database_connect_timeout_s
        milliseconds = int(settings.database_statement_timeout_s * 1000)
        if statement_timeout and milliseconds:
            # merged with any `options` the URL carries (a search_path, say), not replacing them
            given = url.query.get("options", "")
            given = given if isinstance(given, str) else " ".join(given)
            connect_args["options"] = f"{given} -c statement_timeout={milliseconds}".strip()
    # As many connections as the API's thread pool runs requests (anyio's 40), so a burst of
    # requests waits for a thread, not for a connection; a wait past pool_timeout is a 503.
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args=connect_args,
        pool_size=10,
        max_overflow=30,
        pool_timeout=10,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
