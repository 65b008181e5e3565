"""Administration on the server itself (no REST): issuing an API key straight into the database.
`pairscope admin create-key`, `pairscope serve --demo` and `pairscope demo` share this one path,
so the demo's key is exactly what an operator would issue by hand."""

from __future__ import annotations

from dataclasses import dataclass

from api.settings import Settings


@dataclass
class IssuedKey:
    principal_id: int
    key: str
    created_institution: bool


def create_key(
    settings: Settings,
    institution: str,
    role: str = "admin",
    label: str = "",
    country: str = "unspecified",
    contact_email: str = "",
) -> IssuedKey:
    """Migrate if needed, create the institution when it does not exist, and issue a key."""
    from sqlalchemy import select

    from api.auth import issue_key
    from api.db import make_engine, make_session_factory, session_scope
    from api.migrate import upgrade
    from api.tables import Institution, Role

    upgrade(settings)
    engine = make_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            found = session.scalar(select(Institution).where(Institution.name == institution))
            created = found is None
            if found is None:
                found = Institution(name=institution, country=country, contact_email=contact_email)
                session.add(found)
            principal, key = issue_key(session, found, Role(role), label)
            session.flush()
            return IssuedKey(principal.id, key, created)
    finally:
        engine.dispose()
