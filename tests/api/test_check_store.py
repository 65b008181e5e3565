"""`pairscope admin check-store` finds rows whose objects are gone from the store."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.settings import Settings
from api.tables import Role
from pairscope.cli import main
from pairscope.testing.flow import build_network, make_key, upload_synthetic
from pairscope.testing.processes import settings_env


def test_check_store_lists_rows_whose_objects_are_missing(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("pairscope.cli._settings", lambda: Settings())  # not the cached ones
    _, admin_key = make_key(settings, "Operators", Role.admin)
    upload_synthetic(build_network(client, admin_key), fields=1)

    assert main(["admin", "check-store"]) == 0
    assert capsys.readouterr().out.strip() == "all 2 objects present"

    lost = sorted(p for p in settings.resolved_objects_dir.rglob("*.tif"))[0]
    lost.unlink()
    assert main(["admin", "check-store"]) == 1
    table = capsys.readouterr().out
    key = lost.relative_to(settings.resolved_objects_dir).as_posix()
    assert "images" in table and "object_key" in table and key in table
    assert "1 of 2 objects missing" in table

    assert main(["admin", "check-store", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 2
    assert [(m["table"], m["column"], m["key"]) for m in report["missing"]] == [
        ("images", "object_key", key)
    ]
