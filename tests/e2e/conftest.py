"""The web app's end-to-end tests run against the same embedded `pairscope serve` as the
worker tests, driven by the system's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.conftest import EmbeddedService, embedded_service  # noqa: F401 (fixture)

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots go: $PAIRSCOPE_TEST_OUTPUT/webapp if set, else a temp folder."""
    root = os.environ.get("PAIRSCOPE_TEST_OUTPUT")
    folder = Path(root) / "webapp" if root else tmp_path_factory.mktemp("webapp-screens")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


__all__ = ["EmbeddedService", "browser", "embedded_service", "screenshots"]
