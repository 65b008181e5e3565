"""Real pairs through the API and a real worker: uploads from both sides are aligned, gated,
previewed and snapshotted, with the object store on local disk or on S3 over HTTP."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from api.main import create_app
from api.migrate import upgrade
from api.settings import Settings
from api.tables import Role
from pairscope.testing.flow import make_key, microscope_body
from pairscope.testing.processes import W2S, running_worker

FIELDS = range(1, 11)


def wait_for_pairs(
    client: TestClient, headers: dict, pairing: int, count: int, timeout: float = 180
) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pairs = client.get(f"/api/v1/pairings/{pairing}/pairs", headers=headers).json()["items"]
        done = [p for p in pairs if p["status"] in ("accepted", "rejected")]
        if len(done) >= count:
            return pairs
        time.sleep(0.5)
    raise TimeoutError(f"only {len(done)} of {count} pairs decided: {pairs}")


@pytest.fixture(params=["local", "s3"])
def flow(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """API (in process) + one worker process on queue `default`, on Redis, with the chosen store.
    PostgreSQL holds the registry when the store is S3 (the distributed deployment)."""
    redis_url = request.getfixturevalue("redis_db_url")
    extra: dict = {"broker_url": redis_url, "result_backend": redis_url}
    if request.param == "s3":
        extra |= {
            "storage_backend": "s3",
            "s3_bucket": request.getfixturevalue("s3_bucket"),
            "s3_endpoint_url": request.getfixturevalue("s3_endpoint"),
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "database_url": request.getfixturevalue("postgres_schema_url")(),
        }
    settings = Settings(data_dir=tmp_path / "var", **extra)
    upgrade(settings)
    _, admin = make_key(settings, "Operations", Role.admin)
    with (
        running_worker(settings, "default", tmp_path / "worker.log"),
        TestClient(create_app(settings)) as client,
    ):
        yield client, {"Authorization": f"Bearer {admin}"}


def register(client: TestClient, admin: dict) -> tuple[int, dict, dict]:
    keys = {}
    scopes = []
    for name, modality in (("Widefield Lab", "widefield"), ("Reference Core", "other")):
        inst = client.post(
            "/api/v1/institutions",
            headers=admin,
            json={"name": name, "country": "CH", "contact_email": "x@example.org"},
        ).json()["id"]
        scopes.append(
            client.post(
                "/api/v1/microscopes",
                headers=admin,
                json={
                    **microscope_body(inst, name, modality),
                    "numerical_aperture": 1.49,
                    "pixel_size_um": 0.1,
                },
            ).json()["id"]
        )
        role = "lab" if modality == "widefield" else "partner"
        keys[role] = client.post(
            "/api/v1/keys", headers=admin, json={"institution_id": inst, "role": role}
        ).json()["key"]
    pairing = client.post(
        "/api/v1/pairings",
        headers=admin,
        json={"name": "w2s", "lq_microscope_id": scopes[0], "hq_microscope_id": scopes[1]},
    ).json()["id"]
    lab = {"Authorization": f"Bearer {keys['lab']}"}
    partner = {"Authorization": f"Bearer {keys['partner']}"}
    return pairing, lab, partner


def put(
    client: TestClient,
    headers: dict,
    pairing: int,
    side: str,
    path: Path,
    field_id: str | None = None,
) -> dict:
    response = client.post(
        f"/api/v1/pairings/{pairing}/images",
        headers=headers,
        params={"side": side, **({"field_id": field_id} if field_id else {})},
        files={"file": (path.name, path.read_bytes(), "image/tiff")},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_real_pairs_are_aligned_accepted_and_snapshotted(flow) -> None:  # type: ignore[no-untyped-def]
    client, admin = flow
    pairing, lab, partner = register(client, admin)
    for field in FIELDS:
        put(client, lab, pairing, "lq", W2S / "lq" / f"field_{field:03d}.tif")
        put(client, partner, pairing, "hq", W2S / "hq" / f"field_{field:03d}.tif")
    # Two different fields under one field id: the gate must reject them.
    put(client, lab, pairing, "lq", W2S / "lq" / "field_011.tif", field_id="mismatch")
    put(client, partner, pairing, "hq", W2S / "hq" / "field_030.tif", field_id="mismatch")

    pairs = {p["field_id"]: p for p in wait_for_pairs(client, lab, pairing, len(FIELDS) + 1)}
    for field in FIELDS:
        pair = pairs[f"field_{field:03d}"]
        assert pair["status"] == "accepted", pair["reason"]
        assert abs(pair["transform"]["rotation_deg"]) < 0.5
        assert max(abs(v) for v in pair["transform"]["shift_yx"]) < 1.0
    mismatch = pairs["mismatch"]
    assert mismatch["status"] == "rejected" and mismatch["reason"], mismatch
    assert (
        mismatch["score"] is not None and str(round(mismatch["score"], 2))[:3] in mismatch["reason"]
    )

    # Aligned arrays and the preview come back from the store.
    first = pairs["field_001"]
    base = f"/api/v1/pairings/{pairing}/pairs/{first['id']}"
    aligned = tifffile.imread(io.BytesIO(client.get(base + "/aligned/hq", headers=partner).content))
    assert aligned.dtype == np.float32 and aligned.shape[0] == 3 and aligned.shape[1] > 400
    png = PILImage.open(io.BytesIO(client.get(base + "/preview.png", headers=lab).content))
    assert png.format == "PNG" and png.width > 2 * png.height * 0.9

    # The rejected pair is still aligned and previewed, so its owner can overrule the gate by
    # hand; who and when are recorded, and the pair joins the next snapshot.
    assert mismatch["lq_aligned_sha256"] and mismatch["has_preview"]
    accepted = client.post(f"/api/v1/pairings/{pairing}/pairs/{mismatch['id']}/accept", headers=lab)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted_by_id"] and accepted.json()["accepted_manually_at"]
    again = client.post(f"/api/v1/pairings/{pairing}/pairs/{mismatch['id']}/accept", headers=lab)
    assert again.status_code == 409

    # Snapshot: immutable, digested, deterministic split by field. The same pairs, split and
    # hashes give the same digest, so asking again returns the existing snapshot (200).
    body = {"fractions": {"train": 0.6, "validation": 0.2, "test": 0.2}, "seed": 7}
    first = client.post(f"/api/v1/pairings/{pairing}/datasets", headers=lab, json=body)
    again = client.post(f"/api/v1/pairings/{pairing}/datasets", headers=partner, json=body)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    one, two = first.json(), again.json()
    assert one["id"] == two["id"] and one["digest"] == two["digest"]
    assert [(m["field_id"], m["split"]) for m in one["members"]] == [
        (m["field_id"], m["split"]) for m in two["members"]
    ]
    assert one["counts"]["test"] >= 2 and one["counts"]["validation"] >= 2
    assert sum(one["counts"].values()) == len(one["members"]) == len(FIELDS) + 1

    # A snapshot pins its images: deleting one is refused.
    member = one["members"][0]
    denied = client.delete(
        f"/api/v1/pairings/{pairing}/images/{member['lq_image_id']}", headers=lab
    )
    assert denied.status_code == 409 and "snapshot" in denied.json()["error"]["message"]
