"""What an enhanced image says about itself, and its OME-XML (ome-types, never hand-written).

The service and the local command describe their outputs with the same dataclasses, so a file
from either carries the same elements and the same provenance keys:

- :class:`Imaging`: channels (name, fluorophore, wavelengths), pixel size and Z step, the
  reference (HQ) microscope's objective, and the pairing. A trained model saves it
  (``metadata["imaging"]``), so the local command can label its outputs like the service does.
- :class:`Provenance`: one fixed set of keys (pairing, version, model, weights and input
  hashes, software, ensemble, precision, output type), written as an OME ``MapAnnotation``.
- :class:`OutputMetadata`: both, with the image name and the input's acquisition date.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from ome_types import OME, from_xml, to_xml
from ome_types.model import (
    AnnotationRef,
    Channel,
    Image,
    Instrument,
    InstrumentRef,
    Map,
    MapAnnotation,
    Objective,
    Objective_Immersion,
    ObjectiveSettings,
    Pixels,
    Pixels_DimensionOrder,
    PixelType,
    StructuredAnnotations,
    TiffData,
    UnitsLength,
)

PROVENANCE_NAMESPACE = "pairscope.provenance"
PIXEL_TYPES = {"uint8": PixelType.UINT8, "uint16": PixelType.UINT16, "float32": PixelType.FLOAT}
# Refractive index of the immersion medium → OME's closed list (silicone oil has no entry).
IMMERSIONS = (
    (1.0, 1.01, Objective_Immersion.AIR),
    (1.32, 1.34, Objective_Immersion.WATER),
    (1.44, 1.48, Objective_Immersion.GLYCEROL),
    (1.50, 1.53, Objective_Immersion.OIL),
)


def software_version() -> str:
    """``pairscope <version>`` of the installed package (a source tree says so)."""
    try:
        return f"pairscope {version('pairscope')}"
    except PackageNotFoundError:
        return "pairscope 0.0.0+source"


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    fluor: str | None = None
    excitation_nm: float | None = None
    emission_nm: float | None = None


@dataclass(frozen=True)
class ObjectiveInfo:
    """The reference (HQ) microscope's objective: whose look the model learned."""

    numerical_aperture: float | None = None
    immersion_index: float | None = None
    magnification: float | None = None
    microscope: str | None = None  # make and model, as the registry has it

    @property
    def immersion(self) -> Objective_Immersion | None:
        if self.immersion_index is None:
            return None
        for low, high, kind in IMMERSIONS:
            if low <= self.immersion_index <= high:
                return kind
        return Objective_Immersion.OTHER


@dataclass(frozen=True)
class Imaging:
    """How the images a model learned on were acquired; saved with the model."""

    channels: tuple[ChannelInfo, ...] = ()
    pixel_size_um: float | None = None
    z_step_um: float | None = None
    objective: ObjectiveInfo | None = None
    pairing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Imaging:
        """A saved description; a model saved before this existed describes nothing."""
        data = data or {}
        objective = data.get("objective")
        return cls(
            channels=tuple(ChannelInfo(**c) for c in data.get("channels") or ()),
            pixel_size_um=data.get("pixel_size_um"),
            z_step_um=data.get("z_step_um"),
            objective=ObjectiveInfo(**objective) if objective else None,
            pairing=data.get("pairing"),
        )


@dataclass(frozen=True)
class Provenance:
    """The same keys on every output; an empty value means "not known here" (a locally
    trained model has no pairing or version number)."""

    pairing: str
    version: str
    model_id: str
    model_sha256: str
    weights_sha256: str
    input_file: str
    input_sha256: str
    ensemble: bool
    precision: str
    out_dtype: str
    software: str = field(default_factory=software_version)

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class OutputMetadata:
    name: str
    imaging: Imaging
    provenance: Provenance
    acquisition_date: datetime | None = None


def _channel(index: int, info: ChannelInfo | None) -> Channel:
    if info is None:
        return Channel(id=f"Channel:0:{index}", samples_per_pixel=1)
    return Channel(
        id=f"Channel:0:{index}",
        name=info.name,
        fluor=info.fluor or None,
        excitation_wavelength=info.excitation_nm,
        excitation_wavelength_unit=UnitsLength.NANOMETER,
        emission_wavelength=info.emission_nm,
        emission_wavelength_unit=UnitsLength.NANOMETER,
        samples_per_pixel=1,
    )


def _instrument(objective: ObjectiveInfo) -> Instrument:
    return Instrument(
        id="Instrument:0",
        objectives=[
            Objective(
                id="Objective:0:0",
                model=objective.microscope or None,
                lens_na=objective.numerical_aperture,
                immersion=objective.immersion,
                nominal_magnification=objective.magnification,
            )
        ],
    )


def ome_xml(meta: OutputMetadata, axes: str, shape: tuple[int, ...], dtype: np.dtype) -> str:
    """The OME-XML of one image of ``shape`` with ``axes`` (YX, CYX, ZYX or ZCYX), stored as
    consecutive YX pages (C fastest): validated against the OME schema by its readers."""
    sizes = dict(zip(axes, shape, strict=True))
    size_c, size_z = sizes.get("C", 1), sizes.get("Z", 1)
    imaging = meta.imaging
    channels = list(imaging.channels)
    if len(channels) != size_c:  # a description that does not fit names nothing
        channels = []
    step = imaging.z_step_um if "Z" in axes else None
    pixels = Pixels(
        id="Pixels:0",
        dimension_order=Pixels_DimensionOrder.XYCZT,
        type=PIXEL_TYPES[np.dtype(dtype).name],
        size_x=sizes["X"],
        size_y=sizes["Y"],
        size_c=size_c,
        size_z=size_z,
        size_t=1,
        physical_size_x=imaging.pixel_size_um,
        physical_size_x_unit=UnitsLength.MICROMETER,
        physical_size_y=imaging.pixel_size_um,
        physical_size_y_unit=UnitsLength.MICROMETER,
        physical_size_z=step,
        physical_size_z_unit=UnitsLength.MICROMETER,
        channels=[_channel(i, channels[i] if channels else None) for i in range(size_c)],
        tiff_data_blocks=[TiffData(ifd=0, plane_count=size_c * size_z)],
    )
    annotation = MapAnnotation(
        id="Annotation:0",
        namespace=PROVENANCE_NAMESPACE,
        value=Map(ms=[Map.M(k=k, value=v) for k, v in meta.provenance.to_dict().items()]),
    )
    image = Image(
        id="Image:0",
        name=meta.name,
        acquisition_date=meta.acquisition_date,
        pixels=pixels,
        annotation_refs=[AnnotationRef(id=annotation.id)],
    )
    ome = OME(
        creator=meta.provenance.software,
        images=[image],
        structured_annotations=StructuredAnnotations(map_annotations=[annotation]),
    )
    objective = imaging.objective
    if objective is not None:
        ome.instruments = [_instrument(objective)]
        image.instrument_ref = InstrumentRef(id="Instrument:0")
        image.objective_settings = ObjectiveSettings(
            id="Objective:0:0", refractive_index=objective.immersion_index
        )
    return to_xml(ome)


def provenance_of(xml: str) -> dict[str, str]:
    """The provenance block of an output's OME-XML (what a reader of the file would see)."""
    ome = from_xml(xml)
    for annotation in ome.structured_annotations.map_annotations:
        if annotation.namespace == PROVENANCE_NAMESPACE:
            return {m.k: m.value for m in annotation.value.ms if m.k is not None}
    return {}


def imaging_of_tiff(
    path: str | os.PathLike[str], pixel_size_um: float | None, z_step_um: float | None
) -> Imaging:
    """What an OME-TIFF says about its channels and objective (nothing for other TIFFs, or OME
    that does not parse), with the pixel sizes the reader found."""
    import tifffile

    channels: tuple[ChannelInfo, ...] = ()
    objective = None
    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata if tif.is_ome else None
        ome = from_xml(xml) if xml else None
    except Exception:  # labels are a courtesy: a file the reader accepted still trains
        ome = None
    if ome is not None and ome.images:
        image = ome.images[0]
        channels = tuple(
            ChannelInfo(
                c.name or f"channel {i}",
                c.fluor,
                _nm(c.excitation_wavelength, c.excitation_wavelength_unit),
                _nm(c.emission_wavelength, c.emission_wavelength_unit),
            )
            for i, c in enumerate(image.pixels.channels)
        )
        objective = _objective_of(ome, image)
    return Imaging(channels, pixel_size_um, z_step_um, objective)


def _nm(value: float | None, unit: UnitsLength | None) -> float | None:
    return value if value is not None and unit in (None, UnitsLength.NANOMETER) else None


def _objective_of(ome: OME, image: Image) -> ObjectiveInfo | None:
    settings = image.objective_settings
    if settings is None:
        return None
    for instrument in ome.instruments:
        for objective in instrument.objectives:
            if objective.id == settings.id:
                return ObjectiveInfo(
                    objective.lens_na,
                    settings.refractive_index,
                    objective.nominal_magnification,
                    objective.model,
                )
    return None
