"""Uploading LQ and HQ images: validation, storage, idempotency and access. Bad input gets a
4xx naming the problem and leaves no object and no row behind."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient

from api.main import create_app
from pairscope.testing.flow import microscope_body
from pairscope.testing.processes import W2S
from tests.api.conftest import Network
from tests.api.test_registry import row_counts


def tiff_bytes(array: np.ndarray, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    tifffile.imwrite(out, array, **kwargs)
    return out.getvalue()


def real(side: str, field: int) -> bytes:
    return (W2S / side / f"field_{field:03d}.tif").read_bytes()


def bomb() -> bytes:
    """A tiny TIFF whose header declares 100000 × 100000 pixels."""
    data = bytearray(tiff_bytes(np.zeros((16, 16), np.uint8)))
    page = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[0]
    for tag in ("ImageWidth", "ImageLength"):
        offset = page.tags[tag].valueoffset
        data[offset : offset + 4] = (100_000).to_bytes(4, "little")
    return bytes(data)


def zero_width() -> bytes:
    """A TIFF whose header declares an image 0 pixels wide (tifffile divides by it)."""
    data = bytearray(tiff_bytes(np.zeros((16, 16), np.uint8)))
    offset = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[0].tags["ImageWidth"].valueoffset
    data[offset : offset + 4] = (0).to_bytes(4, "little")
    return bytes(data)


def corrupt() -> bytes:
    data = bytearray(real("lq", 1))
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(4000)
    return bytes(data)


def w2s_pairing(network: Network, **optics) -> int:
    """A pairing between microscopes with W2S's optics (60x/1.49 oil, ~0.1 µm pixels)."""
    w2s = {
        "objective_magnification": 60,
        "numerical_aperture": 1.49,
        "immersion_index": 1.515,
        "pixel_size_um": 0.1,
        **optics,
    }
    lq = network.call(
        "POST",
        "/api/v1/microscopes",
        json={**microscope_body(network.ids["lab"], "W2S widefield", "widefield"), **w2s},
    ).json()["id"]
    hq = network.call(
        "POST",
        "/api/v1/microscopes",
        json={**microscope_body(network.ids["partner"], "W2S 400-frame average", "other"), **w2s},
    ).json()["id"]
    response = network.call(
        "POST",
        "/api/v1/pairings",
        json={"name": "w2s", "lq_microscope_id": lq, "hq_microscope_id": hq},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def upload(
    network: Network,
    pairing: int,
    side: str,
    content: bytes,
    who: str | None = None,
    filename: str = "field_001.tif",
    field_id: str | None = None,
):  # type: ignore[no-untyped-def]
    who = who or ("lab" if side == "lq" else "partner")
    params = {"side": side, **({"field_id": field_id} if field_id else {})}
    return network.call(
        "POST",
        f"/api/v1/pairings/{pairing}/images",
        who=who,
        params=params,
        files={"file": (filename, content, "image/tiff")},
    )


def stored_files(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    root = settings.resolved_objects_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_upload_is_recorded_streamed_back_and_idempotent(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    first = upload(network, pairing, "lq", real("lq", 1))
    assert first.status_code == 201, first.text
    image = first.json()
    assert image["field_id"] == "field_001" and image["side"] == "lq"
    assert (image["axes"], image["shape"], image["dtype"]) == ("CYX", [3, 512, 512], "uint8")
    assert image["pixel_size_um"] == 0.1 and image["pixel_size_source"] == "microscope"
    assert f"institutions/{network.ids['lab']}/pairings/{pairing}/lq/" in str(
        stored_files(settings)[0]
    )
    again = upload(network, pairing, "lq", real("lq", 1))
    assert again.status_code == 200 and again.json()["id"] == image["id"]
    assert len(stored_files(settings)) == 1
    download = network.call(
        "GET", f"/api/v1/pairings/{pairing}/images/{image['id']}/file", who="partner"
    )
    assert download.status_code == 200 and download.content == real("lq", 1)
    listed = network.call(
        "GET", f"/api/v1/pairings/{pairing}/images", params={"sha256": image["sha256"]}, who="lab"
    ).json()
    assert [i["id"] for i in listed["items"]] == [image["id"]]


def test_only_the_owning_side_may_upload(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    before = row_counts(settings)
    assert upload(network, pairing, "lq", real("lq", 1), who="partner").status_code == 403
    assert upload(network, pairing, "hq", real("hq", 1), who="lab").status_code == 403
    assert upload(network, pairing, "lq", real("lq", 1), who="admin").status_code == 403
    assert upload(network, pairing, "lq", real("lq", 1), who="outsider").status_code == 404
    assert row_counts(settings) == before and stored_files(settings) == []


BAD_INPUTS: list[tuple[str, Callable[[], bytes], int, str]] = [
    ("not a tiff", lambda: b"this is a text file, not an image", 422, "not a TIFF"),
    ("empty", lambda: b"", 422, "empty"),
    ("truncated", lambda: real("lq", 1)[: len(real("lq", 1)) // 2], 422, "truncated"),
    ("corrupt", corrupt, 422, "corrupt"),
    ("zero-sized axis", lambda: tiff_bytes(np.zeros((3, 0, 8), np.uint8)), 422, "zero-sized"),
    ("decompression bomb", bomb, 422, "more than the limit"),
    (
        "wrong channel count",
        lambda: tiff_bytes(np.zeros((2, 64, 64), np.uint16), metadata={"axes": "CYX"}),
        422,
        "2 channel(s)",
    ),
    ("unsupported dtype", lambda: tiff_bytes(np.zeros((3, 64, 64), np.int32)), 422, "int32"),
    (
        "time series",
        lambda: tiff_bytes(np.zeros((4, 3, 32, 32), np.uint8), metadata={"axes": "TCYX"}),
        422,
        "time series",
    ),
    ("zero width", zero_width, 422, "zero-sized axis: 16 pixels high and 0 wide"),
    (
        "smaller than registration needs",
        lambda: tiff_bytes(np.zeros((3, 1, 64), np.uint16), metadata={"axes": "CYX"}),
        422,
        "1x64 pixels (height x width); at least 16x16",
    ),
    (
        "channels of interleaved RGB samples",
        lambda: tiff_bytes(np.zeros((3, 32, 32, 3), np.uint8), imagej=True, photometric="rgb"),
        422,
        "3 channels of 3 interleaved samples per pixel",
    ),
]


@pytest.mark.parametrize(
    ("case", "make", "status", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_refused_and_leaves_nothing(
    network: Network, settings, case: str, make: Callable[[], bytes], status: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    before = row_counts(settings)
    response = upload(network, pairing, "lq", make(), filename="broken.tif")
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and "broken.tif" in error["message"], error
    assert "Error" not in error["message"], "the message shows the parser's internals"
    assert row_counts(settings) == before
    assert stored_files(settings) == []
    assert list((settings.data_dir / "tmp").glob("*")) == []


def test_upload_limit_is_enforced_while_streaming(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    small = settings.model_copy(update={"upload_max_bytes": 100_000})
    before = row_counts(settings)
    with TestClient(create_app(small)) as client:
        response = client.post(
            f"/api/v1/pairings/{pairing}/images",
            params={"side": "lq"},
            headers=network.headers("lab"),
            files={"file": ("big.tif", real("lq", 1), "image/tiff")},
        )
    assert response.status_code == 413 and "upload limit" in response.json()["error"]["message"]
    assert row_counts(settings) == before and stored_files(settings) == []


def test_not_multipart_and_bad_field_id(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    raw = network.call(
        "POST",
        f"/api/v1/pairings/{pairing}/images",
        who="lab",
        params={"side": "lq"},
        content=real("lq", 1),
        headers={"content-type": "image/tiff"},
    )
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["error"]["message"]
    bad = upload(network, pairing, "lq", real("lq", 1), field_id="../../etc")
    assert bad.status_code == 422 and "field_id" in bad.json()["error"]["message"]
    assert stored_files(settings) == []


def test_a_different_hq_for_a_field_conflicts(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    assert upload(network, pairing, "hq", real("hq", 1)).status_code == 201
    before, files = row_counts(settings), stored_files(settings)
    response = upload(network, pairing, "hq", real("hq", 2), filename="field_001.tif")
    assert response.status_code == 409
    assert "already has a different HQ image" in response.json()["error"]["message"]
    assert row_counts(settings) == before and stored_files(settings) == files


def test_pixel_size_from_metadata_and_contradictions(network: Network) -> None:
    pairing = w2s_pairing(network)
    data = tifffile.imread(io.BytesIO(real("lq", 2)))
    ome = tiff_bytes(
        data,
        ome=True,
        metadata={
            "axes": "CYX",
            "PhysicalSizeX": 0.2,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": 0.2,
        },
    )
    image = upload(network, pairing, "lq", ome, filename="ome_field.ome.tif").json()
    assert image["field_id"] == "ome_field" and image["file_format"] == "ome-tiff"
    assert image["pixel_size_um"] == pytest.approx(0.2) and image["pixel_size_source"] == "ome"
    assert "0.2 µm per pixel" in image["warnings"][0]
    imagej = tiff_bytes(
        data, imagej=True, resolution=(1 / 0.1, 1 / 0.1), metadata={"axes": "CYX", "unit": "um"}
    )
    image = upload(network, pairing, "lq", imagej, filename="ij_field.tif").json()
    assert image["file_format"] == "imagej-tiff" and image["pixel_size_source"] == "imagej"
    assert image["pixel_size_um"] == pytest.approx(0.1) and image["warnings"] == []


def test_z_stacks_and_bigtiff_are_accepted(network: Network) -> None:
    pairing = w2s_pairing(network, z_step_um=0.3)
    stack = np.random.default_rng(0).integers(0, 4000, (5, 3, 64, 64), dtype=np.uint16)
    image = upload(
        network,
        pairing,
        "lq",
        tiff_bytes(stack, metadata={"axes": "ZCYX"}, bigtiff=True),
        filename="stack.tif",
    )
    assert image.status_code == 201, image.text
    body = image.json()
    assert (body["axes"], body["shape"], body["file_format"]) == ("ZCYX", [5, 3, 64, 64], "bigtiff")
    assert body["z_step_um"] == 0.3


def test_foreign_institutions_see_nothing(network: Network) -> None:
    pairing = w2s_pairing(network)
    image = upload(network, pairing, "lq", real("lq", 1)).json()
    base = f"/api/v1/pairings/{pairing}"
    for path in (
        "/images",
        f"/images/{image['id']}",
        f"/images/{image['id']}/file",
        "/pairs",
        "/datasets",
    ):
        assert network.call("GET", base + path, who="outsider").status_code == 404, path
    assert network.call("DELETE", f"{base}/images/{image['id']}", who="outsider").status_code == 404
    assert network.call("POST", f"{base}/datasets", who="outsider", json={}).status_code == 404
    assert network.call("DELETE", f"{base}/images/{image['id']}", who="partner").status_code == 403
    assert network.call("DELETE", f"{base}/images/{image['id']}", who="lab").status_code == 204
