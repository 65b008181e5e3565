"""The whole network end to end through the API with real workers: pairing → uploads from both
sides → snapshot → training → version 1 with its evaluation → promotion → enhancement of a new
image → the OME-TIFF with its provenance, closer to the ground truth than the input.

Run once on the embedded filesystem broker with one worker on every queue (as `pairscope serve`
runs it), and once on Redis with separate `train` and `infer` worker processes."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
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
from models.metrics import score_image
from models.synthetic import make_pair
from pairscope.testing import flow
from pairscope.testing.flow import CHANNELS, make_key
from pairscope.testing.processes import running_worker
from tests.ome_output import PROVENANCE_KEYS, pixels_per_cm, read_back, resolution_value

FIELDS = 6


@pytest.fixture(params=["embedded", "redis"])
def service(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    extra = {}
    workers = [("train,infer,default", "all")]
    if request.param == "redis":
        url = request.getfixturevalue("redis_db_url")
        extra = {"broker_url": url, "result_backend": url}
        workers = [("train", "train"), ("infer,default", "infer")]
    settings = Settings(data_dir=tmp_path / "var", job_progress_interval_s=0.5, **extra)
    upgrade(settings)
    _, admin_key = make_key(settings, "Operations", Role.admin)
    with contextlib.ExitStack() as stack:
        for queues, name in workers:
            stack.enter_context(running_worker(settings, queues, tmp_path / f"{name}.log", name))
        client = stack.enter_context(TestClient(create_app(settings)))
        yield client, admin_key


def test_pairing_to_enhanced_image(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, admin_key = service
    net = flow.build_network(client, admin_key)
    flow.upload_synthetic(net, FIELDS)
    dataset = flow.accepted_snapshot(net, FIELDS)

    job = flow.wait_job(net, flow.train(net, dataset["id"])["id"])
    assert job["state"] == "succeeded", job["reason"]
    assert job["progress"]["percent"] == 100 and job["progress"]["step"] == flow.FAST["steps"]
    assert job["history"] and "val_psnr" in job["history"][-1] or job["history"]
    assert job["device"].startswith(("CPU", "GPU")) and job["worker_host"]
    assert job["version"] == 1

    version = client.get(net.url("/versions/1"), headers=net.partner).json()
    assert version["dataset_digest"] == dataset["digest"] and version["seed"] == 3
    assert version["software"]["tensorflow"] and version["config"]["steps"] == 400
    medians = version["metrics"]["medians"]
    assert {"identity", "richardson_lucy", "generated"} <= set(medians)
    assert version["metrics"]["fields"] == sorted(
        m["field_id"] for m in dataset["members"] if m["split"] == "test"
    )
    report = client.get(net.url("/versions/1/report.json"), headers=net.lab).json()
    assert report["report"]["medians"]["generated"]["psnr"] == pytest.approx(
        float(medians["generated"]["psnr"])
    )
    png = PILImage.open(
        io.BytesIO(client.get(net.url("/versions/1/report.png"), headers=net.lab).content)
    )
    assert png.format == "PNG" and png.height > 400
    model_zip = client.get(net.url("/versions/1/model"), headers=net.lab).content
    assert "generator.weights.h5" in zipfile.ZipFile(io.BytesIO(model_zip)).namelist()
    saved = json.loads(zipfile.ZipFile(io.BytesIO(model_zip)).read("metadata.json"))
    imaging = saved["imaging"]  # so `pairscope enhance` labels its outputs like the service
    assert [c["name"] for c in imaging["channels"]] == [c["name"] for c in CHANNELS]
    assert imaging["pixel_size_um"] == 0.1 and imaging["objective"]["numerical_aperture"] == 1.4

    # Promote; a lab key cannot override the gate, an admin can, with a recorded reason.
    promote = client.put(net.url("/aliases/production"), headers=net.lab, json={"version": 1})
    if promote.status_code == 409:
        assert "quality gate" in promote.json()["error"]["message"]
        promote = client.put(
            net.url("/aliases/production"),
            headers=net.admin,
            json={"version": 1, "override_reason": "first version of the demo"},
        )
    assert promote.status_code == 200, promote.text
    events = client.get(net.url("/alias-events"), headers=net.lab).json()["items"]
    assert events[-1]["to_version"] == 1 and events[-1]["from_version"] is None

    # Enhance a new wide-field image with the production version.
    lq, hq, _ = make_pair((160, 144), seed=99, shift=(0.0, 0.0))
    enhance = client.post(
        net.url("/enhancements"),
        headers=net.lab,
        files=[("files", ("new-cell.tif", flow.tiff(lq), "image/tiff"))],
        data={"out_dtype": "float32"},
    )
    assert enhance.status_code == 202, enhance.text
    assert enhance.json()["version"] == 1
    done = flow.wait(net, f"/enhancements/{enhance.json()['id']}", flow.finished)
    assert done["state"] == "succeeded", done
    item = done["items"][0]
    url = net.url(f"/enhancements/{done['id']}/items/{item['id']}/output")
    downloaded = tmp_path / "output.ome.tif"
    downloaded.write_bytes(client.get(url, headers=net.lab).content)
    with tifffile.TiffFile(downloaded) as tif:
        output = tif.asarray()
        ome = tif.ome_metadata
    assert output.shape == lq.shape and output.dtype == np.float32
    assert 'PhysicalSizeX="0.1"' in ome and version["model_sha256"] in ome
    assert item["input_sha256"] in ome
    back = read_back(downloaded)
    assert [
        (c.name, c.fluor, c.excitation_wavelength, c.emission_wavelength)
        for c in back.pixels.channels
    ] == [(c["name"], c["fluorophore"], c["excitation_nm"], c["emission_nm"]) for c in CHANNELS]
    assert (back.objective.lens_na, back.objective.nominal_magnification) == (1.4, 63)
    assert back.objective.immersion.value == "Oil"
    assert resolution_value(back.resolution[0]) == pytest.approx(pixels_per_cm(0.1))
    provenance = back.provenance
    assert set(provenance) == PROVENANCE_KEYS and provenance["version"] == "1"
    assert provenance["weights_sha256"] == version["weights_sha256"]
    assert provenance["input_file"] == "new-cell.tif"
    gain = (
        score_image(output, hq.astype(np.float32))["psnr"]
        - score_image(lq.astype(np.float32), hq.astype(np.float32))["psnr"]
    )
    assert gain > 0, f"the enhanced image is not closer to the ground truth ({gain:+.2f} dB)"
    preview = client.get(
        net.url(f"/enhancements/{done['id']}/items/{item['id']}/preview.png"), headers=net.lab
    )
    assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG"

    # The same input, version and parameters: the stored result, no new computation.
    again = client.post(
        net.url("/enhancements"),
        headers=net.lab,
        files=[("files", ("copy.tif", flow.tiff(lq), "image/tiff"))],
    )
    assert again.status_code == 202 and again.json()["state"] == "succeeded"
    assert again.json()["items"][0]["output_sha256"] == item["output_sha256"]
    assert "reused" in again.json()["items"][0]["reason"]
    json.dumps(done)
