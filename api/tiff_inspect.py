"""Checks an uploaded TIFF before anything is stored, and reads it in canonical axes.

Accepts TIFF, BigTIFF, OME-TIFF and ImageJ TIFF whose axes reduce to (C)YX or Z(C)YX, in uint8,
uint16 or float32. The declared size is checked before any pixel is decoded (decompression
bombs), then every strip or tile is decoded one at a time, so a truncated or corrupt file is
caught with memory bounded by one segment (uncompressed data need only be present). The
physical pixel size is read from OME, ImageJ or TIFF resolution metadata when the file has it.
"""

from __future__ import annotations

import math
import os
import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass

import numpy as np
import tifffile

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


class InvalidImage(ValueError):
    """The upload is not an image Pairscope can use; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    axes: str  # canonical: "CYX" or "ZCYX"
    shape: tuple[int, ...]
    dtype: str
    file_format: str
    pixel_size_um: float | None
    pixel_size_source: str | None
    z_step_um: float | None


def _canonical_plan(
    axes: str, shape: tuple[int, ...], channels: int | None
) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """How to squeeze and transpose the file's axes into Z?CYX: (axes, keep, order)."""
    axes = axes.upper()
    if "S" in axes and "C" not in axes:
        axes = axes.replace("S", "C")
    keep = tuple(i for i, a in enumerate(axes) if shape[i] != 1 or a in "YXC")
    kept = "".join(axes[i] for i in keep)
    sizes = {a: shape[i] for a, i in zip(kept, keep, strict=True)}
    if "Y" not in kept or "X" not in kept:
        raise InvalidImage(f"the image has no Y and X axes (axes {axes}, shape {shape})")
    renamed = []
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
    kept = "".join(renamed)
    if len(set(kept)) != len(kept):
        raise InvalidImage(f"cannot interpret axes {axes} (shape {shape})")
    target = "ZCYX" if "Z" in kept else "CYX"
    order = tuple(kept.index(a) for a in target if a in kept)
    return target, keep, order


def _apply_plan(
    data: np.ndarray, target: str, keep: tuple[int, ...], order: tuple[int, ...]
) -> np.ndarray:
    """Squeeze, transpose, and add a channel axis of length 1 where the file had none."""
    data = data.reshape([data.shape[i] for i in keep]).transpose(order)
    if data.ndim < len(target):
        data = np.expand_dims(data, target.index("C"))
    return data


def _to_um(value: float, unit: str | None) -> float | None:
    factor = UM_PER_UNIT.get((unit or "µm").strip().lower().replace("\\u00b5", "µ"))
    return value * factor if factor and value > 0 and math.isfinite(value) else None


def _ome_sizes(tif: tifffile.TiffFile) -> tuple[float | None, float | None]:
    root = ET.fromstring(tif.ome_metadata or "<x/>")
    for element in root.iter():
        if element.tag.endswith("Pixels"):
            x = element.get("PhysicalSizeX")
            z = element.get("PhysicalSizeZ")
            px = _to_um(float(x), element.get("PhysicalSizeXUnit")) if x else None
            pz = _to_um(float(z), element.get("PhysicalSizeZUnit")) if z else None
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
        pz = _to_um(float(spacing), unit) if spacing and unit_um else None
        if px:
            return px, "imagej", pz
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    unit_um = {2: 25400.0, 3: 10000.0}.get(unit)
    px = _resolution_size(page, unit_um)
    return (px, "tiff-resolution", None) if px else (None, None, None)


def _format(tif: tifffile.TiffFile) -> str:
    if tif.is_ome:
        return "ome-tiff"
    if tif.is_imagej:
        return "imagej-tiff"
    return "bigtiff" if tif.is_bigtiff else "tiff"


def _check_page(page: tifffile.TiffPage, file_size: int) -> None:
    """Uncompressed data only need to be present; compressed data must decode, one strip or
    tile at a time."""
    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=True)]
    if not ends or max(ends) > file_size or 0 in page.databytecounts:
        raise InvalidImage("the file is truncated: image data are missing")
    if page.compression == 1:
        return
    for segment, _, _ in page.segments(maxworkers=1):
        if segment is None:
            raise InvalidImage("the file is truncated: image data are missing")


def inspect_tiff(
    path: str | os.PathLike[str], channels: int | None = None, max_pixels: int = MAX_PIXELS
) -> ImageInfo:
    """Validate the file completely and describe it; raise InvalidImage naming the problem."""
    size = os.path.getsize(path)
    if size == 0:
        raise InvalidImage("the file is empty")
    try:
        with tifffile.TiffFile(path) as tif:
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
            axes, keep, order = _canonical_plan(series.axes, shape, channels)
            for page in series.pages:  # decode plane by plane: catches truncation and corruption
                if page is None:
                    raise InvalidImage("the file is truncated: image pages are missing")
                _check_page(page, size)
            pixel_size, source, z_step = _pixel_size(tif)
            file_format = _format(tif)
    except InvalidImage:
        raise
    except tifffile.TiffFileError as exc:
        raise InvalidImage(f"not a TIFF file or a damaged one ({exc})") from exc
    except (
        ValueError,
        OSError,
        EOFError,
        KeyError,
        IndexError,
        RuntimeError,
        MemoryError,
        struct.error,
        zlib.error,
    ) as exc:
        raise InvalidImage(
            f"the TIFF is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    canonical = _apply_plan(np.empty(shape, dtype=bool), axes, keep, order).shape
    return ImageInfo(axes, tuple(canonical), dtype, file_format, pixel_size, source, z_step)


def read_canonical(
    path: str | os.PathLike[str], channels: int | None = None
) -> tuple[np.ndarray, str]:
    """The first series as an array in canonical axes (CYX or ZCYX), channel axis always present."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, keep, order = _canonical_plan(series.axes, tuple(series.shape), channels)
        data = series.asarray()
    return _apply_plan(data, axes, keep, order), axes
