"""The schema exists only through Alembic: up to head, down to base, and up again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from api.db import make_engine
from api.migrate import downgrade, upgrade
from api.settings import Settings
from api.tables import Base


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    url = "" if backend == "sqlite" else request.getfixturevalue("postgres_schema_url")()
    settings = Settings(data_dir=tmp_path, database_url=url)
    engine = make_engine(settings)
    expected = set(Base.metadata.tables)

    upgrade(settings)
    assert expected <= set(inspect(engine).get_table_names())
    downgrade(settings, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(settings)
    tables = set(inspect(engine).get_table_names())
    assert expected <= tables
    for name in expected:  # the ORM and the migrated schema agree column by column
        migrated = {c["name"] for c in inspect(engine).get_columns(name)}
        assert migrated == set(Base.metadata.tables[name].columns.keys()), name
    engine.dispose()
