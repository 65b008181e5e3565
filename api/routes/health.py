"""Liveness and readiness: is the process up, and can it reach database, objects and broker?

Anyone may ask; only an admin key is told what each component is (URLs with passwords masked,
paths) and why a check failed. Failures are logged with their text either way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ProbeTimeout
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.auth import authenticate
from api.deps import CredentialsDep
from api.tables import Role
from pairscope import __version__

router = APIRouter(tags=["health"])
log = logging.getLogger("pairscope.api")


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """Answers while the process is up, with its version. No key needed."""
    return {"status": "ok", "version": __version__}


# Readiness answers within this many seconds, whatever a dependency does (a frozen endpoint
# accepts connections and never answers).
PROBE_DEADLINE_S = 3.0


def _probe_all(checks: dict[str, Callable[[], str]]) -> dict[str, dict[str, Any]]:
    """Run every check at once, each in its own thread; one not done by the deadline is
    reported as not ready (its thread is left to finish on its own timeouts)."""
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    futures = {name: pool.submit(check) for name, check in checks.items()}
    pool.shutdown(wait=False)
    deadline = time.monotonic() + PROBE_DEADLINE_S
    results = {}
    for name, future in futures.items():
        remaining = max(0.0, deadline - time.monotonic())
        try:
            results[name] = {"ok": True, "detail": future.result(timeout=remaining)}
        except ProbeTimeout:
            log.warning("readiness: %s did not answer within %s s", name, PROBE_DEADLINE_S)
            results[name] = {"ok": False, "detail": f"no answer within {PROBE_DEADLINE_S} s"}
        except Exception as exc:  # readiness reports every failure instead of raising
            log.warning("readiness: %s is not ready: %s: %s", name, type(exc).__name__, exc)
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:500]}
    return results


def _is_admin(request: Request, credentials: CredentialsDep) -> bool:
    """Whether the caller sent an admin key; False when it cannot be told (database down)."""
    if credentials is None:
        return False
    try:
        with request.app.state.session_factory() as session:
            principal = authenticate(session, credentials.credentials)
            return principal is not None and principal.role == Role.admin
    except Exception:  # an unreachable database must not turn readiness into a 500
        return False


@router.get(
    "/readyz",
    summary="Readiness",
    responses={
        200: {"description": "Database, object store and broker all answer."},
        503: {"description": "At least one dependency does not answer; `checks` says which."},
    },
)
def readyz(request: Request, credentials: CredentialsDep) -> JSONResponse:
    """Whether the database, the object store and the task queue can be reached: each ok or
    not (503 unless all are). No key needed (a load balancer's readiness probe); an admin key
    also gets each one's detail or error."""
    state = request.app.state

    def database() -> str:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return state.engine.url.render_as_string(hide_password=True)

    checks = _probe_all(
        {"database": database, "object_store": state.store.check, "broker": state.dispatcher.check}
    )
    ready = all(c["ok"] for c in checks.values())
    if not _is_admin(request, credentials):
        checks = {name: {"ok": check["ok"]} for name, check in checks.items()}
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
