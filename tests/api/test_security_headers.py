"""Security headers on every response. The page loads nothing but same-origin files (no inline
script or style, which its self-only CSP would refuse); the docs pages, FastAPI's stock ones,
load Swagger UI / ReDoc from the jsDelivr CDN and get a policy naming exactly that."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.docs_pages import SAME_ORIGIN_ONLY
from api.security_headers import PAGE_POLICY

COMMON = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _assert_headers(response, policy: str) -> None:  # type: ignore[no-untyped-def]
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert response.headers.get("content-security-policy") == policy, response.url
    assert "frame-ancestors 'none'" in policy


def test_every_kind_of_response_carries_the_headers(client: TestClient) -> None:
    for path in (
        "/",
        "/static/app/main.js",
        "/static/app/app.css",
        "/healthz",
        "/openapi.json",
        "/api/v1/pairings",  # 401 in the error shape
        "/api/v1/nowhere",  # 404
    ):
        _assert_headers(client.get(path), PAGE_POLICY)
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        _assert_headers(client.get(path), SAME_ORIGIN_ONLY)


def test_the_page_needs_nothing_its_policy_refuses(client: TestClient) -> None:
    page = client.get("/").text
    assert "default-src 'self'" in PAGE_POLICY and "'unsafe-inline'" not in PAGE_POLICY
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
    assert "<style" not in page and "style=" not in page, "inline style"
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"
    for url in re.findall(r'(?:src|href)="([^"#]+)"', page):
        assert url.startswith("/"), url  # same origin
        assert client.get(url).status_code == 200, url
    for module in ("main.js", "views/viewer.js", "views/training.js", "dom.js"):
        script = client.get(f"/static/app/{module}").text
        assert "eval(" not in script and "new Function" not in script, module


def test_docs_pages_keep_their_own_same_origin_policy(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert policy == SAME_ORIGIN_ONLY and "http" not in policy, path
        assert response.headers["X-Frame-Options"] == "DENY"
