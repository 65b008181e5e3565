"""Enhancement outputs as OME-Zarr: a client asks for `format=ome-zarr`, the worker writes the
NGFF store (pyramid, channels, pixel sizes, provenance) with models/ome_zarr.py's writer and
stores it zipped; the download is that zip, read back here by ngff-zarr as a zip store. The same
input as OME-TIFF is a second output, not the zipped store reused. On SQLite and a LocalStore;
the version is trained and published by the training pipeline and each enhancement is run by
the worker's job, in the test's process."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

from models.ome_zarr import ATTRIBUTE
from models.synthetic import make_pair
from pairscope.testing import flow
from pairscope.testing.flow import CHANNELS
from tests.worker.conftest import (
    InProcessService,
    align_every_pair,
    in_process_service,
    train_and_publish,
)
from tests.worker.test_trust_flow import PIXEL_UM, _tiff
from worker import enhancing

FIELDS = 5
NAMES = [c["name"] for c in CHANNELS]


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[InProcessService, flow.Network, int]]:
    """A pairing whose one version was trained and published by the training pipeline."""
    with in_process_service(tmp_path_factory.mktemp("zarr")) as service:
        net = flow.build_network(service.client, service.admin_key, "zarr")
        flow.upload_synthetic(net, FIELDS)
        align_every_pair(service)
        dataset = flow.accepted_snapshot(net, FIELDS)
        _, number = train_and_publish(service, net, dataset["id"], steps=12)
        yield service, net, number


def _enhance(published, image: np.ndarray, **fields: str) -> dict:  # type: ignore[no-untyped-def]
    service, net, number = published
    response = net.client.post(
        net.url("/enhancements"),
        headers=net.lab,
        files=[("files", ("field.tif", _tiff(image), "image/tiff"))],
        data={"version": str(number), **fields},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    if job["state"] != "succeeded":  # not a reused result: the worker's job computes it
        settings = service.settings.model_copy(update={"job_progress_interval_s": 5.0})
        done = enhancing.run(service.factory, service.store, settings, job["id"])
        assert done["state"] == "succeeded", done
    job = net.client.get(net.url(f"/enhancements/{job['id']}"), headers=net.lab).json()
    assert job["items"][0]["state"] == "succeeded", job
    return job


def _download(published, job: dict, path: Path):  # type: ignore[no-untyped-def]
    _, net, _ = published
    url = net.url(f"/enhancements/{job['id']}/items/{job['items'][0]['id']}/output")
    response = net.client.get(url, headers=net.lab)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return response


def test_an_ome_zarr_enhancement_downloads_as_a_zipped_store(published, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import ngff_zarr as nz

    lq, _, _ = make_pair((128, 160), seed=91)
    job = _enhance(published, lq, format="ome-zarr")
    assert job["format"] == "ome-zarr"

    archive = tmp_path / "download.ome.zarr.zip"
    response = _download(published, job, archive)
    assert response.headers["content-type"] == "application/zip"
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''field_enhanced.ome.zarr.zip" in disposition, disposition
    with zipfile.ZipFile(archive) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
        assert ".zattrs" in z.namelist()  # the store's root at the zip's root

    multiscales = nz.from_ome_zarr(str(archive))
    image = multiscales.images[0]
    assert [str(d) for d in image.dims] == ["c", "y", "x"]
    assert image.data.shape == (len(CHANNELS), 128, 160)
    assert len(multiscales.images) >= 2  # a pyramid
    assert [c.label for c in multiscales.metadata.omero.channels] == NAMES
    assert image.scale["y"] == image.scale["x"] == pytest.approx(PIXEL_UM)
    assert image.axes_units["x"] == image.axes_units["y"] == "micrometer"
    attributes = multiscales.root_attributes[ATTRIBUTE]
    assert attributes["provenance"]["input_file"] == "field.tif"
    assert attributes["provenance"]["input_sha256"] == job["items"][0]["input_sha256"]
    assert [c["name"] for c in attributes["channels"]] == NAMES
    pixels = np.asarray(image.data)
    assert pixels.dtype == np.float32 and np.isfinite(pixels).all()

    # The same input as OME-TIFF: another output (not the zip reused), with the same pixels.
    tiff_job = _enhance(published, lq)
    assert tiff_job["format"] == "ome-tiff"
    assert "reused" not in (tiff_job["items"][0]["reason"] or "")
    tiff_path = tmp_path / "download.ome.tif"
    response = _download(published, tiff_job, tiff_path)
    assert response.headers["content-type"] == "image/tiff"
    np.testing.assert_allclose(tifffile.imread(tiff_path), pixels, rtol=1e-5, atol=1e-5)

    # The same input as OME-Zarr again: the stored zip, no new computation.
    again = _enhance(published, lq, format="ome-zarr")
    assert "reused" in again["items"][0]["reason"]
    assert again["items"][0]["output_sha256"] == job["items"][0]["output_sha256"]
