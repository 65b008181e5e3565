"""Training, version and enhancement endpoints without a worker: who may call them, and bad
input refused with the field named and nothing stored."""

from __future__ import annotations

import numpy as np
import pytest

from api.db import make_engine, make_session_factory, session_scope
from api.tables import Dataset, JobState, ModelVersion, TrainingJob
from tests.api.conftest import Network
from tests.api.test_ingest import real, stored_files, tiff_bytes, w2s_pairing
from tests.api.test_registry import row_counts


def seed_version(settings, pairing: int) -> None:  # type: ignore[no-untyped-def]
    """A dataset, a finished job and version 1, as a worker would have recorded them."""
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        dataset = Dataset(
            pairing_id=pairing,
            digest="d" * 64,
            seed=0,
            fractions={"train": 1.0, "validation": 0.0, "test": 0.0},
        )
        session.add(dataset)
        session.flush()
        job = TrainingJob(
            pairing_id=pairing,
            dataset_id=dataset.id,
            preset="tiny",
            overrides={},
            config={},
            seed=0,
            state=JobState.succeeded,
        )
        session.add(job)
        session.flush()
        session.add(
            ModelVersion(
                pairing_id=pairing,
                number=1,
                job_id=job.id,
                dataset_id=dataset.id,
                dataset_digest=dataset.digest,
                config={},
                seed=0,
                software={},
                training={},
                weights_sha256="w" * 64,
                model_key="m",
                model_sha256="m" * 64,
                report_key="r",
                report_sha256="r" * 64,
                report_png_key="p",
                report_png_sha256="p" * 64,
                metrics={
                    "medians": {
                        "generated": {"psnr": 30, "ssim": 0.8},
                        "richardson_lucy": {"psnr": 20, "ssim": 0.5},
                    },
                    "self_method": "generated",
                },
            )
        )
    engine.dispose()


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


def test_production_gate_passes_a_good_version(network: Network, pairing: int) -> None:
    url = f"/api/v1/pairings/{pairing}/aliases/production"
    response = network.call("PUT", url, who="lab", json={"version": 1})
    assert response.status_code == 200 and response.json()["version"] == 1
    unknown = network.call("PUT", f"/api/v1/pairings/{pairing}/aliases/canary", json={"version": 1})
    assert (
        unknown.status_code == 404 and "production or staging" in unknown.json()["error"]["message"]
    )


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
    ]
    for data, upload, status, message in cases:
        response = network.call("POST", url, who="lab", data=data, files=upload)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"], response.text
    assert row_counts(settings) == before and stored_files(settings) == files
    assert list((settings.data_dir / "tmp").glob("*")) == []
