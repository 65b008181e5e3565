"""/metrics: Prometheus series for requests, uploads, queues and jobs, with no names in them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.celery_config import celery_config
from api.settings import Settings
from api.tables import Role
from pairscope.testing.flow import build_network, make_key, upload_synthetic

IMAGES = "/api/v1/pairings/{pairing_id}/images"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")  # no key
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_uploads_queues_and_jobs(
    client: TestClient, settings: Settings
) -> None:
    _, admin_key = make_key(settings, "Operators Secretive", Role.admin)
    net = build_network(client, admin_key, name="Hidden Lab Name")
    before = scrape(client)
    upload_synthetic(net, fields=1)  # an LQ and an HQ image: a pair waits for alignment
    client.get("/api/v1/no/such/route-named-secretly")
    client.get("/api/v1/institutions", headers=net.admin)
    after = scrape(client)

    latency = "pairscope_http_request_duration_seconds_count"
    posts = {"route": IMAGES, "method": "POST", "status": "201"}
    assert value(after, latency, **posts) - value(before, latency, **posts) == 2
    listed = {"route": "/api/v1/institutions", "method": "GET", "status": "200"}
    assert value(after, latency, **listed) > value(before, latency, **listed)
    assert value(after, latency, route="unmatched", method="GET", status="404") >= 1
    uploaded = value(after, "pairscope_upload_bytes_total", route=IMAGES)
    assert uploaded - value(before, "pairscope_upload_bytes_total", route=IMAGES) > 2 * 128 * 128
    assert value(after, "pairscope_queue_depth", queue="default") >= 1
    assert ("pairscope_queue_depth", (("queue", "train"),)) in after
    for kind in ("training", "enhancement"):
        assert ("pairscope_jobs", (("kind", kind), ("state", "queued"))) in after
        count = "pairscope_job_duration_seconds_count"
        assert (count, (("kind", kind), ("state", "succeeded"))) in after
    text = client.get("/metrics").text
    for secret in (admin_key, "Secretive", "Hidden Lab", "route-named-secretly", "cell-00"):
        assert secret not in text
    assert str(settings.data_dir) not in text


def test_task_events_are_sent_where_the_broker_carries_them(settings: Settings) -> None:
    redis = celery_config(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    assert redis["worker_send_task_events"] and redis["task_send_sent_event"]
    assert "worker_send_task_events" not in celery_config(settings)  # the filesystem broker
