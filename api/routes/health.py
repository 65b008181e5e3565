"""Liveness and readiness: is the process up, and can it reach database, objects and broker?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pairscope import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


def _probe(check) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    try:
        return {"ok": True, "detail": check()}
    except Exception as exc:  # readiness reports every failure instead of raising
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:500]}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    state = request.app.state

    def database() -> str:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return state.engine.url.render_as_string(hide_password=True)

    checks = {
        "database": _probe(database),
        "object_store": _probe(state.store.check),
        "broker": _probe(state.dispatcher.check),
    }
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
