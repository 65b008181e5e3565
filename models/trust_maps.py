"""The trust maps of an output as a second OME-TIFF beside it: ``<stem>_trust.ome.tif``.

A file of its own, rather than extra channels in the enhanced image, so the enhanced image stays
exactly what a user opens in Fiji or feeds to the next analysis (its channels are the
microscope's), while the maps sit beside it with named channels
(``consistency-error:<channel>``, ``consistency-z:<channel>``, later
``uncertainty-half-width:<channel>``) on the same grid, with the same pixel size, objective and
provenance — written by the one writer (:func:`models.ome_tiff.write_ome_tiff`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import tifffile
from ome_types import from_xml

from .ome_tiff import write_ome_tiff
from .output_metadata import ChannelInfo, OutputMetadata
from .trust import TrustAssessment, maps_axes, maps_for_axes

SUFFIX = "_trust.ome.tif"


def trust_name(output_name: str) -> str:
    """``field_enhanced.ome.tif`` → ``field_enhanced_trust.ome.tif`` (any .tif/.tiff suffix)."""
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if output_name.lower().endswith(suffix):
            return output_name[: -len(suffix)] + SUFFIX
    return output_name + SUFFIX


def trust_metadata(metadata: OutputMetadata, map_names: list[str]) -> OutputMetadata:
    """The output's metadata, its channels renamed for the maps (no wavelengths: a map is not
    a fluorophore's light)."""
    return replace(
        metadata,
        name=f"{metadata.name}: trust maps",
        imaging=replace(metadata.imaging, channels=tuple(ChannelInfo(n) for n in map_names)),
    )


def write_trust_tiff(
    path: str | os.PathLike[str],
    assessment: TrustAssessment,
    output_axes: str,
    metadata: OutputMetadata,
) -> Path:
    """Write the maps of an output of ``output_axes`` with the output's ``metadata``."""
    write_ome_tiff(
        path,
        maps_for_axes(assessment, output_axes),
        maps_axes(output_axes),
        trust_metadata(metadata, assessment.map_names),
        compression="zlib",
    )
    return Path(path)


def map_channel_names(path: str | os.PathLike[str]) -> list[str]:
    """The channel names a trust file declares (what Fiji / a reader shows)."""
    with tifffile.TiffFile(path) as tif:
        ome = from_xml(tif.ome_metadata)
    return [c.name or "" for c in ome.images[0].pixels.channels]
