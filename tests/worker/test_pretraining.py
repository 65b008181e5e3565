"""Pretraining and fine-tuning, their stages called one by one on SQLite and a LocalStore with
no Celery worker: only consenting pairings' pairs are read, pretraining makes base 1 with its
lineage, a new pairing's training job starts from it (reproducibly), an incompatible or
tainted base is a 422, and a withdrawal taints the base and leaves the pairing out of the next."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.services.base_versions import consenting_sources
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import BaseVersion, Dataset, JobState, Pairing, PretrainingJob
from pairscope.testing import flow
from tests.worker.conftest import align_every_pair, in_process_service
from worker import pretraining, training_pipeline
from worker.claims import Claim
from worker.progress import JobReporter
from worker.training_stages import load_job, train

FIELDS = 4
CONSENT = "/share-for-pretraining"


@dataclass
class Setup:
    settings: Settings
    factory: sessionmaker[Session]
    store: ObjectStore
    shares: flow.Network  # both sides consent
    keeps: flow.Network  # never consents; the new pairing that fine-tunes
    datasets: dict[int, int] = field(default_factory=dict)  # pairing id → its snapshot


class RecordingStore:
    """The real store, noting every key read: what the data loader was given to read."""

    def __init__(self, store: ObjectStore) -> None:
        self.store, self.read = store, []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        self.read.append(key)
        return self.store.iter_bytes(key)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with in_process_service(tmp_path_factory.mktemp("pretraining")) as service:
        shares = flow.build_network(service.client, service.admin_key, "shares")
        keeps = flow.build_network(service.client, service.admin_key, "keeps")
        result = Setup(service.settings, service.factory, service.store, shares, keeps)
        for net in (shares, keeps):
            flow.upload_synthetic(net, FIELDS, shape=(96, 96))
        align_every_pair(service)
        for net in (shares, keeps):
            result.datasets[net.pairing] = flow.accepted_snapshot(net, FIELDS)["id"]
        yield result


def _pretraining_job(setup: Setup, fields: int) -> int:
    response = setup.shares.client.post(
        "/api/v1/base-models/jobs",
        headers=setup.shares.admin,
        json={
            "preset": "tiny",
            "overrides": {"steps": 6, "val_every": 3, "patch_size": 32},
            "seed": 5,
            "synthetic": {"fields": fields, "shape": [64, 64], "seed": 2},
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert pretraining.claim(setup.factory, job_id, setup.settings) == Claim.run
    return job_id


def _training_job(setup: Setup, **extra: object) -> dict:
    net = setup.keeps
    response = net.client.post(
        net.url("/training-jobs"),
        headers=net.lab,
        json={
            "dataset_id": setup.datasets[net.pairing],
            "preset": "tiny",
            "overrides": {"steps": 8, "val_every": 4, "checkpoint_every": 4},
            "seed": 3,
            **extra,
        },
    )
    assert response.status_code == 202, response.text
    return response.json()


def _train(setup: Setup, job_id: int, scratch: Path) -> str:
    assert training_pipeline.claim(setup.factory, job_id, setup.settings).value == "run"
    scratch.mkdir()
    job = load_job(setup.factory, setup.store, setup.settings, job_id, "CPU (test)", scratch)
    reporter = JobReporter(setup.factory, setup.store, job_id, 0.01, scratch, job.object_prefix)
    return train(job, reporter).model.weights_digest()


def test_consent_of_one_side_is_not_enough(setup: Setup) -> None:
    net = setup.shares
    assert net.client.put(net.url(CONSENT), headers=net.lab).status_code == 200
    with session_scope(setup.factory) as session:
        assert consenting_sources(session) == []
    assert net.client.put(net.url(CONSENT), headers=net.partner).status_code == 200
    with session_scope(setup.factory) as session:
        assert [s.pairing_id for s in consenting_sources(session)] == [net.pairing]


def test_pretraining_reads_only_consenting_pairs_and_makes_base_1(
    setup: Setup, tmp_path: Path
) -> None:
    job_id = _pretraining_job(setup, fields=2)
    loaded = pretraining.load_pretraining(setup.factory, job_id, "CPU (test)", tmp_path)
    assert [s.pairing_id for s in loaded.sources] == [setup.shares.pairing]
    # the data loader reads the consenting pairing's training and validation pairs, and no
    # object of the pairing that did not opt in
    recording = RecordingStore(setup.store)
    pairs = pretraining.read_sources(recording, loaded.sources, tmp_path)
    with session_scope(setup.factory) as session:
        members = {p: session.get_one(Dataset, d).members for p, d in setup.datasets.items()}
        allowed = {
            key
            for m in members[setup.shares.pairing]
            if m.split.value != "test"
            for key in (m.lq_aligned_key, m.hq_aligned_key)
        }
        kept = {
            key
            for m in members[setup.keeps.pairing]
            for key in (m.lq_aligned_key, m.hq_aligned_key)
        }
    assert set(recording.read) == allowed and len(recording.read) == len(allowed)
    assert not set(recording.read) & kept
    assert all(f.startswith(f"pairing:{setup.shares.pairing}:") for (f, _, _), _ in pairs)

    base = pretraining.train_base(loaded, pairs)
    assert base.n_channels == 1
    assert pretraining.publish_base(setup.factory, setup.store, loaded, base) == 1
    with session_scope(setup.factory) as session:
        row = session.scalar(select(BaseVersion).where(BaseVersion.number == 1))
        assert row is not None and not row.tainted_by_withdrawal
        digest = session.get_one(Dataset, setup.datasets[setup.shares.pairing]).digest
        assert row.sources == [
            {
                "pairing_id": setup.shares.pairing,
                "dataset_id": setup.datasets[setup.shares.pairing],
                "digest": digest,
                "fields": len(allowed) // 2,
            }
        ]
        assert row.recipe["fields"] == 2 and row.n_channels == 1
        assert row.pixel_size_min_um <= 0.1 <= row.pixel_size_max_um
        assert row.weights_sha256 == base.weights_digest()
        assert setup.store.exists(row.model_key)
        assert session.get_one(PretrainingJob, job_id).state == JobState.succeeded


def test_a_new_pairing_fine_tunes_from_the_base_reproducibly(setup: Setup, tmp_path: Path) -> None:
    with session_scope(setup.factory) as session:
        base = session.scalar(select(BaseVersion).where(BaseVersion.number == 1))
        assert base is not None
        base_sha = base.weights_sha256
    first = _training_job(setup)  # no init: a pairing with no versions starts from the base
    assert first["config"]["init"] == "base:1"
    assert first["config"]["init_sha256"] == base_sha
    second = _training_job(setup, init="1")
    assert second["config"] == first["config"]
    scratch = _training_job(setup, init="scratch")
    assert scratch["config"]["init"] == "scratch"

    a = _train(setup, first["id"], tmp_path / "a")
    b = _train(setup, second["id"], tmp_path / "b")
    c = _train(setup, scratch["id"], tmp_path / "c")
    assert a == b  # same base, snapshot, config and seed: the same weights
    assert a != c


def test_an_incompatible_or_missing_starting_point_is_422(setup: Setup) -> None:
    net = setup.keeps
    body = {"dataset_id": setup.datasets[net.pairing], "preset": "tiny"}

    def refused(**extra: object) -> str:
        response = net.client.post(
            net.url("/training-jobs"), headers=net.lab, json={**body, **extra}
        )
        assert response.status_code == 422, response.text
        return response.json()["error"]["message"]

    assert "base 7 does not exist" in refused(init="base:7")
    assert "no version 2" in refused(init="version:2")
    assert "depth" in refused(init="base", overrides={"depth": 3})
    assert "init" in refused(init="somewhere")
    assert "starting weights" in refused(overrides={"init": "scratch"})
    # a reference grid far outside the pixel sizes the base learned on
    with session_scope(setup.factory) as session:
        pairing_scope = session.get_one(Pairing, net.pairing).hq_microscope
        pairing_scope.pixel_size_um, original = 2.5, pairing_scope.pixel_size_um
    try:
        assert "pixels" in refused(init="base")
        # by default a pairing the base does not fit trains from scratch instead
        fallback = net.client.post(net.url("/training-jobs"), headers=net.lab, json=body)
        assert fallback.json()["config"]["init"] == "scratch"
    finally:
        with session_scope(setup.factory) as session:
            scope = session.get_one(Pairing, net.pairing).hq_microscope
            scope.pixel_size_um = original


def test_withdrawal_taints_the_base_and_the_next_leaves_the_pairing_out(
    setup: Setup, tmp_path: Path
) -> None:
    net = setup.shares
    assert net.client.delete(net.url(CONSENT), headers=net.partner).status_code == 200
    with session_scope(setup.factory) as session:
        base = session.scalar(select(BaseVersion).where(BaseVersion.number == 1))
        assert base is not None and base.tainted_by_withdrawal
        assert "HQ side withdrew" in (base.taint_reason or "")
    keeps = setup.keeps
    body = {"dataset_id": setup.datasets[keeps.pairing], "preset": "tiny"}
    tainted = keeps.client.post(
        keeps.url("/training-jobs"), headers=keeps.lab, json={**body, "init": "base:1"}
    )
    assert tainted.status_code == 422 and "withdrawn" in tainted.text
    default = keeps.client.post(keeps.url("/training-jobs"), headers=keeps.lab, json=body)
    assert default.json()["config"]["init"] == "scratch"  # no untainted base is left

    nothing = net.client.post(
        "/api/v1/base-models/jobs",
        headers=net.admin,
        json={"preset": "tiny", "synthetic": {"fields": 0}},
    )
    assert nothing.status_code == 422, nothing.text
    job_id = _pretraining_job(setup, fields=1)
    loaded = pretraining.load_pretraining(setup.factory, job_id, "CPU (test)", tmp_path)
    assert loaded.sources == []
