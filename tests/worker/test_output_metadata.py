"""The service's enhancement outputs describe themselves: the worker fills the output's metadata
from the registry's rows (pairing → LQ and HQ microscopes, mapped channels) and the input file,
and the one writer stores it; read back with ome-types (validated) and tifffile."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import tifffile

from api.tables import (
    Channel,
    EnhancementItem,
    EnhancementJob,
    Microscope,
    Modality,
    ModelVersion,
    Pairing,
)
from models.image_io import read_image
from models.ome_tiff import write_ome_tiff
from tests.ome_output import PROVENANCE_KEYS, pixels_per_cm, read_back, resolution_value
from worker.imaging import enhancement_metadata


def _scope(
    name: str, modality: Modality, pixel: float, z_step: float | None, **optics
) -> Microscope:
    channels = [
        Channel(
            position=0, name="DAPI", fluorophore="Hoechst 33342", excitation_nm=350, emission_nm=461
        ),
        Channel(position=1, name="GFP", fluorophore="EGFP", excitation_nm=488, emission_nm=509),
        Channel(position=2, name="RFP", fluorophore="", excitation_nm=555, emission_nm=584),
    ]
    return Microscope(
        name=name,
        modality=modality,
        make_model=optics.pop("make_model", ""),
        pixel_size_um=pixel,
        z_step_um=z_step,
        channels=channels,
        **optics,
    )


@pytest.fixture
def rows() -> tuple[Pairing, ModelVersion, EnhancementJob]:
    lq = _scope(
        "wide-field",
        Modality.widefield,
        0.16,
        0.8,
        objective_magnification=20,
        numerical_aperture=0.8,
        immersion_index=1.0,
    )
    hq = _scope(
        "confocal",
        Modality.confocal,
        0.08,
        0.3,
        objective_magnification=63,
        numerical_aperture=1.4,
        immersion_index=1.518,
        make_model="Zeiss LSM 980",
    )
    pairing = Pairing(
        id=7,
        name="wf-to-confocal",
        lq_microscope=lq,
        hq_microscope=hq,
        channel_map=[  # the model's channel order is the map's, not the microscopes'
            {"lq_channel": "GFP", "hq_channel": "GFP"},
            {"lq_channel": "DAPI", "hq_channel": "DAPI"},
        ],
    )
    version = ModelVersion(number=3, model_sha256="m" * 64, weights_sha256="w" * 64)
    job = EnhancementJob(id=11, ensemble=True, out_dtype="float32")
    return pairing, version, job


def _write_output(rows, tmp_path: Path, source: Path, pixel_fallback: float) -> Path:
    pairing, version, job = rows
    image, info = read_image(source)
    item = EnhancementItem(
        filename=source.name,
        input_sha256="i" * 64,
        pixel_size_um=info.pixel_size_um or pixel_fallback,
    )
    meta = enhancement_metadata(
        pairing=pairing,
        version=version,
        job=job,
        item=item,
        info=info,
        precision="float32",
        model_id="0123456789abcdef",
    )
    target = tmp_path / "out.ome.tif"
    write_ome_tiff(target, image.astype(np.float32), info.axes, meta, compression=None)
    return target


def test_a_z_stack_keeps_its_z_step_channels_objective_and_provenance(rows, tmp_path: Path) -> None:
    source = tmp_path / "stack.ome.tif"
    tifffile.imwrite(
        source,
        np.random.default_rng(0).integers(0, 4000, (5, 2, 32, 40), dtype=np.uint16),
        metadata={
            "axes": "ZCYX",
            "PhysicalSizeX": 0.2,
            "PhysicalSizeY": 0.2,
            "PhysicalSizeZ": 0.45,
            "AcquisitionDate": "2024-05-06T07:08:09",
        },
    )
    back = read_back(_write_output(rows, tmp_path, source, 0.16))

    pixels = back.pixels
    assert back.axes == "ZCYX" and (pixels.size_z, pixels.size_c) == (5, 2)
    assert (pixels.physical_size_x, pixels.physical_size_y, pixels.physical_size_z) == (
        0.2,
        0.2,
        0.45,
    )
    assert {pixels.physical_size_x_unit.value, pixels.physical_size_z_unit.value} == {"µm"}
    assert [c.name for c in pixels.channels] == ["GFP", "DAPI"]
    assert [c.fluor for c in pixels.channels] == ["EGFP", "Hoechst 33342"]
    assert [(c.excitation_wavelength, c.emission_wavelength) for c in pixels.channels] == [
        (488, 509),
        (350, 461),
    ]
    assert {c.emission_wavelength_unit.value for c in pixels.channels} == {"nm"}
    assert back.ome.images[0].acquisition_date == datetime(2024, 5, 6, 7, 8, 9)

    objective = back.objective  # the reference (HQ) microscope's, whose look was learned
    assert (objective.lens_na, objective.nominal_magnification) == (1.4, 63)
    assert objective.immersion.value == "Oil" and objective.model == "Zeiss LSM 980"
    assert back.ome.images[0].objective_settings.refractive_index == 1.518

    provenance = back.provenance
    assert set(provenance) == PROVENANCE_KEYS
    assert provenance["pairing"] == "7 wf-to-confocal" and provenance["version"] == "3"
    assert provenance["weights_sha256"] == "w" * 64 and provenance["input_sha256"] == "i" * 64
    assert provenance["ensemble"] == "True" and provenance["precision"] == "float32"
    assert provenance["software"].startswith("pairscope ")

    assert back.resolution_unit == 3  # centimetre, as ImageJ / Fiji read it
    for rational in back.resolution:
        assert resolution_value(rational) == pytest.approx(pixels_per_cm(0.2))
    pixels_dict = back.tifffile_ome["Image"]["Pixels"]
    assert pixels_dict["PhysicalSizeZ"] == 0.45 and pixels_dict["Channel"][0]["Name"] == "GFP"


def test_an_input_without_sizes_takes_the_lq_microscopes(rows, tmp_path: Path) -> None:
    source = tmp_path / "plain.tif"
    tifffile.imwrite(source, np.ones((3, 2, 32, 32), np.uint16), metadata={"axes": "ZCYX"})
    back = read_back(_write_output(rows, tmp_path, source, 0.16))
    pixels = back.pixels
    assert (pixels.physical_size_x, pixels.physical_size_z) == (0.16, 0.8)
    assert back.ome.images[0].acquisition_date is None
    assert resolution_value(back.resolution[0]) == pytest.approx(pixels_per_cm(0.16))


def test_a_plain_tiffs_datetime_tag_dates_the_output(rows, tmp_path: Path) -> None:
    source = tmp_path / "dated.tif"
    when = datetime(2023, 9, 8, 17, 30, 0)
    tifffile.imwrite(source, np.ones((2, 32, 32), np.uint16), metadata=None, datetime=when)
    back = read_back(_write_output(rows, tmp_path, source, 0.16))
    assert back.ome.images[0].acquisition_date == when
    assert back.axes == "ZYX" and back.pixels.physical_size_z == 0.8  # pages read as Z
