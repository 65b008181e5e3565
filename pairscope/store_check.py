"""`pairscope admin check-store`: every object the database points at, asked of the object store,
so a lost image, aligned pair, version artifact, enhancement output or checkpoint is found before
a user meets it. Any column named `*_key` that holds an object key is checked (new ones too)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from sqlalchemy import Column, Table, select

from api.settings import Settings

# Columns named like object keys that are not: a content hash used to find reusable results.
NOT_OBJECT_KEYS = {("enhancement_items", "cache_key")}


@dataclass(frozen=True)
class MissingObject:
    table: str
    row_id: int
    column: str
    key: str


@dataclass
class StoreReport:
    checked: int
    missing: list[MissingObject]

    def as_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "missing": [asdict(m) for m in self.missing]}


def key_columns() -> Iterator[tuple[Table, Column]]:
    from api.tables import Base

    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.name.endswith("_key") and (table.name, column.name) not in NOT_OBJECT_KEYS:
                yield table, column


def check_store(settings: Settings) -> StoreReport:
    """Ask the store for every referenced object (each distinct key once)."""
    from api.db import make_engine
    from api.storage import make_store

    store = make_store(settings)
    engine = make_engine(settings)
    references: list[tuple[str, int, str, str]] = []
    try:
        with engine.connect() as connection:
            for table, column in key_columns():
                query = select(table.c.id, column).where(column.is_not(None)).order_by(table.c.id)
                for row_id, key in connection.execute(query):
                    references.append((table.name, row_id, column.name, key))
    finally:
        engine.dispose()
    present = {key: store.exists(key) for key in {ref[3] for ref in references}}
    missing = [MissingObject(*ref) for ref in references if not present[ref[3]]]
    return StoreReport(len(present), missing)


def render(report: StoreReport) -> str:
    if not report.missing:
        return f"all {report.checked} objects present"
    rows = [("TABLE", "ID", "COLUMN", "KEY")] + [
        (m.table, str(m.row_id), m.column, m.key) for m in report.missing
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    distinct = len({m.key for m in report.missing})
    lines.append(f"{distinct} of {report.checked} objects missing")
    return "\n".join(lines)
