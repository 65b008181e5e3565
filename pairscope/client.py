"""A small REST client for the command line: base URL and API key from flags or environment
(`PAIRSCOPE_URL`, `PAIRSCOPE_API_KEY`), errors turned into one readable line."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientError(Exception):
    """The service answered with an error; the message is the service's own."""


class Client:
    def __init__(
        self, url: str | None = None, key: str | None = None, timeout: float = 300
    ) -> None:
        key = key or os.environ.get("PAIRSCOPE_API_KEY")
        if not key:
            raise ClientError("no API key: pass --key or set PAIRSCOPE_API_KEY")
        self.url = (url or os.environ.get("PAIRSCOPE_URL") or DEFAULT_URL).rstrip("/")
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            timeout=timeout,
            headers={"Authorization": f"Bearer {key}"},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise ClientError(f"{method} {path}: {response.status_code} {message}")
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs).json()

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, params={**params, "limit": 500, "offset": len(items)})
            items += page["items"]
            if len(items) >= page["total"] or not page["items"]:
                return items
