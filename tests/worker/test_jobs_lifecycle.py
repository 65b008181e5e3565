"""Training jobs' life: cancel, time budget, quality gate with admin override and rollback,
reproducible weights, and a worker killed with SIGKILL mid-training whose job another worker
resumes from the checkpoint, ending with exactly one version."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.tables import Role
from pairscope.testing import flow
from pairscope.testing.flow import make_key
from pairscope.testing.processes import running_worker
from tests.worker.conftest import a_job_whose_worker_was_killed

FIELDS = 6


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An embedded service with one worker, a pairing with a snapshot, and version 1."""
    home = tmp_path_factory.mktemp("lifecycle")
    settings = Settings(data_dir=home / "var", job_progress_interval_s=0.3)
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    with (
        running_worker(settings, "train,infer,default", home / "worker.log"),
        TestClient(create_app(settings)) as client,
    ):
        net = flow.build_network(client, admin_key)
        flow.upload_synthetic(net, FIELDS)
        dataset = flow.accepted_snapshot(net, FIELDS)
        job = flow.wait_job(net, flow.train(net, dataset["id"])["id"])
        assert job["state"] == "succeeded", job["reason"]
        yield net, dataset


def versions(net: flow.Network) -> list[dict]:
    return net.client.get(net.url("/versions"), headers=net.lab).json()["items"]


def test_cancel_keeps_the_checkpoint_and_makes_no_version(trained) -> None:  # type: ignore[no-untyped-def]
    net, dataset = trained
    before = len(versions(net))
    job = flow.train(net, dataset["id"], {"steps": 100_000, "checkpoint_every": 20})
    flow.wait(net, f"/training-jobs/{job['id']}", lambda j: (j["checkpoint_step"] or 0) >= 20)
    # The lab started it: the reference side may not cancel it, the lab may.
    refused = net.client.post(net.url(f"/training-jobs/{job['id']}/cancel"), headers=net.partner)
    assert refused.status_code == 403
    cancel = net.client.post(net.url(f"/training-jobs/{job['id']}/cancel"), headers=net.lab)
    assert cancel.status_code == 200 and cancel.json()["cancel_requested"]
    job = flow.wait_job(net, job["id"])
    assert job["state"] == "cancelled" and "checkpoint is kept" in job["reason"]
    assert job["checkpoint_step"] >= 20 and len(versions(net)) == before
    again = net.client.post(net.url(f"/training-jobs/{job['id']}/cancel"), headers=net.lab)
    assert again.status_code == 409


def test_time_budget_ends_training_normally(trained) -> None:  # type: ignore[no-untyped-def]
    net, dataset = trained
    job = flow.train(net, dataset["id"], {"steps": 100_000}, minutes=0.1)
    job = flow.wait_job(net, job["id"])
    assert job["state"] == "succeeded" and job["reason"] == "the time budget ended training"
    assert 0 < job["progress"]["step"] < 100_000 and job["version"] is not None
    assert len(job["history"]) >= 2 and job["history"][-1]["step"] > job["history"][0]["step"]
    curves = net.client.get(net.url(f"/training-jobs/{job['id']}/curves.png"), headers=net.lab)
    assert curves.status_code == 200 and curves.content[:4] == b"\x89PNG"


def test_quality_gate_override_and_rollback(trained) -> None:  # type: ignore[no-untyped-def]
    net, dataset = trained
    first = versions(net)[0]["number"]
    put = net.client.put(
        net.url("/aliases/production"),
        headers=net.admin,
        json={"version": first, "override_reason": "baseline for the test"},
    )
    assert put.status_code == 200
    weak = flow.wait_job(net, flow.train(net, dataset["id"], {"steps": 1})["id"])
    assert weak["state"] == "succeeded"
    refused = net.client.put(
        net.url("/aliases/production"), headers=net.lab, json={"version": weak["version"]}
    )
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "quality_gate" and error["figures"]["failures"]
    assert error["figures"]["production"]["version"] == first
    not_admin = net.client.put(
        net.url("/aliases/production"),
        headers=net.lab,
        json={"version": weak["version"], "override_reason": "trust me"},
    )
    assert not_admin.status_code == 409
    forced = net.client.put(
        net.url("/aliases/production"),
        headers=net.admin,
        json={"version": weak["version"], "override_reason": "field test"},
    )
    assert forced.status_code == 200 and forced.json()["version"] == weak["version"]
    events = net.client.get(net.url("/alias-events"), headers=net.lab).json()["items"]
    assert (events[-1]["from_version"], events[-1]["to_version"]) == (first, weak["version"])
    assert events[-1]["override_reason"] == "field test" and events[-1]["principal_id"]
    back = net.client.post(net.url("/aliases/production/rollback"), headers=net.lab)
    assert back.status_code == 200 and back.json()["version"] == first
    further = net.client.post(net.url("/aliases/production/rollback"), headers=net.lab)
    assert further.status_code == 409, "a second rollback must not toggle forward again"
    partner = net.client.post(net.url("/aliases/production/rollback"), headers=net.partner)
    assert partner.status_code == 403
    deleting = net.client.delete(net.url(f"/versions/{first}"), headers=net.lab)
    assert deleting.status_code == 409 and "production" in deleting.json()["error"]["message"]
    assert (
        net.client.delete(net.url(f"/versions/{weak['version']}"), headers=net.lab).status_code
        == 204
    )


def test_same_snapshot_config_and_seed_give_identical_weights(trained) -> None:  # type: ignore[no-untyped-def]
    net, dataset = trained
    jobs = [flow.train(net, dataset["id"], {"steps": 40})["id"] for _ in range(2)]
    numbers = [flow.wait_job(net, job)["version"] for job in jobs]
    found = {v["number"]: v for v in versions(net)}
    assert found[numbers[0]]["weights_sha256"] == found[numbers[1]]["weights_sha256"]
    assert found[numbers[0]]["model_sha256"] != "" and numbers[0] != numbers[1]


def test_bad_training_requests(trained) -> None:  # type: ignore[no-untyped-def]
    net, dataset = trained
    url = net.url("/training-jobs")
    cases = [
        ({"dataset_id": dataset["id"], "preset": "huge"}, "preset"),
        ({"dataset_id": dataset["id"], "overrides": {"no_such_key": 1}}, "no_such_key"),
        ({"dataset_id": dataset["id"], "overrides": {"learning_rate": -1}}, "learning_rate"),
        ({"dataset_id": 99999}, "dataset_id"),
        ({"dataset_id": dataset["id"], "minutes": 0}, "minutes"),
    ]
    before = net.client.get(url, headers=net.lab).json()["total"]
    for body, field in cases:
        response = net.client.post(url, headers=net.lab, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["error"]["message"], response.text
    assert net.client.get(url, headers=net.lab).json()["total"] == before


def test_a_killed_worker_is_replaced_and_the_job_resumes(tmp_path: Path, redis_db_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "var",
        broker_url=redis_db_url,
        result_backend=redis_db_url,
        broker_visibility_timeout_s=10,
        job_stale_after_s=4,
        job_progress_interval_s=0.3,
    )
    with a_job_whose_worker_was_killed(
        settings, tmp_path, "sigkill", steps=1200, checkpointed_step=80
    ) as (net, job):
        killed_at = net.client.get(net.url(f"/training-jobs/{job['id']}"), headers=net.lab).json()
        assert killed_at["state"] == "running" and killed_at["progress"]["step"] < 1200
        time.sleep(1)
        with running_worker(settings, "train", tmp_path / "rescue.log", "rescue", beat=True):
            done = flow.wait_job(net, job["id"], timeout=300)
    assert done["state"] == "succeeded", done["reason"]
    assert done["resumed_from_step"] is not None and done["resumed_from_step"] >= 80
    assert done["attempts"] >= 2 and done["version"] == 1
    with TestClient(create_app(settings)) as fresh:
        found = fresh.get(net.url("/versions"), headers=net.lab).json()
    assert found["total"] == 1
