"""API keys: random, shown once, kept only as a SHA-256 hash, revocable, with last-used time.

A key carries 32 random bytes, so a plain SHA-256 is a sufficient one-way hash (no password
stretching needed): nobody can guess a key from its hash or by trying.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.tables import Institution, Principal, Role, utcnow

KEY_PREFIX = "psk_"
KEY_BYTES = 32
LAST_USED_RESOLUTION = timedelta(seconds=30)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(
    session: Session, institution: Institution, role: Role, label: str = ""
) -> tuple[Principal, str]:
    """Create a principal and return it with the plaintext key, which is never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    principal = Principal(
        institution=institution,
        role=role,
        label=label,
        key_prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(key),
    )
    session.add(principal)
    session.flush()
    return principal, key


def authenticate(session: Session, key: str) -> Principal | None:
    """The live principal holding this key, or None. Records when it was last used."""
    principal = session.scalar(select(Principal).where(Principal.key_hash == hash_key(key)))
    if principal is None or principal.revoked_at is not None:
        return None
    now = utcnow()
    last = principal.last_used_at
    if last is None or now - last > LAST_USED_RESOLUTION:
        principal.last_used_at = now
        session.commit()
    return principal


def revoke(session: Session, principal: Principal) -> None:
    if principal.revoked_at is None:
        principal.revoked_at = utcnow()
