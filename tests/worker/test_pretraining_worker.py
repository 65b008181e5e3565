"""Consent, withdrawal and lineage with the real thing: PostgreSQL, Redis and a `pairscope worker`
process on the train and default queues. Base 1 records the one pairing both sides shared; a
withdrawal taints it; a pretraining job accepted while that pairing still consented, but run
after the withdrawal, makes a base that never read it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.tables import Role
from pairscope.testing import flow
from pairscope.testing.flow import make_key
from pairscope.testing.processes import running_worker

FIELDS = 4
CONSENT = "/share-for-pretraining"


def test_a_withdrawn_pairing_taints_its_base_and_never_reaches_the_next(
    tmp_path: Path, postgres_schema_url, redis_db_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=postgres_schema_url(),
        broker_url=redis_db_url,
        result_backend=redis_db_url,
    )
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    admin = {"Authorization": f"Bearer {admin_key}"}
    with TestClient(create_app(settings)) as client:
        shares = flow.build_network(client, admin_key, "shares")
        keeps = flow.build_network(client, admin_key, "keeps")
        datasets: dict[int, dict] = {}
        with running_worker(settings, "train,default", tmp_path / "first.log", "first"):
            for net in (shares, keeps):
                flow.upload_synthetic(net, FIELDS, shape=(96, 96))
            for net in (shares, keeps):
                datasets[net.pairing] = flow.accepted_snapshot(net, FIELDS)
            # both sides of `shares` consent; only the lab side of `keeps` does
            for net, side in ((shares, shares.lab), (shares, shares.partner), (keeps, keeps.lab)):
                assert client.put(net.url(CONSENT), headers=side).status_code == 200
            first_id = flow.start_pretraining(client, admin, seed=5)
            first = flow.wait_pretraining(client, admin, first_id)
        assert first["state"] == "succeeded", first
        base_1 = client.get(f"/api/v1/base-models/{first['base']}", headers=admin).json()
        assert [s["pairing_id"] for s in base_1["sources"]] == [shares.pairing]
        assert base_1["sources"][0]["digest"] == datasets[shares.pairing]["digest"]
        assert base_1["recipe"]["fields"] == 2 and not base_1["tainted_by_withdrawal"]

        # accepted while the pairing still consents, run only after its partner withdrew
        second_id = flow.start_pretraining(client, admin, seed=5)
        withdrawn = client.delete(shares.url(CONSENT), headers=shares.partner)
        assert withdrawn.status_code == 200 and not withdrawn.json()["share_for_pretraining"]
        tainted = client.get(f"/api/v1/base-models/{first['base']}", headers=admin).json()
        assert tainted["tainted_by_withdrawal"] is True
        assert f"pairing {shares.pairing}" in tainted["taint_reason"]
        refused = client.post(
            keeps.url("/training-jobs"),
            headers=keeps.lab,
            json={
                "dataset_id": datasets[keeps.pairing]["id"],
                "preset": "tiny",
                "init": str(first["base"]),
            },
        )
        assert refused.status_code == 422 and "withdrawn" in refused.text, refused.text

        with running_worker(settings, "train", tmp_path / "second.log", "second"):
            second = flow.wait_pretraining(client, admin, second_id)
        assert second["state"] == "succeeded", second
        base_2 = client.get(f"/api/v1/base-models/{second['base']}", headers=admin).json()
        listed = client.get("/api/v1/base-models", headers=admin).json()
    assert base_2["number"] == base_1["number"] + 1
    assert base_2["sources"] == [] and not base_2["tainted_by_withdrawal"]
    assert base_2["recipe"] == base_1["recipe"]
    assert [(b["number"], b["tainted_by_withdrawal"]) for b in listed["items"]] == [
        (base_2["number"], False),
        (base_1["number"], True),
    ]
