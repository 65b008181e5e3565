"""Writing enhanced images as OME-TIFF: the one writer of the command line and the worker.

The OME-XML comes from :mod:`models.output_metadata` (ome-types); tifffile writes it as the
first page's description, with no metadata of its own, and the pixel size also as TIFF
resolution in pixels per centimetre (what ImageJ / Fiji read). The write is atomic: nothing is
left at the output path on failure.
"""

from __future__ import annotations

import os

import numpy as np
import tifffile

from .files import atomic_write
from .output_metadata import OutputMetadata, ome_xml

UM_PER_CM = 1e4


def write_ome_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    axes: str,
    metadata: OutputMetadata,
    compression: str | None = "zlib",
) -> str:
    """Write ``array`` (axes YX, CYX, ZYX or ZCYX) with ``metadata`` as an OME-TIFF at
    ``path``; returns the path. ``compression``: zlib by default (small files); None writes
    faster, which a service returning large float images prefers."""
    path = os.fspath(path)
    arr = np.ascontiguousarray(array)
    if len(axes) != arr.ndim or axes not in ("YX", "CYX", "ZYX", "ZCYX"):
        raise ValueError(f"axes {axes!r} do not fit an image of shape {arr.shape}")
    # TIFF strings are ASCII: µm and any other non-ASCII character become XML references.
    description = ome_xml(metadata, axes, arr.shape, arr.dtype).encode("ascii", "xmlcharrefreplace")
    pixel = metadata.imaging.pixel_size_um
    resolution = {}
    if pixel:
        resolution = {
            "resolution": (UM_PER_CM / pixel, UM_PER_CM / pixel),
            "resolutionunit": tifffile.RESUNIT.CENTIMETER,
        }
    with atomic_write(path, suffix=".ome.tif") as tmp:
        tifffile.imwrite(
            tmp,
            arr,
            ome=False,
            metadata=None,
            description=description,
            photometric="minisblack",
            compression=compression,
            bigtiff=arr.nbytes > 2**31,
            **resolution,
        )
    return path
