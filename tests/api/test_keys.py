"""API keys: shown once, stored hashed, revocable, with last-used time."""

from __future__ import annotations

from sqlalchemy import select

from api.auth import hash_key
from api.db import make_engine, make_session_factory
from api.tables import Principal
from tests.api.conftest import Network


def test_key_is_shown_once_and_stored_only_as_hash(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    created = network.call(
        "POST",
        "/api/v1/keys",
        json={"institution_id": network.ids["lab"], "role": "lab", "label": "scope PC"},
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("psk_") and len(key) >= 4 + 43  # 32 random bytes, base64url
    listed = network.call(
        "GET", "/api/v1/keys", params={"institution_id": network.ids["lab"]}
    ).json()
    assert all("key" not in item for item in listed["items"])
    engine = make_engine(settings)
    with make_session_factory(engine)() as session:
        stored = session.scalar(select(Principal).where(Principal.id == created.json()["id"]))
        assert stored.key_hash == hash_key(key) and key not in stored.key_hash
    engine.dispose()


def test_me_records_last_use_and_revocation_locks_out(network: Network) -> None:
    me = network.call("GET", "/api/v1/me", who="lab").json()
    assert me["role"] == "lab" and me["institution_id"] == network.ids["lab"]
    assert me["last_used_at"] is not None
    assert network.call("DELETE", f"/api/v1/keys/{me['id']}").status_code == 204
    response = network.call("GET", "/api/v1/me", who="lab")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_missing_or_unknown_key_is_401(network: Network) -> None:
    assert network.call("GET", "/api/v1/pairings", who=None).status_code == 401
    response = network.client.get("/api/v1/pairings", headers={"Authorization": "Bearer psk_nope"})
    assert response.status_code == 401


def test_only_admins_manage_keys(network: Network) -> None:
    body = {"institution_id": network.ids["lab"], "role": "admin"}
    assert network.call("POST", "/api/v1/keys", who="lab", json=body).status_code == 403
    assert network.call("GET", "/api/v1/keys", who="partner").status_code == 403
