"""Rejecting a pair by hand and accepting it again, without a worker: the pairs are uploaded
through the API and their alignment verdict is recorded as a worker records it. Any key that
sees the pairing may reject, as for accepting; a refusal changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from api.db import make_engine, make_session_factory, session_scope
from api.tables import Pair, PairStatus, Principal
from tests.api.conftest import Network
from tests.api.test_ingest import tiff_bytes, upload
from tests.api.test_registry import row_counts

FIELDS = ("cell-00", "cell-01")


def _record_verdict(settings, pair_id: int, status: PairStatus) -> None:  # type: ignore[no-untyped-def]
    """What worker/alignment.py writes when it has aligned a pair."""
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        pair = session.get(Pair, pair_id)
        pair.status, pair.score, pair.attempts = status, 0.93, 1
        pair.reason = None if status == PairStatus.accepted else "alignment score too low"
        for side in ("lq", "hq"):
            setattr(pair, f"{side}_aligned_key", f"aligned/{pair.field_id}/{side}.tif")
            setattr(pair, f"{side}_aligned_sha256", (side[0] * 64))
    engine.dispose()


def _principal_id(settings, institution: int) -> int:  # type: ignore[no-untyped-def]
    engine = make_engine(settings)
    with engine.connect() as connection:
        found = connection.scalar(
            select(Principal.id).where(Principal.institution_id == institution)
        )
    engine.dispose()
    return found


def _image() -> bytes:
    """A three-channel field, as the network's microscopes have three channels."""
    return tiff_bytes(
        np.zeros((3, 32, 32), np.uint16), photometric="minisblack", metadata={"axes": "CYX"}
    )


@pytest.fixture
def pairs(network: Network, settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Two fields of the lab's pairing, both halves uploaded and accepted by the aligner."""
    pairing = network.ids["pairing"]
    for field in FIELDS:
        for side in ("lq", "hq"):
            sent = upload(network, pairing, side, _image(), filename=f"{field}.tif")
            assert sent.status_code == 201, sent.text
    listed = network.call("GET", f"/api/v1/pairings/{pairing}/pairs").json()["items"]
    ids = {p["field_id"]: p["id"] for p in listed}
    assert set(ids) == set(FIELDS)
    for pair_id in ids.values():
        _record_verdict(settings, pair_id, PairStatus.accepted)
    return ids


def _url(network: Network, pair_id: int | str, action: str = "") -> str:
    return f"/api/v1/pairings/{network.ids['pairing']}/pairs/{pair_id}{action}"


def _snapshot(network: Network) -> dict:
    response = network.call(
        "POST", f"/api/v1/pairings/{network.ids['pairing']}/datasets", who="lab", json={}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_a_lab_rejects_an_accepted_pair_and_accepts_it_again(
    network: Network,
    pairs: dict[str, int],
    settings,  # type: ignore[no-untyped-def]
) -> None:
    before = _snapshot(network)
    assert [m["field_id"] for m in before["members"]] == list(FIELDS)
    cell = pairs["cell-00"]

    rejected = network.call(
        "POST", _url(network, cell, "/reject"), who="lab", json={"reason": "  out of focus  "}
    )
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert body["status"] == "rejected" and body["reason"] == "out of focus"
    assert body["rejected_by_id"] == _principal_id(settings, network.ids["lab"])
    assert body["rejected_manually_at"] and body["accepted_by_id"] is None
    assert network.call("GET", _url(network, cell)).json() == body
    listed = network.call(
        "GET", f"/api/v1/pairings/{network.ids['pairing']}/pairs", params={"status": "rejected"}
    ).json()["items"]
    assert [p["id"] for p in listed] == [cell]

    again = network.call("POST", _url(network, cell, "/reject"), who="lab", json={"reason": "x"})
    assert again.status_code == 409 and "only an accepted pair" in again.text

    # The snapshot taken before keeps the pair (snapshots are immutable); a new one leaves it out.
    kept = network.call(
        "GET", f"/api/v1/pairings/{network.ids['pairing']}/datasets/{before['id']}"
    ).json()
    assert kept["digest"] == before["digest"] and kept["members"] == before["members"]
    after = _snapshot(network)
    assert [m["field_id"] for m in after["members"]] == ["cell-01"]

    accepted = network.call("POST", _url(network, cell, "/accept"), who="lab")
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted"
    assert body["accepted_by_id"] == _principal_id(settings, network.ids["lab"])
    assert body["accepted_manually_at"] and body["rejected_by_id"] is None
    assert body["rejected_manually_at"] is None
    assert _snapshot(network)["id"] == before["id"]  # the same pairs again: the same snapshot


@pytest.mark.parametrize("who", ["partner", "admin"])
def test_any_key_that_may_accept_may_reject(
    network: Network, pairs: dict[str, int], who: str
) -> None:
    """The same rule as accepting: seeing the pairing is the grant, either side and admins."""
    cell = pairs["cell-01"]
    response = network.call("POST", _url(network, cell, "/reject"), who=who, json={"reason": "r"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    accepted = network.call("POST", _url(network, cell, "/accept"), who=who)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"


def _late_pair(network: Network) -> int:
    """A third field, both halves uploaded, whose alignment has not run: still pending."""
    pairing = network.ids["pairing"]
    for side in ("lq", "hq"):
        sent = upload(network, pairing, side, _image(), filename="late.tif")
        assert sent.status_code == 201, sent.text
    items = network.call("GET", f"/api/v1/pairings/{pairing}/pairs").json()["items"]
    return next(p["id"] for p in items if p["field_id"] == "late")


REFUSALS = [
    ("outsider", "outsider", "cell-00", {"reason": "mine now"}, 404),
    ("no key", None, "cell-00", {"reason": "anonymous"}, 401),
    ("unknown pair", "lab", 424242, {"reason": "gone"}, 404),
    ("no body", "lab", "cell-00", None, 422),
    ("no reason", "lab", "cell-00", {}, 422),
    ("empty reason", "lab", "cell-00", {"reason": ""}, 422),
    ("blank reason", "lab", "cell-00", {"reason": "   "}, 422),
    ("reason too long", "lab", "cell-00", {"reason": "x" * 501}, 422),
    ("unknown field", "lab", "cell-00", {"reason": "r", "by": "me"}, 422),
    ("pending pair", "lab", "pending", {"reason": "too early"}, 409),
]


@pytest.mark.parametrize(
    ("case", "who", "field", "body", "status"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_a_refused_rejection_changes_nothing(
    network: Network,
    pairs: dict[str, int],
    settings,  # type: ignore[no-untyped-def]
    case: str,
    who: str | None,
    field: str | int,
    body: dict | None,
    status: int,
) -> None:
    pair_id = _late_pair(network) if field == "pending" else pairs.get(str(field), field)
    everything = network.call("GET", f"/api/v1/pairings/{network.ids['pairing']}/pairs").json()
    counts = row_counts(settings)

    response = network.call("POST", _url(network, pair_id, "/reject"), who=who, json=body)
    assert response.status_code == status, (case, response.text)
    assert response.json()["error"]["status"] == status
    assert network.call("GET", f"/api/v1/pairings/{network.ids['pairing']}/pairs").json() == (
        everything
    )
    assert row_counts(settings) == counts


def test_a_pair_of_another_pairing_is_not_found(network: Network, pairs: dict[str, int]) -> None:
    """The outsider names the lab's pair under its own pairing: not there, nothing changes."""
    path = f"/api/v1/pairings/{network.ids['outsider_pairing']}/pairs/{pairs['cell-00']}/reject"
    response = network.call("POST", path, who="outsider", json={"reason": "not yours"})
    assert response.status_code == 404, response.text
    pair = network.call("GET", _url(network, pairs["cell-00"])).json()
    assert pair["status"] == "accepted" and pair["rejected_by_id"] is None
