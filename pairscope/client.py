"""A small REST client for the command line: base URL and API key from flags or environment
(`PAIRSCOPE_URL`, `PAIRSCOPE_API_KEY`), errors turned into one readable line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientError(Exception):
    """A client command cannot go on: the service refused the request (the message is the
    service's own) or what was asked for is wrong before any request (a missing folder, no key).

    `status` and `error` keep the HTTP status and the service's error object (for example the
    quality gate's figures) for callers that explain more than one line."""

    def __init__(
        self, message: str, status: int | None = None, error: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error or {}

    @property
    def exit_code(self) -> int:
        """2 when the request was wrong (a usage error: fix the command and run it again), 1 when
        the service failed it (5xx): the same command may work later."""
        return 1 if self.status is not None and self.status >= 500 else 2


class ServiceUnreachable(ClientError):
    """No answer (or no Pairscope answer) from the service: nothing was wrong with the command,
    so it exits 1, not 2."""

    @property
    def exit_code(self) -> int:
        return 1


def service_url(url: str | None = None) -> str:
    """The service's base URL from the flag, the environment or the default."""
    return (url or os.environ.get("PAIRSCOPE_URL") or DEFAULT_URL).rstrip("/")


class Client:
    def __init__(
        self, url: str | None = None, key: str | None = None, timeout: float = 300
    ) -> None:
        key = key or os.environ.get("PAIRSCOPE_API_KEY")
        if not key:
            raise ClientError("no API key: pass --key or set PAIRSCOPE_API_KEY")
        self.url = service_url(url)
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            timeout=timeout,
            headers={"Authorization": f"Bearer {key}"},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnreachable(f"cannot reach {self.url}: {_reason(exc)}") from exc
        if response.status_code >= 400:
            raise _error(method, path, response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._json(self.request("GET", path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._json(self.request("POST", path, **kwargs))

    def put(self, path: str, **kwargs: Any) -> Any:
        return self._json(self.request("PUT", path, **kwargs))

    def _json(self, response: httpx.Response) -> Any:
        """The answer's JSON; a page that is not JSON means the URL is not a Pairscope API."""
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceUnreachable(
                f"{self.url} answered {response.request.method} {response.request.url.path} "
                "with something that is not JSON: is it a Pairscope service?"
            ) from exc

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, params={**params, "limit": 500, "offset": len(items)})
            items += page["items"]
            if len(items) >= page["total"] or not page["items"]:
                return items

    def download(self, path: str, dest: Path) -> int:
        """Stream a file to `dest` (written beside it, then renamed, so a broken transfer never
        leaves a half file under the final name); returns the number of bytes."""
        partial = dest.with_name(dest.name + ".partial")
        try:
            with self.http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error("GET", path, response)
                size = 0
                with partial.open("wb") as f:
                    for chunk in response.iter_bytes(1 << 20):
                        f.write(chunk)
                        size += len(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise ServiceUnreachable(
                f"cannot download {path} from {self.url}: {_reason(exc)}"
            ) from exc
        partial.replace(dest)
        return size


def _reason(exc: httpx.HTTPError) -> str:
    """httpx's message, or its class name when it has none (a read timeout can be empty)."""
    return str(exc) or type(exc).__name__


def _error(method: str, path: str, response: httpx.Response) -> ClientError:
    error: dict[str, Any] = {}
    try:
        error = response.json()["error"]
        message = error["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:300]
    return ClientError(
        f"{method} {path}: {response.status_code} {message}", response.status_code, error
    )
