"""What a multipart request may hold in memory is bounded (text fields in size and count, part
headers), and a body declaring more than the upload limit is refused before it is read; every
refusal is a 413 in the error shape and leaves nothing behind."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from api.upload_stream import MAX_FIELD_BYTES, MAX_FIELDS, MAX_FIELDS_TOTAL_BYTES
from tests.api.conftest import Network
from tests.api.test_ingest import real, stored_files, w2s_pairing
from tests.api.test_registry import row_counts


def _too_large(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and error["status"] == 413
    return error


def _post(network: Network, pairing: int, **kwargs):  # type: ignore[no-untyped-def]
    return network.call(
        "POST", f"/api/v1/pairings/{pairing}/images", who="lab", params={"side": "lq"}, **kwargs
    )


def test_text_fields_are_bounded_in_total_and_count(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    before = row_counts(settings)
    file = {"file": ("field_001.tif", real("lq", 1), "image/tiff")}
    big = "x" * (MAX_FIELD_BYTES - 1)  # each field within its own limit
    many_big = {f"f{i}": big for i in range(MAX_FIELDS_TOTAL_BYTES // MAX_FIELD_BYTES + 1)}
    error = _too_large(_post(network, pairing, data=many_big, files=file))
    assert "text fields" in error["message"]
    many_small = {f"f{i}": "1" for i in range(MAX_FIELDS + 1)}
    error = _too_large(_post(network, pairing, data=many_small, files=file))
    assert "text fields" in error["message"]
    assert row_counts(settings) == before and stored_files(settings) == []
    assert list((settings.data_dir / "tmp").glob(".receive-*")) == []


def test_a_declared_length_beyond_the_limit_is_refused_before_reading(
    network: Network, settings
) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    before = row_counts(settings)
    small = settings.model_copy(update={"upload_max_bytes": 100_000})
    # The body itself is a malformed form: read, it would be a 400, not a 413.
    with TestClient(create_app(small)) as client:
        response = client.post(
            f"/api/v1/pairings/{pairing}/images",
            params={"side": "lq"},
            headers={
                **network.headers("lab"),
                "content-type": "multipart/form-data; boundary=xyz",
                "content-length": str(5 * 1024**3),
            },
            content=b"not a form",
        )
    error = _too_large(response)
    assert "upload limit of 100000 bytes" in error["message"]
    assert row_counts(settings) == before and stored_files(settings) == []
