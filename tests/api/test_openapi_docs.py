"""The API reference works on a network without internet, and the OpenAPI document says what
the service really does: every operation and field explained, every error in the real shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.deps import get_admin
from api.main import create_app
from api.openapi_responses import ErrorResponse
from api.routes import (
    datasets,
    enhancements,
    images,
    institutions,
    keys,
    microscopes,
    pairings,
    pairs,
    training_jobs,
    versions,
)
from api.settings import Settings
from tests.api.conftest import Network

V1_MODULES = (
    datasets,
    enhancements,
    images,
    institutions,
    keys,
    microscopes,
    pairings,
    pairs,
    training_jobs,
    versions,
)
PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect", "/")

# Where a bundle's own code would fetch something by itself: an element's src, a CSS url() or
# @import, fetch / importScripts / Worker on a literal, web fonts, Swagger UI's validator badge.
# (Plain links a person may click, JSON-Schema ids and licence notes are not requests.)
LOADING = [
    re.compile(r"""\bsrc(?:set)?\s*[:=]\s*["'`]((?:https?:)?//[^"'`\s]+)"""),
    re.compile(r"""url\(\s*["']?((?:https?:)?//[^"')\s]+)"""),
    re.compile(r"""@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"')\s;]+)"""),
    re.compile(r"""\b(?:fetch|importScripts|Worker)\(\s*["'`]((?:https?:)?//[^"'`\s]+)"""),
    re.compile(r"""((?:https?:)?//fonts\.(?:googleapis|gstatic)\.com[^"'`)\s]*)"""),
    re.compile(r"""validatorUrl\s*:\s*["'`]((?:https?:)?//[^"'`\s]+)"""),
]
# What the packaged bundles would load from elsewhere, and why it never happens here: the
# pages' Content-Security-Policy allows this origin only, and /docs turns the validator off.
KNOWN_REMOTE = {
    ("redoc.standalone.js", "https://cdn.redoc.ly/redoc/logo-mini.svg"),  # sidebar logo
    ("swagger-ui-bundle.js", "https://validator.swagger.io/validator"),  # badge default
}
SAME_ORIGIN_SOURCES = {"'self'", "'unsafe-inline'", "'unsafe-eval'", "data:", "blob:", "'none'"}


class _References(HTMLParser):
    """Every URL an HTML page makes the browser load, and every absolute URL it mentions."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self._script = False
        self.inline = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for attr in ("src", "srcset", "spec-url", "data", "poster"):
            if values.get(attr):
                self.loaded.append(values[attr])
        if tag == "link" and values.get("href"):
            self.loaded.append(values["href"])
        if tag in ("script", "style"):
            self._script = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script:
            self.inline += data


def _is_remote(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme in ("http", "https") or parts.netloc)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app alone: the docs and the document need no database rows."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("docs"))
    with TestClient(create_app(settings)) as client:
        yield client


def _page_references(client: TestClient, path: str) -> tuple[list[str], list[str], str]:
    """What the page loads, the URL prefixes its scripts fetch from, and its HTML."""
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["content-type"].startswith("text/html")
    parser = _References()
    parser.feed(response.text)
    # Swagger UI is told its document in the inline script: `url: '/openapi.json'`.
    parser.loaded += re.findall(r"""\burl:\s*['"]([^'"]+)""", parser.inline)
    fetched = re.findall(r"""fetch\(\s*["'`]([^"'`$]+)""", parser.inline)
    return parser.loaded, fetched, response.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_and_everything_they_load_come_from_the_service(
    app_client: TestClient, path: str
) -> None:
    loaded, fetched, html = _page_references(app_client, path)
    assert not re.findall(r"(?:https?:)?//[\w.-]+\.\w+", html), "a page names another host"
    for url in fetched:
        assert not _is_remote(url), f"{path} fetches from {url}"
    for url in loaded:
        assert not _is_remote(url), f"{path} loads {url}"
        if url.startswith("/"):
            assert app_client.get(url).status_code == 200, url
    if path in ("/docs", "/redoc"):
        assert len(loaded) >= 2, loaded  # the document and the bundle, at least


def _assets(client: TestClient) -> dict[str, str]:
    loaded = [*_page_references(client, "/docs")[0], *_page_references(client, "/redoc")[0]]
    assets = {}
    for url in loaded:
        if url.endswith((".js", ".css")):
            response = client.get(url)
            assert response.status_code == 200, url
            assets[Path(url).name] = response.text
    return assets


def test_the_bundles_reach_no_other_host_that_the_pages_let_through(
    app_client: TestClient,
) -> None:
    assets = _assets(app_client)
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"} <= set(assets)
    found = {
        (name, match.group(1))
        for name, text in assets.items()
        for pattern in LOADING
        for match in pattern.finditer(text)
    }
    # A new remote load in an updated bundle shows up here, to be looked at.
    assert found == KNOWN_REMOTE
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        policy = app_client.get(path).headers["content-security-policy"]
        directives = [d.split() for d in policy.split(";") if d.strip()]
        assert any(d[0] == "default-src" for d in directives), policy
        for _, *sources in directives:
            assert set(sources) <= SAME_ORIGIN_SOURCES, policy
    assert '"validatorUrl": null' in app_client.get("/docs").text


# --- the OpenAPI document ------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(app_client: TestClient) -> dict:
    response = app_client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _needs_admin(dependant: Dependant) -> bool:
    return any(d.call is get_admin or _needs_admin(d) for d in dependant.dependencies)


def test_every_operation_has_a_summary_and_a_description(document: dict) -> None:
    operations = list(_operations(document))
    assert len(operations) >= 50
    for method, path, operation in operations:
        assert operation.get("summary", "").strip(), (method, path)
        assert len(operation.get("description", "").strip()) >= 10, (method, path)


def test_every_schema_field_has_a_description_and_an_example(document: dict) -> None:
    schemas = document["components"]["schemas"]
    fields = 0
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            assert prop.get("description", "").strip(), f"{name}.{field} has no description"
            assert prop.get("examples") or "example" in prop, f"{name}.{field} has no example"
            fields += 1
    assert fields > 200


def test_error_responses_use_the_real_error_shape(document: dict) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    admin_routes = {
        (method, f"/api/v1{route.path}")
        for module in V1_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute) and _needs_admin(route.dependant)
        for method in route.methods
    }
    assert len(admin_routes) >= 11  # registry writes and keys
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) >= 400 and path != "/readyz":  # its 503 is the readiness report
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)
        has_inputs = bool(operation.get("parameters") or operation.get("requestBody"))
        assert ("422" in responses) == has_inputs, (method, path)
        if path.startswith("/api/v1/"):
            assert "401" in responses, (method, path)
        if re.search(r"\{\w+\}", path):
            assert "404" in responses, (method, path)
        if (method, path) in admin_routes:
            assert "403" in responses, (method, path)
        if operation.get("requestBody"):  # a body that does not parse
            assert "400" in responses, (method, path)
        if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
            assert {"400", "413", "415"} <= set(responses), (method, path)


def test_the_documented_shape_is_what_the_service_sends(network: Network) -> None:
    answers = {
        401: network.call("GET", "/api/v1/pairings", who=None),
        403: network.call("POST", "/api/v1/keys", who="lab", json={}),
        404: network.call("GET", "/api/v1/pairings/999999"),
        409: network.call(
            "POST",
            "/api/v1/institutions",
            json={"name": "Lab Institute", "country": "PL", "contact_email": "a@b.org"},
        ),
        422: network.call("GET", "/api/v1/pairings", params={"limit": 0}),
    }
    for status, response in answers.items():
        assert response.status_code == status, response.text
        body = ErrorResponse.model_validate(response.json())
        assert body.error.status == status and body.error.message
    assert ErrorResponse.model_validate(answers[422].json()).error.fields
