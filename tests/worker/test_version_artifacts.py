"""What leaves the service with a version: its bioimage.io package (built by the worker at
publish time, validated with bioimageio.spec, downloaded through the API and by `pairscope
export`, refused with a 409 when the stored object is gone or altered), and its pixel size
(inputs of another pixel size resampled onto the version's grid, refused beyond the stated
factor, assumed with a warning when unknown). On SQLite and a LocalStore; training, export and
enhancement run here, in the test's process, as a worker would run them."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.main import create_app
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import EnhancementJob, JobState, ModelVersion, Split
from models.bioimageio_export import validate_package
from models.image_io import read_image
from models.synthetic import make_pair
from pairscope.cli import main
from pairscope.testing import flow
from pairscope.testing.flow import CHANNELS
from tests.worker.conftest import align_every_pair, in_process_service, train_and_publish
from worker import enhancing, training_pipeline
from worker.claims import Claim
from worker.objects import download_verified
from worker.training_stages import Evaluation, Trained, _bioimageio_package, load_job

FIELDS = 5
PIXEL_UM = flow.PAPER_OPTICS["pixel_size_um"]  # both microscopes': the grid is the LQ pixel


@dataclass
class Published:
    settings: Settings
    factory: sessionmaker[Session]
    store: ObjectStore
    net: flow.Network
    job_id: int
    number: int

    def version(self) -> ModelVersion:
        with session_scope(self.factory) as session:
            version = session.scalar(select(ModelVersion).where(ModelVersion.job_id == self.job_id))
            session.expunge(version)
            return version

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.net.client.get(self.net.url(path), headers=self.net.lab)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """A pairing whose one version was trained and published by the training pipeline."""
    with in_process_service(tmp_path_factory.mktemp("artifacts")) as service:
        net = flow.build_network(service.client, service.admin_key, "artifacts")
        flow.upload_synthetic(net, FIELDS)
        align_every_pair(service)
        dataset = flow.accepted_snapshot(net, FIELDS)
        job_id, number = train_and_publish(service, net, dataset["id"], steps=12)
        yield Published(service.settings, service.factory, service.store, net, job_id, number)


# ------------------------------------------------------------------ the bioimage.io package
def test_every_published_version_has_a_valid_bioimageio_package(
    published: Published, tmp_path: Path
) -> None:
    from bioimageio.spec import load_model_description

    version = published.version()
    assert version.bioimageio_key and version.bioimageio_error is None
    assert (version.lq_pixel_size_um, version.hq_pixel_size_um) == (PIXEL_UM, PIXEL_UM)

    body = published.get(f"/versions/{published.number}").json()
    assert body["bioimageio"] == {
        "available": True,
        "sha256": version.bioimageio_sha256,
        "error": None,
    }
    assert body["hq_pixel_size_um"] == PIXEL_UM

    response = published.get(f"/versions/{published.number}/bioimageio.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert hashlib.sha256(response.content).hexdigest() == version.bioimageio_sha256
    package = tmp_path / "package.zip"
    package.write_bytes(response.content)
    validate_package(package)  # raises when bioimageio.spec finds it invalid
    descr = load_model_description(package, perform_io_checks=True)
    axes = {str(a.id): a for a in descr.inputs[0].axes}
    assert [str(n) for n in axes["channel"].channel_names] == [c["name"] for c in CHANNELS]
    assert axes["x"].scale == pytest.approx(PIXEL_UM) and axes["x"].unit == "micrometer"
    with session_scope(published.factory) as session:
        dataset = session.get_one(ModelVersion, version.id).dataset_digest
    assert descr.config.pairscope["training_snapshot_digest"] == dataset


def test_a_failed_export_is_a_reason_not_a_failed_job(published: Published, tmp_path: Path) -> None:
    """The export is given a sample the model cannot take (one channel of three): the reason
    comes back to be recorded on the version, nothing is raised; a version recorded so answers
    409 with that reason and says so in its JSON."""
    from models.model import EnhancementModel

    version = published.version()
    response = published.net.client.post(
        published.net.url("/training-jobs"),
        headers=published.net.lab,
        json={"dataset_id": version.dataset_id, "preset": "tiny", "overrides": {"steps": 2}},
    )
    job_id = response.json()["id"]
    claimed = training_pipeline.claim(published.factory, job_id, published.settings)
    assert claimed == Claim.run
    (tmp_path / "scratch").mkdir()
    job = load_job(
        published.factory, published.store, published.settings, job_id, "CPU", tmp_path / "scratch"
    )
    model_zip = download_verified(
        published.store, version.model_key, version.model_sha256, tmp_path / "model.zip"
    )
    trained = Trained(EnhancementModel.load(model_zip), result=None)  # type: ignore[arg-type]
    _, lq, _ = job.fields[Split.test][0]
    one_channel = Evaluation(report=None, picture=b"", sample=lq[:1])  # type: ignore[arg-type]
    reason = _bioimageio_package(job, trained, one_channel)
    assert isinstance(reason, str) and reason.startswith("ValueError") and "channel" in reason
    assert not (job.scratch / "bioimageio.zip").exists()

    with session_scope(published.factory) as session:
        row = session.get_one(ModelVersion, version.id)
        row.bioimageio_key, row.bioimageio_sha256, row.bioimageio_error = None, None, reason
    try:
        response = published.get(f"/versions/{published.number}/bioimageio.zip")
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["artifact"] == "bioimage.io package" and reason in error["message"]
        body = published.get(f"/versions/{published.number}").json()["bioimageio"]
        assert body == {"available": False, "sha256": None, "error": reason}
    finally:
        with session_scope(published.factory) as session:
            row = session.get_one(ModelVersion, version.id)
            row.bioimageio_key = version.bioimageio_key
            row.bioimageio_sha256 = version.bioimageio_sha256
            row.bioimageio_error = None


@pytest.mark.parametrize(
    ("artifact", "path", "key_field"),
    [
        ("bioimage.io package", "bioimageio.zip", "bioimageio_key"),
        ("model", "model", "model_key"),
        ("report.png", "report.png", "report_png_key"),
    ],
)
def test_a_missing_or_altered_artifact_is_a_409_naming_it(
    published: Published, artifact: str, path: str, key_field: str
) -> None:
    key = getattr(published.version(), key_field)
    original = b"".join(published.store.iter_bytes(key))
    url = f"/versions/{published.number}/{path}"
    try:
        published.store.delete(key)
        response = published.get(url)
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["artifact"] == artifact and "missing" in error["message"]

        published.store.put(key, io.BytesIO(bytes([original[0] ^ 0xFF]) + original[1:]))
        response = published.get(url)
        assert response.status_code == 409
        assert "does not match its recorded sha256" in response.json()["error"]["message"]
    finally:
        published.store.put(key, io.BytesIO(original))
    assert published.get(url).content == original
    assert not list((published.settings.data_dir / "tmp").glob("artifact-*"))  # no leftovers


@pytest.fixture
def served(published: Published) -> Iterator[str]:
    """The same app over real HTTP, for the command line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(published.settings), host="127.0.0.1", port=port, log_level="error"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_export_command_downloads_the_services_package(
    published: Published, served: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = published.net.lab["Authorization"].split()[1]
    out = tmp_path / "v.bioimageio.zip"
    common = ["--url", served, "--key", key, "--out", str(out)]
    pairing = ["--pairing", str(published.net.pairing)]
    assert main(["export", *pairing, "--version", str(published.number), *common]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == published.version().bioimageio_sha256
    assert "bioimage.io package of version" in capsys.readouterr().out
    validate_package(out)

    assert main(["export", *pairing, "--version", "99", *common]) == 2
    assert "version 99 does not exist" in capsys.readouterr().err
    assert main(["export", *pairing, "--model", str(tmp_path), *common]) == 2  # both forms
    assert main(["export", "--model", str(tmp_path), *common]) == 2  # --model without --sample
    assert "--sample" in capsys.readouterr().err


# ------------------------------------------------------------------ pixel size
def _tiff(pixel_um: float | None, seed: int = 50) -> bytes:
    lq, _, _ = make_pair((128, 128), seed=seed)
    out = io.BytesIO()
    extra = {} if pixel_um is None else {"resolution": (1e4 / pixel_um, 1e4 / pixel_um)}
    tifffile.imwrite(
        out,
        lq,
        metadata={"axes": "CYX"},
        resolutionunit="CENTIMETER" if pixel_um else None,
        **extra,
    )
    return out.getvalue()


def _enhance(published: Published, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return published.net.client.post(
        published.net.url("/enhancements"),
        headers=published.net.lab,
        files=[("files", (name, data, "image/tiff"))],
        data={"version": str(published.number)},
    )


def _run_enhancement(published: Published, job: dict, tmp_path: Path) -> tuple[dict, np.ndarray]:
    """The worker's enhancement of the job, then its one item and its output as read back."""
    settings = published.settings.model_copy(update={"job_progress_interval_s": 5.0})
    done = enhancing.run(published.factory, published.store, settings, job["id"])
    assert done["state"] == "succeeded", done
    body = published.get(f"/enhancements/{job['id']}").json()
    item = body["items"][0]
    response = published.get(f"/enhancements/{job['id']}/items/{item['id']}/output")
    assert response.status_code == 200
    out = tmp_path / f"out-{item['id']}.ome.tif"
    out.write_bytes(response.content)
    image, info = read_image(out)
    return {**item, "output_pixel_um": info.pixel_size_um}, image


def test_a_finer_input_is_resampled_onto_the_models_grid(
    published: Published, tmp_path: Path
) -> None:
    response = _enhance(published, "fine.tif", _tiff(PIXEL_UM / 2))
    assert response.status_code == 202, response.text
    planned = response.json()["items"][0]["pixel_size"]
    assert planned["action"] == "resampled" and planned["resampled"] is True
    assert planned["input_um"] == pytest.approx(PIXEL_UM / 2)
    assert planned["model_um"] == planned["output_um"] == pytest.approx(PIXEL_UM)
    assert planned["warning"] is None

    item, image = _run_enhancement(published, response.json(), tmp_path)
    assert item["state"] == "succeeded"
    assert image.shape == (3, 64, 64)  # 128 pixels of 0.05 µm are 64 of the grid's 0.1 µm
    assert item["output_pixel_um"] == pytest.approx(PIXEL_UM)  # labelled with the grid


def test_an_input_three_times_coarser_is_refused_naming_both_sizes(published: Published) -> None:
    with session_scope(published.factory) as session:
        before = session.scalar(select(EnhancementJob.id).order_by(EnhancementJob.id.desc()))
    response = _enhance(published, "coarse.tif", _tiff(3 * PIXEL_UM))
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "coarse.tif" in message and "0.3 µm" in message and "0.1 µm" in message
    assert "0.5–2×" in message
    with session_scope(published.factory) as session:  # nothing was recorded
        after = session.scalar(select(EnhancementJob.id).order_by(EnhancementJob.id.desc()))
    assert after == before


def test_an_input_without_a_pixel_size_gets_the_lq_microscopes_with_a_warning(
    published: Published, tmp_path: Path
) -> None:
    response = _enhance(published, "unlabelled.tif", _tiff(None, seed=51))
    assert response.status_code == 202, response.text
    planned = response.json()["items"][0]["pixel_size"]
    assert planned["action"] == "assumed" and planned["resampled"] is False
    assert planned["input_um"] == planned["output_um"] == pytest.approx(PIXEL_UM)
    assert "no pixel size" in planned["warning"] and "0.1 µm" in planned["warning"]

    item, image = _run_enhancement(published, response.json(), tmp_path)
    assert item["state"] == "succeeded" and image.shape == (3, 128, 128)
    assert item["output_pixel_um"] == pytest.approx(PIXEL_UM)
    with session_scope(published.factory) as session:
        assert session.get_one(EnhancementJob, response.json()["id"]).state == JobState.succeeded
