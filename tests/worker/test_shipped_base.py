"""The base shipped in the package stands in for the network's own when asked for: with no
base version of the network's own, `init=base` records `base:shipped` with the shipped weights'
digest and architecture (the API judges it without TensorFlow), and the real training pipeline
starts from those weights, checks them and publishes a version that says where it came from.
It is also a new pairing's default for its first job (with few fields it beats scratch:
docs/benchmarks.md, "Transfer"); later jobs train from scratch unless asked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.shipped_base import SHIPPED_INIT, shipped_base
from pairscope.testing import flow
from tests.worker.conftest import InProcessService, align_every_pair, in_process_service
from worker import training_pipeline
from worker.claims import Claim

FIELDS = 4
BODY = {"preset": "tiny", "overrides": {"steps": 4, "val_every": 2, "patch_size": 64}, "seed": 1}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    with in_process_service(tmp_path_factory.mktemp("shipped"), shipped_base=True) as service:
        yield service


def test_a_new_network_fine_tunes_from_the_shipped_base(service: InProcessService) -> None:
    shipped = shipped_base()
    assert shipped is not None, "the package carries models/bases/base.zip"
    net = flow.build_network(service.client, service.admin_key, "first")
    flow.upload_synthetic(net, FIELDS, shape=(96, 96))
    align_every_pair(service)
    dataset = flow.accepted_snapshot(net, FIELDS)["id"]

    def start(**extra: object) -> dict:
        response = net.client.post(
            net.url("/training-jobs"),
            headers=net.lab,
            json={"dataset_id": dataset, **BODY, **extra},
        )
        assert response.status_code == 202, response.text
        return response.json()

    explicit = start(init="base")
    assert explicit["config"]["init"] == SHIPPED_INIT
    assert explicit["config"]["init_sha256"] == shipped.weights_sha256
    for key in ("base_filters", "depth", "convs_per_block"):  # the base's architecture, kept
        assert explicit["config"][key] == shipped.config[key]

    assert start()["config"]["init"] == SHIPPED_INIT  # a new pairing's first job: the base
    job = explicit
    assert training_pipeline.claim(service.factory, job["id"], service.settings) == Claim.run
    result = training_pipeline.run(service.factory, service.store, service.settings, job["id"])
    assert result["state"] == "succeeded", result
    version = net.client.get(net.url(f"/versions/{result['version']}"), headers=net.lab)
    assert version.status_code == 200, version.text
    assert version.json()["config"]["init"] == SHIPPED_INIT

    # once the pairing has a version of its own, its next job trains as asked (scratch default)
    assert start()["config"]["init"] == "scratch"
