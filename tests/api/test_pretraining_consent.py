"""Consent to pretraining: each side's own flag, both needed, either may withdraw; a
withdrawal taints every base that read the pairing; pretraining is admins' and needs
something to learn from. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.db import make_engine, make_session_factory, session_scope
from api.services.base_versions import consenting_sources
from api.settings import Settings
from api.tables import BaseVersion, JobState, PretrainingJob
from tests.api.conftest import Network

CONSENT = "/api/v1/pairings/{}/share-for-pretraining"


def _consent(network: Network, who: str, pairing: int, **body: str) -> dict:
    response = network.call("PUT", CONSENT.format(pairing), who, json=body or None)
    assert response.status_code == 200, response.text
    return response.json()


def test_both_sides_must_consent_and_either_may_withdraw(network: Network) -> None:
    pairing = network.ids["pairing"]
    shown = network.call("GET", f"/api/v1/pairings/{pairing}", "lab").json()
    assert shown["share_for_pretraining"] is False
    assert shown["lq_share_for_pretraining"] is shown["hq_share_for_pretraining"] is False

    after_lab = _consent(network, "lab", pairing)
    assert after_lab["lq_share_for_pretraining"] is True
    assert after_lab["share_for_pretraining"] is False  # the HQ side has not consented
    after_partner = _consent(network, "partner", pairing)
    assert after_partner["hq_share_for_pretraining"] is True
    assert after_partner["share_for_pretraining"] is True

    withdrawn = network.call("DELETE", CONSENT.format(pairing), "partner")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["share_for_pretraining"] is False
    assert withdrawn.json()["lq_share_for_pretraining"] is True  # the lab's own stays its own


def test_who_may_speak_for_a_side(network: Network) -> None:
    pairing = network.ids["pairing"]
    # the lab cannot consent for its partner
    refused = network.call("PUT", CONSENT.format(pairing), "lab", json={"side": "hq"})
    assert refused.status_code == 403, refused.text
    # an outsider does not see the pairing at all
    assert network.call("PUT", CONSENT.format(pairing), "outsider").status_code == 404
    # an admin names the side it records
    unnamed = network.call("PUT", CONSENT.format(pairing), "admin")
    assert unnamed.status_code == 422, unnamed.text
    assert _consent(network, "admin", pairing, side="hq")["hq_share_for_pretraining"] is True
    removed = network.call("DELETE", CONSENT.format(pairing) + "?side=hq", "admin")
    assert removed.json()["hq_share_for_pretraining"] is False


def _record_base(session: Session, number: int, pairing_ids: list[int]) -> None:
    job = PretrainingJob(
        preset="tiny", config={}, recipe={}, seed=0, state=JobState.succeeded, progress={}
    )
    session.add(job)
    session.flush()
    session.add(
        BaseVersion(
            number=number,
            job_id=job.id,
            recipe={"fields": 0},
            sources=[
                {"pairing_id": p, "dataset_id": 1, "digest": "d", "fields": 2} for p in pairing_ids
            ],
            config={},
            seed=0,
            n_channels=1,
            pixel_size_min_um=0.1,
            pixel_size_max_um=0.1,
            software={},
            training={},
            weights_sha256="0" * 64,
            model_key=f"base-models/{number}/model.zip",
            model_sha256="0" * 64,
        )
    )


def test_withdrawing_taints_the_bases_that_read_the_pairing(
    network: Network, settings: Settings
) -> None:
    pairing, other = network.ids["pairing"], network.ids["outsider_pairing"]
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        _record_base(session, 1, [pairing, other])
        _record_base(session, 2, [other])
    _consent(network, "lab", pairing)
    _consent(network, "partner", pairing)
    network.call("DELETE", CONSENT.format(pairing), "lab")

    first = network.call("GET", "/api/v1/base-models/1", "admin").json()
    assert first["tainted_by_withdrawal"] is True
    assert f"pairing {pairing}" in first["taint_reason"] and "LQ side" in first["taint_reason"]
    assert (
        network.call("GET", "/api/v1/base-models/2", "admin").json()["tainted_by_withdrawal"]
        is False
    )
    # who lent the pairs is shown to admins only
    assert network.call("GET", "/api/v1/base-models/1", "lab").json()["sources"] is None
    listed = network.call("GET", "/api/v1/base-models", "lab").json()
    assert [b["number"] for b in listed["items"]] == [2, 1]
    engine.dispose()


def test_pretraining_is_for_admins_and_needs_something_to_learn_from(
    network: Network, settings: Settings
) -> None:
    body = {"preset": "tiny", "synthetic": {"fields": 0}}
    assert network.call("POST", "/api/v1/base-models/jobs", "lab", json=body).status_code == 403
    nothing = network.call("POST", "/api/v1/base-models/jobs", "admin", json=body)
    assert nothing.status_code == 422, nothing.text
    assert "nothing to pretrain on" in nothing.json()["error"]["message"]
    bad = {"preset": "tiny", "synthetic": {"fields": 2, "pixel_size_um": [0.3, 0.1]}}
    assert network.call("POST", "/api/v1/base-models/jobs", "admin", json=bad).status_code == 422

    started = network.call(
        "POST", "/api/v1/base-models/jobs", "admin", json={**body, "synthetic": {"fields": 2}}
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] == "queued" and job["config"]["n_channels"] == 1
    assert job["recipe"]["fields"] == 2
    got = network.call("GET", f"/api/v1/base-models/jobs/{job['id']}", "admin")
    assert got.status_code == 200 and got.json()["base"] is None
    assert network.call("GET", f"/api/v1/base-models/jobs/{job['id']}", "lab").status_code == 403

    # a pairing consenting on one side only is still not a source
    _consent(network, "lab", network.ids["pairing"])
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        assert consenting_sources(session) == []
    engine.dispose()
