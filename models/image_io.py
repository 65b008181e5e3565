"""The one TIFF reader: the service's upload check, the worker and the command line all use it,
so a file is accepted, refused or laid out the same way wherever it is read (numpy + tifffile).

Accepts TIFF, BigTIFF, OME-TIFF and ImageJ TIFF whose axes reduce to (C)YX or Z(C)YX, in uint8,
uint16 or float32, at least MIN_SIZE pixels high and wide. Arrays come back in canonical axes,
CYX or ZCYX, with a channel axis always present. Interleaved samples (RGB) are channels; a file
with both channels and samples per pixel, or with time points, is refused. The declared size is
checked before any pixel is decoded (decompression bombs); inspection then decodes every strip
or tile one at a time, so a truncated or corrupt file is caught with memory bounded by one
segment. The physical pixel size comes from OME, ImageJ or TIFF resolution metadata, the
acquisition date from OME or the TIFF DateTime tag.

Whatever tifffile or numpy raise on hostile bytes becomes InvalidImage, whose message names the
problem in words (callers prefix the file name): the service answers 422, never 500.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import tifffile

MIN_SIZE = 16  # pixels per side: the smallest image registration can align (and so train on)
MAX_PIXELS = 2**31
DTYPES = ("uint8", "uint16", "float32")
UM_PER_UNIT = {
    "m": 1e6,
    "mm": 1e3,
    "cm": 1e4,
    "µm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
}
NOT_A_TIFF = "not a readable TIFF: not a TIFF file, or a damaged one"
CORRUPT = "the TIFF is truncated or corrupt: its image data cannot be decoded"
TRUNCATED = "the file is truncated: image data are missing"


class InvalidImage(ValueError):
    """The file is not an image Pairscope can use; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    axes: str  # canonical: "CYX" or "ZCYX"
    shape: tuple[int, ...]
    dtype: str
    file_format: str
    pixel_size_um: float | None
    pixel_size_source: str | None
    z_step_um: float | None
    acquisition_date: datetime | None = None


@dataclass(frozen=True)
class _Plan:
    """How the file's axes become canonical ones: squeeze to ``keep``, transpose by ``order``,
    then add a channel axis where the file had none."""

    axes: str
    keep: tuple[int, ...]
    order: tuple[int, ...]

    def apply(self, data: np.ndarray) -> np.ndarray:
        data = data.reshape([data.shape[i] for i in self.keep]).transpose(self.order)
        if data.ndim < len(self.axes):
            data = np.expand_dims(data, self.axes.index("C"))
        return data


def _samples_as_channels(axes: str, shape: tuple[int, ...]) -> str:
    """Interleaved samples (S, e.g. RGB) become the channel axis; a file with channels *and*
    several samples per pixel has no single reading, so it is refused."""
    if "S" not in axes:
        return axes
    samples = shape[axes.index("S")]
    channels = shape[axes.index("C")] if "C" in axes else 1
    if samples > 1 and channels > 1:
        raise InvalidImage(
            f"the image has {channels} channels of {samples} interleaved samples per pixel "
            "(an RGB-style layout); save one value per pixel and channel (planar channels)"
        )
    if samples > 1:
        axes = axes.replace("C", "-")  # the singleton C goes; the samples are the channels
        return axes.replace("S", "C")
    return axes


def _canonical_plan(axes: str, shape: tuple[int, ...], channels: int | None) -> _Plan:
    """Squeeze singletons, name the remaining axes Z, C, Y, X, and refuse what has no reading.

    An unnamed axis (tifffile's Q, I, ...) is the channel axis when its length is the expected
    channel count, else Z; time points are refused."""
    axes = _samples_as_channels(axes.upper(), shape)
    keep = tuple(i for i, a in enumerate(axes) if shape[i] != 1 or a in "YXC")
    kept = "".join(axes[i] for i in keep)
    sizes = {a: shape[i] for a, i in zip(kept, keep, strict=True)}
    if "Y" not in kept or "X" not in kept:
        raise InvalidImage(f"the image has no Y and X axes (axes {axes}, shape {shape})")
    renamed: list[str] = []
    for a in kept:
        if a in "YXZC":
            renamed.append(a)
        elif a == "T":
            raise InvalidImage(
                f"time series are not supported ({sizes['T']} time points); "
                "upload one time point per file"
            )
        elif "C" not in kept and "C" not in renamed and channels and sizes[a] == channels:
            renamed.append("C")
        elif "Z" not in kept and "Z" not in renamed:
            renamed.append("Z")
        else:
            raise InvalidImage(
                f"cannot interpret axes {axes} (shape {shape}); expected (C)YX or Z(C)YX"
            )
    named = "".join(renamed)
    if len(set(named)) != len(named):
        raise InvalidImage(f"cannot interpret axes {axes} (shape {shape})")
    target = "ZCYX" if "Z" in named else "CYX"
    return _Plan(target, keep, tuple(named.index(a) for a in target if a in named))


def _check_size(height: int, width: int) -> None:
    if height < MIN_SIZE or width < MIN_SIZE:
        raise InvalidImage(
            f"the image is {height}x{width} pixels (height x width); at least "
            f"{MIN_SIZE}x{MIN_SIZE} are needed"
        )


def _to_um(value: float, unit: str | None) -> float | None:
    factor = UM_PER_UNIT.get((unit or "µm").strip().lower().replace("\\u00b5", "µ"))
    return value * factor if factor and value > 0 and math.isfinite(value) else None


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidImage(f"the {what} in the file's metadata is not a number: {text!r}") from None


def _ome_sizes(tif: tifffile.TiffFile) -> tuple[float | None, float | None]:
    try:
        root = ET.fromstring(tif.ome_metadata or "<x/>")
    except ET.ParseError:
        raise InvalidImage("the file's OME metadata is not well-formed XML") from None
    for element in root.iter():
        if element.tag.endswith("Pixels"):
            x = element.get("PhysicalSizeX")
            z = element.get("PhysicalSizeZ")
            px = (
                _to_um(_number(x, "OME PhysicalSizeX"), element.get("PhysicalSizeXUnit"))
                if x
                else None
            )
            pz = (
                _to_um(_number(z, "OME PhysicalSizeZ"), element.get("PhysicalSizeZUnit"))
                if z
                else None
            )
            return px, pz
    return None, None


def _resolution_size(page: tifffile.TiffPage, unit_um: float | None) -> float | None:
    tag = page.tags.get("XResolution")
    if tag is None or unit_um is None:
        return None
    numerator, denominator = tag.value
    if not numerator or not denominator:
        return None
    return unit_um * denominator / numerator


def _pixel_size(tif: tifffile.TiffFile) -> tuple[float | None, str | None, float | None]:
    if tif.is_ome:
        px, pz = _ome_sizes(tif)
        if px:
            return px, "ome", pz
    page = tif.pages.first
    if tif.is_imagej:
        meta = tif.imagej_metadata or {}
        unit = meta.get("unit")
        unit_um = _to_um(1.0, unit) if unit else None
        px = _resolution_size(page, unit_um)
        spacing = meta.get("spacing")
        pz = _to_um(_number(str(spacing), "ImageJ spacing"), unit) if spacing and unit_um else None
        if px:
            return px, "imagej", pz
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    unit_um = {2: 25400.0, 3: 10000.0}.get(unit)
    px = _resolution_size(page, unit_um)
    return (px, "tiff-resolution", None) if px else (None, None, None)


def _acquisition_date(tif: tifffile.TiffFile) -> datetime | None:
    """When the image was acquired, if the file says: OME's AcquisitionDate, else the TIFF
    DateTime tag. A date that does not parse is no date (it labels outputs, nothing more)."""
    if tif.is_ome:
        try:
            root = ET.fromstring(tif.ome_metadata or "<x/>")
        except ET.ParseError:
            root = ET.Element("x")
        for element in root.iter():
            if element.tag.endswith("AcquisitionDate") and element.text:
                try:
                    return datetime.fromisoformat(element.text.strip())
                except ValueError:
                    break
    tag = tif.pages.first.tags.get("DateTime")
    try:
        return datetime.strptime(str(tag.value).strip(), "%Y:%m:%d %H:%M:%S") if tag else None
    except ValueError:
        return None


def _format(tif: tifffile.TiffFile) -> str:
    if tif.is_ome:
        return "ome-tiff"
    if tif.is_imagej:
        return "imagej-tiff"
    return "bigtiff" if tif.is_bigtiff else "tiff"


def _check_present(page: tifffile.TiffPage, file_size: int) -> None:
    """Every strip or tile the page declares lies inside the file."""
    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=True)]
    if not ends or max(ends) > file_size or 0 in page.databytecounts:
        raise InvalidImage(TRUNCATED)


def _check_decodes(page: tifffile.TiffPage) -> None:
    """Compressed data must decode, one strip or tile at a time (uncompressed need only be
    present)."""
    if page.compression == 1:
        return
    for segment, _, _ in page.segments(maxworkers=1):
        if segment is None:
            raise InvalidImage(TRUNCATED)


@contextmanager
def _hostile_bytes_are_invalid() -> Iterator[None]:
    """A parser fed arbitrary bytes can raise almost anything (ZeroDivisionError for a zero
    width, IndexError, struct.error, zlib.error...): each is a refusal of the file, said in
    words rather than with the parser's internals."""
    try:
        yield
    except InvalidImage:
        raise
    except tifffile.TiffFileError as exc:
        raise InvalidImage(NOT_A_TIFF) from exc
    except MemoryError as exc:
        raise InvalidImage("the image is too large to decode in memory") from exc
    except Exception as exc:
        raise InvalidImage(CORRUPT) from exc


def _describe(
    tif: tifffile.TiffFile, file_size: int, channels: int | None, max_pixels: int
) -> tuple[tifffile.TiffPageSeries, _Plan, ImageInfo]:
    """Everything the header tells, checked before any pixel is decoded."""
    first = tif.pages.first
    if 0 in (first.imagelength, first.imagewidth):
        raise InvalidImage(
            f"the image has a zero-sized axis: {first.imagelength} pixels high and "
            f"{first.imagewidth} wide"
        )
    if not tif.series:
        raise InvalidImage("the TIFF holds no image")
    series = tif.series[0]
    shape = tuple(int(s) for s in series.shape)
    if any(s == 0 for s in shape):
        raise InvalidImage(f"the image has a zero-sized axis (shape {shape})")
    pixels = math.prod(shape)
    if pixels > max_pixels:
        raise InvalidImage(
            f"the image declares {pixels} pixels, more than the limit of {max_pixels}"
        )
    dtype = np.dtype(series.dtype).name
    if dtype not in DTYPES:
        raise InvalidImage(f"pixel type {dtype} is not supported; use {', '.join(DTYPES)}")
    plan = _canonical_plan(series.axes, shape, channels)
    canonical = plan.apply(np.empty(shape, dtype=bool)).shape
    _check_size(*canonical[-2:])
    try:
        pages = list(series.pages)
    except IndexError:  # the series declares more pages than the file holds
        pages = [None]
    for page in pages:
        if page is None:
            raise InvalidImage("the file is truncated: image pages are missing")
        _check_present(page, file_size)
    pixel_size, source, z_step = _pixel_size(tif)
    info = ImageInfo(
        plan.axes,
        tuple(canonical),
        dtype,
        _format(tif),
        pixel_size,
        source,
        z_step,
        _acquisition_date(tif),
    )
    return series, plan, info


def _file_size(path: str | os.PathLike[str]) -> int:
    if not os.path.isfile(path):
        raise InvalidImage("no such file")
    size = os.path.getsize(path)
    if size == 0:
        raise InvalidImage("the file is empty")
    return size


def inspect_tiff(
    path: str | os.PathLike[str], channels: int | None = None, max_pixels: int = MAX_PIXELS
) -> ImageInfo:
    """Validate the file completely, decoding segment by segment (memory stays bounded), and
    describe it; raise InvalidImage naming the problem. ``channels``: the expected channel
    count, which an unnamed axis of that length is taken to be."""
    size = _file_size(path)
    with _hostile_bytes_are_invalid(), tifffile.TiffFile(path) as tif:
        series, _, info = _describe(tif, size, channels, max_pixels)
        for page in series.pages:
            _check_decodes(page)
    return info


def read_image(
    path: str | os.PathLike[str], channels: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """The first series in canonical axes (CYX or ZCYX), after the same checks as
    :func:`inspect_tiff`; a file that cannot be decoded raises InvalidImage too."""
    size = _file_size(path)
    with _hostile_bytes_are_invalid(), tifffile.TiffFile(path) as tif:
        series, plan, info = _describe(tif, size, channels, MAX_PIXELS)
        data = plan.apply(series.asarray())
    return data, info
