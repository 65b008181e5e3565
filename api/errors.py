"""One error shape for every failure, with a message a person can act on.

{"error": {"status": 422, "code": "validation_error", "message": "...",
           "fields": [{"field": "numerical_aperture", "message": "..."}]}}
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from botocore.exceptions import ConnectionError as StoreConnectionError
from botocore.exceptions import HTTPClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.security_headers import SECURITY_HEADERS

log = logging.getLogger("pairscope.api")


class ApiError(Exception):
    """Raised by domain code; rendered as the shared error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.extra = extra or {}


def field_error(field: str, message: str, status: int = 422) -> ApiError:
    return ApiError(
        status, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
    )


def _body(status: int, code: str, message: str, fields: list[dict[str, str]], **extra: Any):  # type: ignore[no-untyped-def]
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "request"


# Seconds a client is told to wait before trying again when a dependency is unreachable.
RETRY_AFTER_S = 5


def _reason(exc: BaseException) -> str:
    """Why a dependency did not answer, in words that name no host, port or credential."""
    text = str(exc).lower()
    if "timeout" in text or "timed out" in text or "canceling statement" in text:
        return "it did not answer in time"
    if "refused" in text or "connect" in text:
        return "it refused the connection or could not be reached"
    return "the connection failed"


def unavailable(request: Request, exc: BaseException, code: str, what: str) -> JSONResponse:
    """A dependency is down: 503 in the error shape with a reason, logged in full once."""
    log.warning(
        "%s: %s %s: %s: %s", code, request.method, request.url.path, type(exc).__name__, exc
    )
    message = f"{what} cannot be reached ({_reason(exc)}); try again shortly"
    return JSONResponse(
        _body(503, code, message, [], reason=_reason(exc)),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = _body(exc.status, exc.code, exc.message, exc.fields, **exc.extra)
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            fields.append({"field": _location(tuple(err.get("loc", ()))), "message": message})
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(_body(422, "validation_error", summary, fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        body = _body(exc.status_code, code.get(exc.status_code, "error"), str(exc.detail), [])
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        message = "this conflicts with an existing record (a duplicate or a record still in use)"
        return JSONResponse(_body(409, "conflict", message, []), status_code=409)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        return unavailable(request, exc, "database_unavailable", "the database")

    @app.exception_handler(PoolTimeout)
    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        """Every pooled connection stayed busy for the pool timeout: load, not a fault."""
        return unavailable(request, exc, "database_busy", "the database")

    @app.exception_handler(StoreConnectionError)
    @app.exception_handler(HTTPClientError)
    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        return unavailable(request, exc, "object_store_unavailable", "the object store")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything no other handler answers: logged in full with a request id, answered in the
        error shape with that id and no exception text (it may name internals)."""
        request_id = uuid.uuid4().hex
        log.error(
            "unexpected error, request %s: %s %s",
            request_id,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        message = f"an unexpected error occurred; quote request id {request_id} when reporting it"
        return JSONResponse(
            _body(500, "internal_error", message, [], request_id=request_id),
            status_code=500,
            headers={"X-Request-ID": request_id, **SECURITY_HEADERS},
        )
