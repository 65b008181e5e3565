"""Reading an enhanced OME-TIFF back the way its users' tools would: ome-types with the OME
schema validated, and tifffile's own OME parsing and resolution tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tifffile
from ome_types import OME, from_tiff, from_xml

from models.output_metadata import PROVENANCE_NAMESPACE

PROVENANCE_KEYS = {
    "pairing",
    "version",
    "model_id",
    "model_sha256",
    "weights_sha256",
    "input_file",
    "input_sha256",
    "ensemble",
    "precision",
    "out_dtype",
    "software",
}


@dataclass
class ReadBack:
    ome: OME  # validated against the OME schema
    tifffile_ome: dict[str, Any]  # tifffile.xml2dict of the file's OME-XML
    axes: str  # the series axes tifffile derives from the OME-XML
    resolution: tuple[tuple[int, int], tuple[int, int]]
    resolution_unit: int

    @property
    def pixels(self) -> Any:
        return self.ome.images[0].pixels

    @property
    def provenance(self) -> dict[str, str]:
        (annotation,) = [
            a
            for a in self.ome.structured_annotations.map_annotations
            if a.namespace == PROVENANCE_NAMESPACE
        ]
        return {m.k: m.value for m in annotation.value.ms}

    @property
    def objective(self) -> Any:
        (instrument,) = self.ome.instruments
        (objective,) = instrument.objectives
        assert self.ome.images[0].objective_settings.id == objective.id
        return objective


def read_back(path: Path) -> ReadBack:
    ome = from_tiff(path, validate=True)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and not tif.is_imagej
        xml = tif.ome_metadata
        page = tif.pages[0]
        resolution = (page.tags["XResolution"].value, page.tags["YResolution"].value)
        unit = int(page.tags["ResolutionUnit"].value)
        axes = tif.series[0].axes
    assert from_xml(xml, validate=True) == ome
    return ReadBack(ome, tifffile.xml2dict(xml)["OME"], axes, resolution, unit)


def pixels_per_cm(pixel_size_um: float) -> float:
    return 1e4 / pixel_size_um


def resolution_value(rational: tuple[int, int]) -> float:
    return rational[0] / rational[1]
