"""The formats an enhanced image is delivered in, by name: the one table that the service's
request check, the worker's object keys, the download's headers and the command line's
choices read. No TensorFlow, no I/O: the TensorFlow-free client imports it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutputFormat:
    suffix: str  # what the delivered file's name ends in
    media_type: str


ZARR_ZIP_SUFFIX = ".ome.zarr.zip"
DEFAULT_FORMAT = "ome-tiff"
OUTPUT_FORMATS = {
    "ome-tiff": OutputFormat(".ome.tif", "image/tiff"),
    "ome-zarr": OutputFormat(ZARR_ZIP_SUFFIX, "application/zip"),  # an NGFF 0.4 store, zipped
}


def format_of(filename: str) -> OutputFormat:
    """The format a delivered file's name says it is in (OME-TIFF unless it ends otherwise)."""
    return next(
        (f for f in OUTPUT_FORMATS.values() if filename.endswith(f.suffix)),
        OUTPUT_FORMATS[DEFAULT_FORMAT],
    )
