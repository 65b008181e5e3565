"""Reading and writing TIFF for the science command line (tifffile; no TensorFlow).

Arrays are returned in one of four canonical layouts: ``YX``, ``CYX``, ``ZYX``, ``ZCYX``
(a time axis is treated like Z: plane by plane). Writes are atomic: a temporary file in the
target's directory is renamed into place, so nothing is left at the output path on failure.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np


class ScienceInputError(ValueError):
    """Bad input to the science CLI; the message names the file and the problem."""


TIFF_SUFFIXES = (".tif", ".tiff")


def _canonical(arr: np.ndarray, axes: str, path: str) -> tuple[np.ndarray, str]:
    axes = axes.upper()
    # samples (RGB) behave as channels
    if "S" in axes and "C" not in axes:
        axes = axes.replace("S", "C")
    # drop singleton axes that are neither spatial nor channel
    keep = [i for i, a in enumerate(axes) if not (arr.shape[i] == 1 and a not in "YXC")]
    if len(keep) != arr.ndim:
        arr = arr.reshape([arr.shape[i] for i in keep])
        axes = "".join(axes[i] for i in keep)
    if len(axes) != arr.ndim or not axes.endswith("YX"):
        raise ScienceInputError(f"{path}: cannot interpret axes {axes!r} of shape {arr.shape}")
    lead = axes[:-2]
    # map unknown leading axes (Q, I, T, ...) to Z or C
    if len(lead) == 0:
        return arr, "YX"
    if len(lead) == 1:
        a = lead
        if a == "C":
            return arr, "CYX"
        if a in "ZT":
            return arr, "ZYX"
        return arr, "CYX"  # unknown single leading axis: channels
    if len(lead) == 2:
        if "C" in lead:
            ci = lead.index("C")
            if ci == 0:
                arr = np.moveaxis(arr, 0, 1)
            return arr, "ZCYX"
        return arr, "ZCYX"
    raise ScienceInputError(f"{path}: too many dimensions ({axes}, shape {arr.shape}); "
                            "expected (Z)(C)YX")


def read_tiff(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read the first image series of a TIFF; returns ``(array, axes)`` in a canonical layout.

    Raises :class:`ScienceInputError` naming the file when it is missing, not a TIFF, or of an
    unusable shape or dtype.
    """
    import tifffile

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ScienceInputError(f"{path}: no such file")
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise ScienceInputError(f"{path}: the TIFF holds no image")
            series = tif.series[0]
            arr = series.asarray()
            axes = series.axes
    except ScienceInputError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError) as e:
        raise ScienceInputError(f"{path}: not a readable TIFF file ({e})") from e
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "uif":
        raise ScienceInputError(f"{path}: unsupported pixel type {arr.dtype}")
    if arr.ndim < 2:
        raise ScienceInputError(f"{path}: not an image (shape {arr.shape})")
    return _canonical(arr, axes, path)


def write_ome_tiff(path: str | os.PathLike, array: np.ndarray, axes: str,
                   name: str | None = None, annotations: dict[str, Any] | None = None,
                   description: str | None = None,
                   physical_size_um: float | None = None, z_step_um: float | None = None,
                   compression: str | None = "zlib") -> str:
    """Write ``array`` as an OME-TIFF atomically (temporary file + rename).

    ``physical_size_um`` / ``z_step_um`` become the OME physical pixel sizes. ``compression``:
    zlib by default (small files); None writes faster, which a service returning large float
    images prefers.
    ``annotations`` are stored as an OME ``MapAnnotation`` (namespace ``pairscope``) and, with
    ``description``, as JSON in the OME ``Description``.
    """
    import tifffile

    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ScienceInputError(f"{path}: the output folder {parent} does not exist")
    meta: dict[str, Any] = {"axes": axes}
    if physical_size_um:
        meta.update(PhysicalSizeX=physical_size_um, PhysicalSizeXUnit="µm",
                    PhysicalSizeY=physical_size_um, PhysicalSizeYUnit="µm")
    if z_step_um and "Z" in axes:
        meta.update(PhysicalSizeZ=z_step_um, PhysicalSizeZUnit="µm")
    if name:
        meta["Name"] = name
    if annotations:
        meta["MapAnnotation"] = {"Namespace": "pairscope",
                                 **{str(k): str(v) for k, v in annotations.items()}}
    desc = description if description is not None else (
        json.dumps(annotations, sort_keys=True, default=str) if annotations else None)
    if desc:
        meta["Description"] = desc
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=".ome.tif")
    os.close(fd)
    try:
        arr = np.asarray(array)
        tifffile.imwrite(tmp, arr, ome=True, metadata=meta, photometric="minisblack",
                         compression=compression, bigtiff=arr.nbytes > 2**31)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
