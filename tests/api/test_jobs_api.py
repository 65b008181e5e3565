"""Training, version and enhancement endpoints without a worker: who may call them, and bad
input refused with the field named and nothing stored."""

from __future__ import annotations

import numpy as np
import pytest

from api.db import make_engine, make_session_factory, session_scope
from api.tables import Dataset, JobState, ModelVersion, Principal, TrainingJob
from pairscope.testing.seeding import seed_version
from tests.api.conftest import Network
from tests.api.test_ingest import real, stored_files, tiff_bytes, w2s_pairing
from tests.api.test_registry import row_counts


@pytest.fixture
def pairing(network: Network, settings) -> int:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    seed_version(settings, pairing)
    return pairing


ROLES = ("none", "outsider", "partner", "lab", "admin")


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", "/training-jobs", None, {"lab": 200, "partner": 200, "admin": 200}),
        (
            "POST",
            "/training-jobs",
            {"dataset_id": 424242},
            {"lab": 422, "partner": 422, "admin": 422},
        ),
        ("GET", "/training-jobs/424242", None, {"lab": 404, "partner": 404, "admin": 404}),
        ("GET", "/versions", None, {"lab": 200, "partner": 200, "admin": 200}),
        ("GET", "/versions/1", None, {"lab": 200, "partner": 200, "admin": 200}),
        ("GET", "/aliases", None, {"lab": 200, "partner": 200, "admin": 200}),
        ("GET", "/alias-events", None, {"lab": 200, "partner": 200, "admin": 200}),
        ("PUT", "/aliases/staging", {"version": 1}, {"lab": 200, "partner": 403, "admin": 200}),
        # Promoting, rolling back and deleting versions is the wide-field (LQ) side's decision.
        ("PUT", "/aliases/production", {"version": 1}, {"lab": 200, "partner": 403, "admin": 200}),
        ("POST", "/aliases/staging/rollback", None, {"lab": 409, "partner": 403, "admin": 409}),
        ("DELETE", "/versions/1", None, {"lab": 204, "partner": 403, "admin": 404}),
        ("DELETE", "/versions/424242", None, {"lab": 404, "partner": 404, "admin": 404}),
        ("POST", "/training-jobs/424242/cancel", None, {"lab": 404, "partner": 404, "admin": 404}),
        ("GET", "/enhancements", None, {"lab": 200, "partner": 403, "admin": 200}),
        (
            "POST",
            "/enhancements",
            {"image_ids": [424242], "version": 1},
            {"lab": 422, "partner": 403, "admin": 422},
        ),
        ("GET", "/enhancements/424242", None, {"lab": 404, "partner": 403, "admin": 404}),
    ],
)
def test_authorization_matrix(network: Network, pairing: int, method, path, body, expected) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/pairings/{pairing}{path}"
    expected = {"none": 401, "outsider": 404, **expected}
    for role in ROLES:
        response = network.call(method, url, who=None if role == "none" else role, json=body)
        assert response.status_code == expected[role], (role, method, url, response.text)


def _queued_job(settings, pairing: int, started_by: str | None, network: Network) -> int:  # type: ignore[no-untyped-def]
    """A queued training job of the pairing, started by that network member's key."""
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        starter = None
        if started_by is not None:
            institution = network.ids["ops" if started_by == "admin" else started_by]
            starter = session.query(Principal).filter_by(institution_id=institution).first()
        dataset = session.query(Dataset).filter_by(pairing_id=pairing).first()
        job = TrainingJob(
            pairing_id=pairing,
            dataset_id=dataset.id,
            preset="tiny",
            overrides={},
            config={},
            seed=0,
            state=JobState.queued,
            started_by_id=starter.id if starter else None,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    engine.dispose()
    return job_id


@pytest.mark.parametrize(
    ("started_by", "expected"),
    [
        ("lab", {"outsider": 404, "partner": 403, "lab": 200}),
        ("partner", {"outsider": 404, "lab": 403, "partner": 200}),
        ("admin", {"outsider": 404, "lab": 403, "partner": 403, "admin": 200}),
        (None, {"outsider": 404, "lab": 403, "partner": 403, "admin": 200}),
    ],
)
def test_a_training_job_is_cancelled_by_its_starting_institution_or_an_admin(
    network: Network, pairing: int, settings, started_by, expected
) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/pairings/{pairing}/training-jobs/{{}}/cancel"
    job = _queued_job(settings, pairing, started_by, network)
    for who, status in expected.items():  # the allowed caller comes last
        response = network.call("POST", url.format(job), who=who)
        assert response.status_code == status, (who, response.text)
    assert response.json()["state"] == "cancelled"
    another = _queued_job(settings, pairing, started_by, network)
    assert network.call("POST", url.format(another)).json()["state"] == "cancelled"  # admin


def test_production_gate_passes_a_good_version(network: Network, pairing: int) -> None:
    url = f"/api/v1/pairings/{pairing}/aliases/production"
    response = network.call("PUT", url, who="lab", json={"version": 1})
    assert response.status_code == 200 and response.json()["version"] == 1
    unknown = network.call("PUT", f"/api/v1/pairings/{pairing}/aliases/canary", json={"version": 1})
    assert (
        unknown.status_code == 404 and "production or staging" in unknown.json()["error"]["message"]
    )


def _record_coverage(settings, pairing: int, coverage: float) -> None:  # type: ignore[no-untyped-def]
    """Write a measured uncertainty coverage into version 1's metrics, as a publish would."""
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        version = session.query(ModelVersion).filter_by(pairing_id=pairing, number=1).one()
        version.metrics = {**version.metrics, "trust": {"uncertainty_coverage": coverage}}
    engine.dispose()


def test_production_gate_holds_the_uncertainty_coverage_target(
    network: Network, pairing: int, settings
) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/pairings/{pairing}/aliases/production"
    _record_coverage(settings, pairing, 0.5)  # intervals that miss half the truth
    refused = network.call("PUT", url, who="lab", json={"version": 1})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quality_gate"
    assert "uncertainty coverage 0.500" in error["message"] and "[0.85, 0.95]" in error["message"]
    assert error["figures"]["failures"] == [
        "uncertainty coverage 0.500 of the nominal 90 % interval is outside [0.85, 0.95]"
    ]
    _record_coverage(settings, pairing, 0.9)
    accepted = network.call("PUT", url, who="lab", json={"version": 1})
    assert accepted.status_code == 200 and accepted.json()["version"] == 1, accepted.text


def test_enhancement_bad_input_stores_nothing(network: Network, pairing: int, settings) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/pairings/{pairing}/enhancements"
    before, files = row_counts(settings), stored_files(settings)
    no_production = network.call(
        "POST", url, who="lab", files=[("files", ("a.tif", real("lq", 1), "image/tiff"))]
    )
    assert (
        no_production.status_code == 409
        and "production" in no_production.json()["error"]["message"]
    )
    cases = [
        ({"version": "7"}, [("files", ("a.tif", real("lq", 1), "image/tiff"))], 422, "version 7"),
        (
            {"version": "1"},
            [
                (
                    "files",
                    (
                        "two.tif",
                        tiff_bytes(np.zeros((2, 32, 32), np.uint8), metadata={"axes": "CYX"}),
                        "image/tiff",
                    ),
                )
            ],
            422,
            "2 channel(s)",
        ),
        (
            {"version": "1"},
            [
                ("files", ("good.tif", real("lq", 1), "image/tiff")),
                ("files", ("junk.tif", b"not a tiff", "image/tiff")),
            ],
            422,
            "junk.tif",
        ),
        (
            {"version": "1", "out_dtype": "int8"},
            [("files", ("a.tif", real("lq", 1), "image/tiff"))],
            422,
            "out_dtype",
        ),
        ({"version": "x"}, [("files", ("a.tif", real("lq", 1), "image/tiff"))], 422, "version"),
        (
            {"version": "1", "format": "bogus"},
            [("files", ("a.tif", real("lq", 1), "image/tiff"))],
            422,
            "format: 'bogus' is not an output format",
        ),
    ]
    for data, upload, status, message in cases:
        response = network.call("POST", url, who="lab", data=data, files=upload)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"], response.text
    by_ids = network.call("POST", url, who="lab", json={"image_ids": [1], "format": "bogus"})
    assert by_ids.status_code == 422 and "'bogus'" in by_ids.json()["error"]["message"]
    assert by_ids.json()["error"]["fields"][0]["field"] == "format", by_ids.text
    assert row_counts(settings) == before and stored_files(settings) == files
    assert list((settings.data_dir / "tmp").glob("*")) == []
