"""Never a 5xx for a bad request, and never internals in an answer: integers beyond what the
database holds are 422s naming the parameter; an unexpected failure is a JSON 500 in the error
shape carrying a request id (logged with the stack trace), no exception text."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.db import make_engine, make_session_factory, session_scope
from api.main import create_app
from api.tables import ModelVersion, TrainingJob
from pairscope.testing.seeding import seed_version
from tests.api.conftest import Network
from tests.api.test_registry import row_counts

HUGE = str(2**64)


def _names_field(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]], error


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/pairings/{huge}", "pairing_id"),
        ("/api/v1/institutions/{huge}", "institution_id"),
        ("/api/v1/microscopes/{huge}", "microscope_id"),
        ("/api/v1/pairings/{pairing}/images/{huge}", "image_id"),
        ("/api/v1/pairings/{pairing}/pairs/{huge}", "pair_id"),
        ("/api/v1/pairings/{pairing}/datasets/{huge}", "dataset_id"),
        ("/api/v1/pairings/{pairing}/training-jobs/{huge}", "job_id"),
        ("/api/v1/pairings/{pairing}/versions/{huge}", "number"),
        ("/api/v1/pairings/{pairing}/enhancements/{huge}", "job_id"),
        ("/api/v1/pairings/{pairing}/versions?offset={huge}", "offset"),
        ("/api/v1/pairings/{pairing}/images?offset={huge}", "offset"),
        ("/api/v1/institutions?offset={huge}", "offset"),
        ("/api/v1/keys?institution_id={huge}", "institution_id"),
        ("/api/v1/microscopes?institution_id={huge}", "institution_id"),
        ("/api/v1/pairings?microscope_id={huge}", "microscope_id"),
        ("/api/v1/pairings/{pairing}/versions?limit={huge}", "limit"),
    ],
)
def test_integers_beyond_64_bits_are_422_naming_the_parameter(
    network: Network, path: str, field: str
) -> None:
    url = path.format(huge=HUGE, pairing=network.ids["pairing"])
    _names_field(network.call("GET", url), field)


def test_integers_beyond_64_bits_in_bodies_and_forms_are_422(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = network.ids["pairing"]
    before = row_counts(settings)
    cases = [
        ("POST", "/api/v1/keys", {"institution_id": 2**64, "role": "lab"}, "institution_id"),
        (
            "POST",
            "/api/v1/pairings",
            {"name": "x", "lq_microscope_id": 2**64, "hq_microscope_id": 1},
            "lq_microscope_id",
        ),
        ("POST", f"/api/v1/pairings/{pairing}/training-jobs", {"dataset_id": 2**64}, "dataset_id"),
        ("PUT", f"/api/v1/pairings/{pairing}/aliases/staging", {"version": 2**64}, "version"),
    ]
    for method, url, body, field in cases:
        _names_field(network.call(method, url, json=body), field)
    enhance = network.call(
        "POST",
        f"/api/v1/pairings/{pairing}/enhancements",
        who="lab",
        json={"image_ids": [2**64]},
    )
    _names_field(enhance, "image_ids.0")
    for version in (HUGE, "²"):  # beyond 64 bits; a digit int() cannot read
        form = network.call(
            "POST",
            f"/api/v1/pairings/{pairing}/enhancements",
            who="lab",
            data={"version": version},
            files={"files": ("a.tif", b"II*\0", "image/tiff")},
        )
        _names_field(form, "version")
    assert row_counts(settings) == before


def test_an_unexpected_failure_is_a_json_500_with_a_request_id(
    network: Network, settings, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """A version whose stored metrics are damaged makes the quality gate fail unexpectedly."""
    from tests.api.test_ingest import w2s_pairing

    pairing = w2s_pairing(network)
    seed_version(settings, pairing)
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        version = session.query(ModelVersion).filter_by(pairing_id=pairing).one()
        version.metrics = {
            "self_method": "generated",
            "medians": {"generated": {"psnr": "damaged", "ssim": "1"}},
        }
    engine.dispose()
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as client,
        caplog.at_level(logging.ERROR, logger="pairscope.api"),
    ):
        response = client.put(
            f"/api/v1/pairings/{pairing}/aliases/production",
            headers=network.headers("lab"),
            json={"version": 1},
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["status"] == 500
    request_id = error["request_id"]
    assert request_id in error["message"] and response.headers["x-request-id"] == request_id
    assert "damaged" not in response.text and "ValueError" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert response.headers["x-content-type-options"] == "nosniff"


def test_expected_failures_are_told_in_words_not_exception_text(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.api.test_ingest import w2s_pairing

    pairing = w2s_pairing(network)
    malformed = network.call(
        "POST",
        f"/api/v1/pairings/{pairing}/images",
        who="lab",
        params={"side": "lq"},
        headers={"content-type": "multipart/form-data; boundary=xyz"},
        content=b"--xyz\r\nbad header\r\n\r\n",  # the parser: "invalid character 32 at 10"
    )
    assert malformed.status_code == 400, malformed.text
    assert malformed.json()["error"]["message"] == (
        "the multipart body is malformed (check its boundary and parts)"
    )
    seed_version(settings, pairing)
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        dataset_id = session.query(ModelVersion).filter_by(pairing_id=pairing).one().dataset_id
    engine.dispose()
    down = settings.model_copy(update={"broker_url": "redis://:hunter2@127.0.0.1:9/0"})
    with TestClient(create_app(down)) as client:
        response = client.post(
            f"/api/v1/pairings/{pairing}/training-jobs",
            headers=network.headers("lab"),
            json={"dataset_id": dataset_id, "preset": "tiny"},
        )
    # accepted work waits in the database for the broker (the workers' reconciler sends it);
    # nothing about the broker reaches the client
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "queued"
    assert "127.0.0.1" not in response.text and "hunter2" not in response.text
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        job = session.get_one(TrainingJob, response.json()["id"])
        assert job.dispatched_at is None  # the reconciler sends it once the broker is back
    engine.dispose()
