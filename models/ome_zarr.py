"""OME-Zarr (NGFF 0.4) in and out, for images larger than memory (ngff-zarr).

Reading (:func:`open_ome_zarr`) gives the first multiscale image's full-resolution level as a
lazy dask array in the canonical axes of :mod:`models.image_io` (CYX or ZCYX), with an
:class:`~models.image_io.ImageInfo`; a store that is not OME-Zarr, or whose axes, pixel type or
size Pairscope cannot take, raises :class:`~models.image_io.InvalidImage` saying why.

Writing (:func:`write_ome_zarr`) stores a (lazy) CYX or ZCYX array as NGFF 0.4 (Zarr v2) with
a pyramid of 2× local means down to about 256 pixels a side, chunks of one computed block per
channel (1024² for an array in memory), and
the metadata the OME-TIFF writer records: channel names and colours (omero, with the display
window the caller gives), pixel sizes as each level's ``scale`` in micrometres, and under the
root attribute ``pairscope`` the image name, acquisition date, channels with fluorophores and
wavelengths, objective and provenance. The store is written in a temporary folder beside the
destination and renamed onto it at the end: on failure nothing is left there.
:func:`write_ome_zarr_zip` writes the same store as one zip file (uncompressed entries, the
store's root at the zip's root), the form the service delivers: Zarr's ``ZipStore`` and
ngff-zarr open it without unpacking. Blocks are
computed one at a time (dask's synchronous scheduler): the network already uses every core,
and memory stays bounded by one block.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .files import replace_dir
from .image_io import DTYPES, MIN_SIZE, ImageInfo, InvalidImage
from .output_metadata import OutputMetadata

NGFF_VERSION = "0.4"
CHUNK = 1024
SMALLEST_LEVEL = 256  # pixels along the longer side of the pyramid's last level
ATTRIBUTE = "pairscope"
UM_PER_NGFF_UNIT = {
    "angstrom": 1e-4,
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "millimeter": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
}
# omero colours of channels whose emission is unknown: blue, green, red, then the rest
DEFAULT_COLOURS = ("0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def open_ome_zarr(path: str | os.PathLike[str], channels: int | None = None):
    """The full-resolution level of the store's image as a lazy dask array in canonical axes
    (CYX or ZCYX) and its :class:`ImageInfo`. ``channels``: the channel count the caller
    expects, named in the error when the image has another."""
    import ngff_zarr as nz

    p = Path(path)
    if not p.is_dir():
        raise InvalidImage("no such OME-Zarr store (not a folder)")
    try:
        multiscales = nz.from_ome_zarr(str(p))
        image = multiscales.images[0]
        data, dims = image.data, [str(d) for d in image.dims]
    except Exception as exc:
        raise InvalidImage(
            f"not an OME-Zarr image (no readable NGFF multiscales metadata: {_first_line(exc)})"
        ) from exc
    sizes = dict(zip(dims, data.shape, strict=True))
    unknown = [d for d in dims if d not in "tczyx" or len(d) != 1]
    if unknown or "y" not in sizes or "x" not in sizes:
        raise InvalidImage(
            f"the image's axes {''.join(dims)} (shape {tuple(data.shape)}) cannot be enhanced: "
            "expected (c)(z)yx, optionally with one time point"
        )
    if sizes.get("t", 1) != 1:
        raise InvalidImage(
            f"time series are not supported ({sizes['t']} time points); "
            "give one time point per store"
        )
    dtype = np.dtype(data.dtype).name
    if dtype not in DTYPES:
        raise InvalidImage(f"pixel type {dtype} is not supported; use {', '.join(DTYPES)}")
    if sizes["y"] < MIN_SIZE or sizes["x"] < MIN_SIZE:
        raise InvalidImage(
            f"the image is {sizes['y']}x{sizes['x']} pixels (height x width); at least "
            f"{MIN_SIZE}x{MIN_SIZE} are needed"
        )
    if "t" in dims:
        data = data[tuple(0 if d == "t" else slice(None) for d in dims)]
        dims = [d for d in dims if d != "t"]
    if "c" not in dims:
        data, dims = data[None], ["c", *dims]
    if "z" in dims and sizes["z"] == 1:
        data = data[tuple(0 if d == "z" else slice(None) for d in dims)]
        dims = [d for d in dims if d != "z"]
    canonical = "ZCYX" if "z" in dims else "CYX"
    data = data.transpose([dims.index(a.lower()) for a in canonical])
    n_c = data.shape[canonical.index("C")]
    if channels is not None and n_c != channels:
        raise InvalidImage(
            f"{n_c} channel(s) (axes {''.join(dims)}, shape {tuple(data.shape)}), but the "
            f"model takes {channels}"
        )
    units = image.axes_units or {}
    info = ImageInfo(
        axes=canonical,
        shape=tuple(int(s) for s in data.shape),
        dtype=dtype,
        file_format="ome-zarr",
        pixel_size_um=_um(image.scale.get("x"), units.get("x")),
        pixel_size_source="ome-zarr" if units.get("x") else None,
        z_step_um=_um(image.scale.get("z"), units.get("z")) if "z" in dims else None,
    )
    return data, info


def _um(value: float | None, unit: Any) -> float | None:
    """A scale in micrometres; a scale without a unit is in pixels, which says nothing."""
    factor = UM_PER_NGFF_UNIT.get(str(getattr(unit, "value", unit) or "").lower())
    if value is None or factor is None or not np.isfinite(value) or value <= 0:
        return None
    return float(value) * factor


def _scale_factors(shape_yx: tuple[int, int]) -> list[int]:
    """2, 4, 8, ... until the longer side is about SMALLEST_LEVEL pixels (and none below
    MIN_SIZE)."""
    factors, f = [], 2
    while max(shape_yx) / f >= SMALLEST_LEVEL and min(shape_yx) / f >= MIN_SIZE:
        factors.append(f)
        f *= 2
    if not factors and min(shape_yx) / 2 >= MIN_SIZE:
        factors.append(2)  # a small image still gets one coarser level, as viewers expect
    return factors


def colour_of(emission_nm: float | None, index: int) -> str:
    """An omero colour (RRGGBB) for a channel: its emission wavelength's hue where known."""
    if emission_nm is None:
        return DEFAULT_COLOURS[index % len(DEFAULT_COLOURS)]
    wl = float(emission_nm)
    if wl < 440:
        rgb = ((440 - wl) / 60, 0.0, 1.0)
    elif wl < 490:
        rgb = (0.0, (wl - 440) / 50, 1.0)
    elif wl < 510:
        rgb = (0.0, 1.0, (510 - wl) / 20)
    elif wl < 580:
        rgb = ((wl - 510) / 70, 1.0, 0.0)
    elif wl < 645:
        rgb = (1.0, (645 - wl) / 65, 0.0)
    else:
        rgb = (1.0, 0.0, 0.0)
    return "".join(f"{round(255 * min(max(v, 0.0), 1.0)):02X}" for v in rgb)


def pairscope_attributes(meta: OutputMetadata) -> dict[str, Any]:
    """What the OME-TIFF's OME-XML says beyond pixels, as JSON beside the NGFF metadata."""
    imaging = meta.imaging
    return {
        "name": meta.name,
        "acquisition_date": meta.acquisition_date.isoformat() if meta.acquisition_date else None,
        "channels": [dataclasses.asdict(c) for c in imaging.channels],
        "pixel_size_um": imaging.pixel_size_um,
        "z_step_um": imaging.z_step_um,
        "objective": dataclasses.asdict(imaging.objective) if imaging.objective else None,
        "provenance": meta.provenance.to_dict(),
    }


def write_ome_zarr(
    path: str | os.PathLike[str],
    data,
    axes: str,
    metadata: OutputMetadata,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """Write ``data`` (a dask or numpy array, axes CYX or ZCYX) as an OME-Zarr store at
    ``path`` (see the module's docstring); returns the path. ``window``: per-channel display
    ``(start, end)`` for the omero metadata (default: the data type's range)."""
    import dask
    import dask.array as da
    import ngff_zarr as nz
    import numcodecs
    from ngff_zarr.v04.zarr_metadata import Omero, OmeroChannel, OmeroWindow

    path = os.fspath(path)
    if axes not in ("CYX", "ZCYX") or len(axes) != len(data.shape):
        raise ValueError(f"axes {axes!r} do not fit an image of shape {data.shape}")
    arr = data if isinstance(data, da.Array) else da.from_array(data, chunks=CHUNK)
    dims = ["c", "z", "y", "x"] if axes == "ZCYX" else ["c", "y", "x"]
    arr = arr.transpose([axes.index(d.upper()) for d in dims])  # NGFF: channel before space
    imaging = metadata.imaging
    n_c = arr.shape[0]
    px = imaging.pixel_size_um
    scale = {"y": px or 1.0, "x": px or 1.0}
    units = {"y": "micrometer", "x": "micrometer"} if px else {}
    if axes == "ZCYX":
        scale["z"] = imaging.z_step_um or 1.0
        if imaging.z_step_um:
            units["z"] = "micrometer"
    image = nz.to_ngff_image(
        arr,
        dims=dims,
        scale=scale,
        translation=dict.fromkeys(scale, 0.0),
        name=metadata.name,
        axes_units=units or None,
    )
    # A lazily computed image is stored in its own blocks: re-chunking computed blocks into
    # other sizes holds a row of them in memory until every chunk they touch is written.
    side = arr.chunksize[-1]  # CHUNK for an array in memory
    chunks = {"c": 1, "z": 1, "y": side, "x": side}
    multiscales = nz.to_multiscales(
        image,
        scale_factors=_scale_factors(tuple(arr.shape[-2:])),
        method=nz.Methods.ITKWASM_BIN_SHRINK,
        chunks={d: chunks[d] for d in dims},
        cache=False,
    )
    channels = list(imaging.channels) if len(imaging.channels) == n_c else []
    info = np.iinfo(arr.dtype) if np.dtype(arr.dtype).kind in "ui" else None
    full = (float(info.min), float(info.max)) if info else (0.0, 1.0)
    starts, ends = window if window is not None else ([full[0]] * n_c, [full[1]] * n_c)
    multiscales.metadata.omero = Omero(
        channels=[
            OmeroChannel(
                color=colour_of(channels[i].emission_nm if channels else None, i),
                window=OmeroWindow(
                    min=min(full[0], float(starts[i])),
                    max=max(full[1], float(ends[i])),
                    start=float(starts[i]),
                    end=float(ends[i]),
                ),
                label=channels[i].name if channels else f"channel {i}",
            )
            for i in range(n_c)
        ]
    )
    multiscales.root_attributes = {ATTRIBUTE: pairscope_attributes(metadata)}
    parent = os.path.dirname(os.path.abspath(path)) or "."
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-", suffix=".ome.zarr")
    try:
        with dask.config.set(scheduler="synchronous"):
            nz.to_ome_zarr(
                tmp,
                multiscales,
                version=NGFF_VERSION,
                compressor=numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE),
            )
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_pairscope_attributes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``pairscope`` root attribute of a store this module wrote (empty if none)."""
    import ngff_zarr as nz

    attributes = nz.from_ome_zarr(os.fspath(path)).root_attributes or {}
    return dict(attributes.get(ATTRIBUTE) or {})


def write_ome_zarr_zip(
    path: str | os.PathLike[str],
    data,
    axes: str,
    metadata: OutputMetadata,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """:func:`write_ome_zarr`, then the store zipped into ``path`` (ZIP_STORED: the chunks are
    already compressed, and stored entries can be read in place). Returns the path."""
    import ngff_zarr as nz

    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path)) or "."
    with tempfile.TemporaryDirectory(dir=parent, prefix=".tmp-zip-") as folder:
        store = write_ome_zarr(os.path.join(folder, "image.ome.zarr"), data, axes, metadata, window)
        nz.write_store_to_zip(store, path, version=NGFF_VERSION, compression=zipfile.ZIP_STORED)
    return path
