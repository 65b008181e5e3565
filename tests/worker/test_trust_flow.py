"""Trust every enhanced pixel, where it shows: a version published by the training pipeline
carries its pairing's blur and input statistics (model.zip, report.json, report.png); every
enhancement is checked against its own input and the training fields, with the maps in a second
OME-TIFF and the verdict on the item; each carries its calibrated uncertainty (the intervals'
coverage measured at publish); `pairscope enhance --consistency/--uncertainty` do the same locally;
blank and pure-noise inputs come out without structure. On SQLite and a LocalStore; training and
enhancement run here, in the test's process, as a worker would run them."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.settings import Settings
from api.storage import ObjectStore
from api.tables import ModelVersion
from models.image_io import read_image
from models.null_inputs import BLANK_STD_MAX, NOISE_GAIN_MAX, structure_from_nothing
from models.output_metadata import provenance_of
from models.synthetic import make_pair
from models.trust import calibration_of, reference_of
from models.trust_maps import map_channel_names
from pairscope.cli import main
from pairscope.testing import flow
from pairscope.testing.flow import CHANNELS
from tests.worker.conftest import align_every_pair, in_process_service, train_and_publish
from worker import enhancing
from worker.objects import download_verified

FIELDS = 5
PIXEL_UM = flow.PAPER_OPTICS["pixel_size_um"]
NAMES = [c["name"] for c in CHANNELS]


@dataclass
class Published:
    settings: Settings
    factory: sessionmaker[Session]
    store: ObjectStore
    net: flow.Network
    job_id: int
    number: int
    model_zip: Path

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
    home = tmp_path_factory.mktemp("trust")
    with in_process_service(home) as service:
        net = flow.build_network(service.client, service.admin_key, "trust")
        flow.upload_synthetic(net, FIELDS)
        align_every_pair(service)
        dataset = flow.accepted_snapshot(net, FIELDS)
        job_id, number = train_and_publish(service, net, dataset["id"], steps=12)
        with session_scope(service.factory) as session:
            version = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
            model_zip = download_verified(
                service.store, version.model_key, version.model_sha256, home / "model.zip"
            )
        yield Published(
            service.settings, service.factory, service.store, net, job_id, number, model_zip
        )


def _tiff(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(
        out,
        image,
        metadata={"axes": "CYX"},
        photometric="minisblack",
        resolution=(1e4 / PIXEL_UM, 1e4 / PIXEL_UM),
        resolutionunit="CENTIMETER",
    )
    return out.getvalue()


def _enhance(published: Published, name: str, image: np.ndarray, tmp_path: Path) -> dict:
    """Ask the service to enhance one image, run the worker's job here, return the item."""
    response = published.net.client.post(
        published.net.url("/enhancements"),
        headers=published.net.lab,
        files=[("files", (name, _tiff(image), "image/tiff"))],
        data={"version": str(published.number)},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    settings = published.settings.model_copy(update={"job_progress_interval_s": 5.0})
    done = enhancing.run(published.factory, published.store, settings, job["id"])
    assert done["state"] == "succeeded", done
    item = published.get(f"/enhancements/{job['id']}").json()["items"][0]
    assert item["state"] == "succeeded", item
    return {**item, "job_id": job["id"]}


# ------------------------------------------------------------------ at publish time
def test_a_published_version_carries_its_reference_and_reports_it(
    published: Published, tmp_path: Path
) -> None:
    from models.model import EnhancementModel

    reference = reference_of(EnhancementModel.load(published.model_zip).metadata)
    assert reference is not None, "model.zip has no trust reference"
    assert reference.blur.channels == len(CHANNELS)
    assert reference.blur.pixel_size_um == pytest.approx(PIXEL_UM)
    assert reference.ood.threshold is not None and reference.ood.threshold > 0
    psf = reference.effective_psf()
    assert psf.startswith("FWHM") and psf.endswith("µm") or psf.startswith("LQ as sharp")

    version = published.version()
    path = download_verified(
        published.store, version.report_key, version.report_sha256, tmp_path / "report.json"
    )
    trust = json.loads(path.read_text())["report"]["info"]["trust"]
    assert trust["reference"]["effective_psf"] == psf
    assert set(trust["fields"]) == set(version.metrics["fields"])
    for numbers in trust["fields"].values():
        assert len(numbers["rsp"]) == len(CHANNELS) and len(numbers["rse"]) == len(CHANNELS)
        assert all(-1.0 <= r <= 1.0 for r in numbers["rsp"])
        assert all(e >= 0 for e in numbers["rse"])
        assert isinstance(numbers["flagged"], bool)
    assert trust["null_inputs"]["within_bounds"] is True
    assert version.metrics["trust"]["effective_psf"] == psf


def test_a_published_version_carries_its_calibration_and_measured_coverage(
    published: Published, tmp_path: Path
) -> None:
    from models.model import EnhancementModel

    calibration = calibration_of(EnhancementModel.load(published.model_zip).metadata)
    assert calibration is not None, "model.zip has no uncertainty calibration"
    assert calibration.coverage == 0.9 and calibration.quantile > 0 and calibration.n_members == 1
    assert calibration.notes["fields"] in ("validation", "training")

    version = published.version()
    path = download_verified(
        published.store, version.report_key, version.report_sha256, tmp_path / "report.json"
    )
    measured = json.loads(path.read_text())["report"]["info"]["trust"]["uncertainty"]
    assert measured["coverage_nominal"] == 0.9 and measured["split"] == version.metrics["split"]
    assert set(measured["fields"]) == set(version.metrics["fields"])
    assert measured["calibrated_on"] == calibration.notes["fields"]
    coverage, rho = measured["coverage"], measured["spearman_median"]
    assert 0.0 <= coverage <= 1.0 and (rho is None or -1.0 <= rho <= 1.0), measured
    assert version.metrics["trust"]["uncertainty_coverage"] == coverage  # the gate reads it
    assert version.metrics["trust"]["uncertainty_spearman"] == rho


# ------------------------------------------------------------------ every enhancement
def test_an_enhancement_carries_its_trust_and_its_maps(
    published: Published, tmp_path: Path
) -> None:
    lq, _, _ = make_pair((128, 128), seed=71)
    item = _enhance(published, "field.tif", lq, tmp_path)
    trust = item["trust"]
    consistency, ood = trust["consistency"], trust["ood"]
    assert len(consistency["rsp"]) == len(consistency["rse"]) == len(CHANNELS)
    assert all(0.0 < r <= 1.0 for r in consistency["rsp"]), consistency
    assert all(0.0 <= e < 1.0 for e in consistency["rse"]), consistency
    assert isinstance(consistency["flagged"], bool)
    assert consistency["flagged"] == bool(consistency["reasons"])
    # an input like the training fields is not out of distribution
    assert math.isfinite(ood["score"]) and ood["threshold"] > 0
    assert ood["warning"] is False and ood["score"] <= ood["threshold"], ood
    uncertainty = trust["uncertainty"]
    assert uncertainty["coverage_nominal"] == 0.9, uncertainty
    assert 0 < uncertainty["median_half_width"] <= uncertainty["p90_half_width"], uncertainty
    assert 0.0 <= uncertainty["fraction_above_bound"] <= 1.0
    assert trust["review"] == bool(trust["review_reasons"]) == consistency["flagged"]
    assert item["trust_sha256"]

    base = f"/enhancements/{item['job_id']}/items/{item['id']}"
    response = published.get(f"{base}/trust")
    assert response.status_code == 200, response.text
    assert "field_enhanced_trust.ome.tif" in response.headers["content-disposition"]
    maps = tmp_path / "trust.ome.tif"
    maps.write_bytes(response.content)
    expected = [
        *(f"consistency-error:{n}" for n in NAMES),
        *(f"consistency-z:{n}" for n in NAMES),
        *(f"uncertainty-half-width:{n}" for n in NAMES),
    ]
    assert map_channel_names(maps) == expected == trust["maps"]
    array, info = read_image(maps)
    assert array.shape == (3 * len(CHANNELS), 128, 128) and array.dtype == np.float32
    assert info.pixel_size_um == pytest.approx(PIXEL_UM)
    assert np.all(array[: len(CHANNELS)] >= 0) and np.all(np.isfinite(array))
    assert np.all(array[2 * len(CHANNELS) :] > 0)  # every pixel has an interval

    output = tmp_path / "output.ome.tif"
    output.write_bytes(published.get(f"{base}/output").content)
    with tifffile.TiffFile(output) as a, tifffile.TiffFile(maps) as b:
        out_prov, map_prov = provenance_of(a.ome_metadata), provenance_of(b.ome_metadata)
    assert map_prov == out_prov and map_prov["input_file"] == "field.tif"


@pytest.mark.parametrize("kind", ["blank", "channels swapped"])
def test_an_input_unlike_the_training_fields_asks_for_review(
    published: Published, tmp_path: Path, kind: str
) -> None:
    lq, _, _ = make_pair((128, 128), seed=72)
    image = np.full_like(lq, 100) if kind == "blank" else lq[[2, 0, 1]]
    trust = _enhance(published, f"{kind.replace(' ', '-')}.tif", image, tmp_path)["trust"]
    assert trust["ood"]["warning"] is True, trust["ood"]
    assert trust["ood"]["score"] is None or trust["ood"]["score"] > trust["ood"]["threshold"]
    assert trust["ood"]["reasons"]
    assert trust["review"] is True
    assert any(r.startswith("out of distribution") for r in trust["review_reasons"])


# ------------------------------------------------------------------ no structure from nothing
def test_blank_and_pure_noise_inputs_come_out_without_structure(published: Published) -> None:
    """The stated bounds (models/null_inputs.py): a blank field's output varies by at most
    1 % of the training HQ's range; pure noise's output at most 1.2× the noise it was given."""
    from models.model import EnhancementModel

    model = EnhancementModel.load(published.model_zip)
    fields = [make_pair((128, 128), seed=s) for s in (81, 82, 83)]
    lq = [f[0].astype(np.float32) for f in fields]
    hq = [f[1].astype(np.float32) for f in fields]
    numbers, outputs = structure_from_nothing(lambda x: model.predict(x, "CYX"), lq, hq)
    assert max(numbers["blank_output_std_of_range"]) <= BLANK_STD_MAX, numbers
    assert max(numbers["noise_gain"]) <= NOISE_GAIN_MAX, numbers
    assert numbers["within_bounds"] is True
    assert outputs["noise"].shape == (len(CHANNELS), 128, 128)


# ------------------------------------------------------------------ the command line
def test_enhance_writes_the_consistency_maps_from_the_command_line(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lq, _, _ = make_pair((128, 128), seed=73)
    source = tmp_path / "local.tif"
    source.write_bytes(_tiff(lq))
    out, maps = tmp_path / "local_enhanced.ome.tif", tmp_path / "local_trust.ome.tif"
    model = str(published.model_zip)
    code = main(["enhance", "--model", model, str(source), str(out), "--consistency", str(maps)])
    assert code == 0, capsys.readouterr()
    assert "local.tif: consistency RSP" in capsys.readouterr().out
    assert map_channel_names(maps)[: len(CHANNELS)] == [f"consistency-error:{n}" for n in NAMES]
    assert read_image(maps)[0].shape == (3 * len(CHANNELS), 128, 128)  # with the intervals

    folder = tmp_path / "maps"
    code = main(
        ["enhance", "--model", model, str(source), "--out", str(tmp_path / "batch"),
         "--consistency", str(folder)]
    )  # fmt: skip
    assert code == 0
    assert map_channel_names(folder / "local_enhanced_trust.ome.tif")[0] == "consistency-error:DAPI"

    intervals = tmp_path / "local_uncertainty.ome.tif"
    code = main(
        ["enhance", "--model", model, str(source), str(tmp_path / "u_enhanced.ome.tif"),
         "--uncertainty", str(intervals)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    half_widths = [f"uncertainty-half-width:{n}" for n in NAMES]
    assert map_channel_names(intervals)[2 * len(CHANNELS) :] == half_widths
    assert np.all(read_image(intervals)[0][2 * len(CHANNELS) :] > 0)


def test_enhance_refuses_uncertainty_for_a_model_without_a_calibration(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.model import EnhancementModel
    from models.trust import UNCERTAINTY_KEY

    older = EnhancementModel.load(published.model_zip)  # as published before calibrations
    del older.metadata[UNCERTAINTY_KEY]
    model = tmp_path / "older.zip"
    older.save(model)
    lq, _, _ = make_pair((128, 128), seed=73)
    source = tmp_path / "local.tif"
    source.write_bytes(_tiff(lq))
    refused = tmp_path / "refused.ome.tif"
    code = main(
        ["enhance", "--model", str(model), str(source), str(refused), "--uncertainty",
         str(tmp_path / "u.ome.tif")]
    )  # fmt: skip
    assert code == 2
    assert "not available for this model" in capsys.readouterr().err
    assert not refused.exists()  # refused before any work
