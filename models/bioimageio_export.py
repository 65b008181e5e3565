"""A bioimage.io model package (model description format 0.5) of an :class:`EnhancementModel`,
so a trained model runs outside the service: deepImageJ / JDLL, ilastik, bioimageio.core.

What the package holds and why:

* the generator in two weight formats, each checked against the Keras output before the package
  is written: ONNX (tf2onnx, opset 17, which onnxruntime and deepImageJ/JDLL run) and Keras HDF5
  (``tensorflow_version`` recorded); the measured differences and the tolerance are in the rdf;
* axes ``batch, y, x, channel`` (the network's NHWC layout, so no transposition is needed), the
  channel names, the pixel size in µm as the spatial ``scale``, sizes ``min + n·step`` with the
  step the U-Net's down-sampling multiple, and a ``halo`` that covers the receptive field
  rounded up to that multiple (so every block keeps the pooling grid of the whole image);
* fixed pre- and post-processing (``scale_linear`` per channel): the service's normalisation
  ``(x − p_low) / (p_high − p_low)`` with the percentiles of the reference field, and its exact
  inverse, so the output is in the input's intensity units. The service itself takes the
  percentiles of each image it enhances; a consumer that tiles an image cannot, so the package
  fixes them. Images whose intensity range differs from the reference field are normalised
  differently than the service would (the rdf's description says so);
* test tensors (a crop of the real reference field and the Keras output on it), a cover (LQ |
  enhanced), the paper as citation, the training snapshot's digest where known.

TensorFlow, tf2onnx, onnxruntime and bioimageio.spec are imported inside the functions: the
module itself costs nothing to import.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import EPS, as_cyx
from .files import atomic_write

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .model import EnhancementModel

ONNX_OPSET = 17
TEST_TILE_TARGET = 256  # test tensors of about this size: large enough to be real, small to ship
# a reproduced output may differ from the Keras test output by this fraction of the reference
# field's intensity range (p_high − p_low) per channel; float32 convolutions in another order
# differ by ~1e-6 of it
RELATIVE_TOLERANCE = 1e-4
PAPER = {
    "text": (
        "Panek D., Rząca C., Szczypior M., Sorysz J., Misztal K., Baster Z., Rajfur Z. "
        "Cross-system biological image quality enhancement based on the generative adversarial "
        "network as a foundation for establishing a multi-institute microscopy cooperative "
        "network."
    ),
    "url": "https://www.paperswithcode.com/paper/cross-system-biological-image-quality",
}


class ExportError(RuntimeError):
    """The package could not be built or one of its weight formats does not reproduce Keras."""


@dataclass
class ExportResult:
    """What was written: the package, the fixed normalisation and the measured differences."""

    path: Path
    halo: int
    test_shape: tuple[int, ...]
    low: list[float]
    high: list[float]
    absolute_tolerance: float
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # per weight format
    warnings: list[str] = field(default_factory=list)


def export_bioimageio(
    model: EnhancementModel,
    out_path: str | os.PathLike[str],
    sample: np.ndarray,
    *,
    channel_names: list[str] | None = None,
    pixel_size_um: float | None = None,
    dataset_digest: str | None = None,
    title: str | None = None,
    authors: list[str] | None = None,
    license_id: str = "MIT",
) -> ExportResult:
    """Write ``model`` as a validated bioimage.io package (``.zip``) to ``out_path``.

    ``sample``: a real ``(C)YX`` LQ field of the model's microscope (its percentiles become the
    fixed normalisation; a crop of it becomes the test input and the cover). The zip appears
    whole or not at all; :class:`ExportError` when a weight format differs from Keras by more
    than the stated tolerance or the description does not validate.
    """
    import keras
    import tensorflow as tf

    from .networks import build_generator, receptive_field_margin

    image = as_cyx(sample, "sample")
    n_ch = model.n_channels or image.shape[0]
    if image.shape[0] != n_ch:
        raise ValueError(f"the model takes {n_ch} channel(s); the sample has {image.shape[0]}")
    names = list(channel_names) if channel_names else [f"channel{i}" for i in range(n_ch)]
    if len(names) != n_ch:
        raise ValueError(f"{len(names)} channel names for {n_ch} channel(s)")
    config = model.config
    multiple = int(config.multiple)
    halo = _round_up(receptive_field_margin(config), multiple)
    min_size = 2 * halo + multiple
    tile = _test_tile_size(image.shape[1:], min_size, multiple)

    lo, hi = model.normalization.params(np.asarray(sample).reshape(image.shape))
    scale = np.maximum(hi - lo, EPS).astype(np.float32)
    crop = _centre_crop(image, tile)
    net = build_generator(config, n_ch, "float32")
    net.set_weights(model.generator.get_weights())
    test_in = np.ascontiguousarray(np.moveaxis(crop, 0, -1)[None], np.float32)  # 1YXC raw
    normed = (test_in - lo) / scale
    test_out = np.asarray(net(normed, training=False), np.float32) * scale + lo
    tolerance = float(RELATIVE_TOLERANCE * float(scale.max()))

    with tempfile.TemporaryDirectory(prefix="bioimageio-") as tmp_name:
        tmp = Path(tmp_name)
        np.save(tmp / "test_input.npy", test_in)
        np.save(tmp / "test_output.npy", test_out)
        h5 = tmp / "weights.h5"
        net.save(h5)
        onnx_path = tmp / "weights.onnx"
        _export_onnx(net, n_ch, onnx_path)
        diffs = {
            "keras_hdf5": _max_abs_diff(_keras_h5_predict(h5, normed) * scale + lo, test_out),
            "onnx": _max_abs_diff(_onnx_predict(onnx_path, normed) * scale + lo, test_out),
        }
        bad = {k: v for k, v in diffs.items() if not v <= tolerance}
        if bad:
            raise ExportError(
                f"weights differ from Keras by more than {tolerance:.3g}: "
                + ", ".join(f"{k} {v:.3g}" for k, v in bad.items())
            )
        _write_cover(tmp / "cover.png", crop, np.moveaxis(test_out[0], -1, 0), lo, scale)
        title = title or model.name
        (tmp / "README.md").write_text(
            _readme(title, model, lo, hi, halo, tolerance, dataset_digest), encoding="utf-8"
        )
        descr = _description(
            tmp,
            title=title,
            model=model,
            names=names,
            pixel_size_um=pixel_size_um,
            lo=lo,
            scale=scale,
            halo=halo,
            min_size=min_size,
            multiple=multiple,
            tolerance=tolerance,
            diffs=diffs,
            dataset_digest=dataset_digest,
            authors=authors,
            license_id=license_id,
            versions={"tensorflow": tf.__version__, "keras": keras.__version__},
        )
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out, suffix=".zip") as part:
            _save_package(descr, part)
        warnings = validate_package(out)
    return ExportResult(
        path=out,
        halo=halo,
        test_shape=tuple(test_in.shape),
        low=[float(v) for v in lo],
        high=[float(v) for v in hi],
        absolute_tolerance=tolerance,
        max_abs_diff=diffs,
        warnings=warnings,
    )


def validate_package(path: str | os.PathLike[str]) -> list[str]:
    """Validate a package with bioimageio.spec (static checks, files and hashes); returns its
    warnings, raises :class:`ExportError` with the errors when it does not validate."""
    from bioimageio.spec import load_model_description

    try:
        descr = load_model_description(Path(path), perform_io_checks=True)
    except Exception as e:  # the spec raises a ValueError carrying the summary
        raise ExportError(f"{path}: not a valid bioimage.io model: {e}") from e
    summary = descr.validation_summary
    return [f"{w.loc}: {w.msg}" for d in summary.details for w in d.warnings]


# ------------------------------------------------------------------ the description
def _description(tmp: Path, **kw: Any):  # noqa: ANN202 - a bioimageio.spec ModelDescr
    from bioimageio.spec.model import v0_5 as s

    model = kw["model"]
    names, lo, scale, halo = kw["names"], kw["lo"], kw["scale"], kw["halo"]
    unit = "micrometer" if kw["pixel_size_um"] else None
    px = float(kw["pixel_size_um"] or 1.0)
    inp, out = s.TensorId("lq"), s.TensorId("enhanced")
    channel = s.ChannelAxis(channel_names=[s.Identifier(_identifier(n)) for n in names])
    size = s.ParameterizedSize(min=kw["min_size"], step=kw["multiple"])
    in_axes = [
        s.BatchAxis(),
        s.SpaceInputAxis(id=s.AxisId("y"), size=size, scale=px, unit=unit),
        s.SpaceInputAxis(id=s.AxisId("x"), size=size, scale=px, unit=unit),
        channel,
    ]
    out_axes = [
        s.BatchAxis(),
        *(
            s.SpaceOutputAxisWithHalo(
                id=s.AxisId(a),
                size=s.SizeReference(tensor_id=inp, axis_id=s.AxisId(a)),
                halo=halo,
                scale=px,
                unit=unit,
            )
            for a in ("y", "x")
        ),
        channel,
    ]
    along = s.AxisId("channel")
    gain = [float(v) for v in 1.0 / scale]
    offset = [float(v) for v in -lo / scale]
    preprocessing = [
        s.ScaleLinearDescr(
            kwargs=s.ScaleLinearAlongAxisKwargs(axis=along, gain=gain, offset=offset)
        )
    ]
    postprocessing = [
        s.ScaleLinearDescr(
            kwargs=s.ScaleLinearAlongAxisKwargs(
                axis=along, gain=[float(v) for v in scale], offset=[float(v) for v in lo]
            )
        )
    ]
    versions = kw["versions"]
    authors = [s.Author(name=a) for a in (kw["authors"] or ["Pairscope"])]
    c = model.config
    training = model.metadata.get("training", {})
    digest = kw["dataset_digest"]
    pairscope_config = {
        "normalization": {
            **model.normalization.to_dict(),
            "fixed_low": [float(v) for v in lo],
            "fixed_high": [float(v + d) for v, d in zip(lo, scale, strict=True)],
            "note": "the service takes these percentiles per image; the package fixes them "
            "to the reference field's",
        },
        "receptive_field_margin": int(halo),
        "model_id": model.metadata.get("id"),
        "weights_sha256": model.metadata.get("weights_sha256"),
        "training_snapshot_digest": digest,
        "measured_max_abs_diff": {k: float(v) for k, v in kw["diffs"].items()},
        "config": c.to_dict(),
    }
    return s.ModelDescr(
        name=_name(kw["title"]),
        description=(
            "Cross-system enhancement of wide-field fluorescence images towards a confocal "
            "reference (residual U-Net generator, Pairscope). Input and output in the camera's "
            "intensity units; normalisation fixed to the reference field's percentiles."
        ),
        authors=authors,
        cite=[s.CiteEntry(text=PAPER["text"], url=s.HttpUrl(PAPER["url"]))],
        license=s.LicenseId(kw["license_id"]),
        documentation=s.FileDescr(source=tmp / "README.md"),
        covers=[s.FileDescr(source=tmp / "cover.png")],
        tags=[
            "denoising",
            "image-restoration",
            "fluorescence-light-microscopy",
            "2d",
            "unet",
            "pairscope",
        ],
        inputs=[
            s.InputTensorDescr(
                id=inp,
                description="low-quality (wide-field) image in camera units",
                axes=in_axes,
                test_tensor=s.FileDescr(source=tmp / "test_input.npy"),
                data=s.IntervalOrRatioDataDescr(type="float32"),
                preprocessing=preprocessing,
            )
        ],
        outputs=[
            s.OutputTensorDescr(
                id=out,
                description="enhanced image in the input's intensity units",
                axes=out_axes,
                test_tensor=s.FileDescr(source=tmp / "test_output.npy"),
                data=s.IntervalOrRatioDataDescr(type="float32"),
                postprocessing=postprocessing,
            )
        ],
        weights=s.WeightsDescr(
            keras_hdf5=s.KerasHdf5WeightsDescr(
                source=tmp / "weights.h5",
                tensorflow_version=s.Version(versions["tensorflow"]),
                comment=f"Keras {versions['keras']} (float32)",
            ),
            onnx=s.OnnxWeightsDescr(
                source=tmp / "weights.onnx",
                opset_version=ONNX_OPSET,
                parent="keras_hdf5",
                comment="converted with tf2onnx",
            ),
        ),
        timestamp=_dt.datetime.now(_dt.UTC),
        config=s.Config(
            bioimageio=s.BioimageioConfig(
                reproducibility_tolerance=[
                    s.ReproducibilityTolerance(
                        absolute_tolerance=kw["tolerance"],
                        relative_tolerance=RELATIVE_TOLERANCE,
                        mismatched_elements_per_million=0,
                    )
                ],
                architecture_type="residual U-Net",
                modality="fluorescence microscopy (wide-field to confocal)",
                task="image restoration",
                model_parameter_count=int(model.generator.count_params()),
                training=s.TrainingDetails(
                    training_preprocessing=(
                        "per-image, per-channel percentile normalisation "
                        f"({c.norm_low}, {c.norm_high}); flips, 90° rotations"
                    ),
                    training_batch_size=float(c.batch_size),
                    initial_learning_rate=float(c.learning_rate),
                    learning_rate_schedule=c.lr_schedule,
                    loss_function=f"{c.mse_weight}·MSE + {c.ssim_weight}·(1 − SSIM)"
                    + (f" + {c.adv_weight}·adversarial" if c.adv_weight else ""),
                    optimizer="Adam",
                    training_duration=(
                        float(training["elapsed_s"]) / 3600 if training.get("elapsed_s") else None
                    ),
                ),
            ),
            pairscope=pairscope_config,
        ),
    )


def _save_package(descr: Any, path: Path) -> None:
    from bioimageio.spec import save_bioimageio_package

    save_bioimageio_package(descr, output_path=path)


def _readme(
    title: str,
    model: EnhancementModel,
    lo: np.ndarray,
    hi: np.ndarray,
    halo: int,
    tolerance: float,
    digest: str | None,
) -> str:
    c = model.config
    return f"""# {title}

Pairscope enhancement model (residual U-Net, depth {c.depth}, {c.base_filters} base filters),
exported from the service. It maps a wide-field image of its microscope towards the confocal
reference it was trained against (Panek et al.).

## Input and output

Axes `batch, y, x, channel`, float32 in camera units. The input is normalised with fixed
per-channel percentiles (p{c.norm_low} = {[round(float(v), 4) for v in lo]},
p{c.norm_high} = {[round(float(v), 4) for v in hi]}, taken from the reference field) and the
output mapped back to the input's units. The service takes these percentiles from each image
it enhances, so an image much brighter or darker than the reference field is enhanced
differently here than by the service. Tiles need a halo of {halo} pixels.

Training snapshot digest: {digest or "unknown"}.

## Validation

The test output was computed with Keras; the ONNX and Keras HDF5 weights reproduce it within
{tolerance:.3g} (absolute, camera units).
"""


def _write_cover(
    path: Path, lq: np.ndarray, out: np.ndarray, lo: np.ndarray, scale: np.ndarray
) -> None:
    """LQ | enhanced, side by side (2:1), both stretched by the same fixed percentiles."""
    from matplotlib.image import imsave

    from .figures import channel_colors, composite

    colors = channel_colors(lq.shape[0])
    panels = [composite((a - lo[:, None, None]) / scale[:, None, None], colors) for a in (lq, out)]
    imsave(path, np.concatenate(panels, axis=1))


# ------------------------------------------------------------------ weights
def _export_onnx(net: Any, n_channels: int, path: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, None, None, n_channels), tf.float32, name="lq"),)

    @tf.function(input_signature=spec)
    def forward(x):  # noqa: ANN001, ANN202
        return net(x, training=False)

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=ONNX_OPSET)
    path.write_bytes(proto.SerializeToString())


def _onnx_predict(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0], np.float32)


def _keras_h5_predict(path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    from . import networks  # noqa: F401 - registers the custom layers for deserialisation

    loaded = keras.models.load_model(path, compile=False)
    return np.asarray(loaded(x, training=False), np.float32)


# ------------------------------------------------------------------ small helpers
def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _round_up(v: int, m: int) -> int:
    return -(-int(v) // m) * m


def _test_tile_size(shape_yx: tuple[int, ...], min_size: int, step: int) -> int:
    """The valid size (``min_size + n·step``) nearest above :data:`TEST_TILE_TARGET` that fits
    the sample (at least ``min_size``)."""
    fits = min(shape_yx)
    if fits < min_size:
        raise ValueError(
            f"the sample ({shape_yx[0]}×{shape_yx[1]}) is smaller than the model's smallest "
            f"input ({min_size}×{min_size}, twice the halo plus one step)"
        )
    n = max(0, -(-(TEST_TILE_TARGET - min_size) // step))
    return min(min_size + n * step, min_size + (fits - min_size) // step * step)


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[1:]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(image[:, y0 : y0 + size, x0 : x0 + size])


def _identifier(name: str) -> str:
    """A channel name as the spec's identifier (letters, digits, underscores)."""
    ident = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name.strip()) or "channel"
    return ident if not ident[0].isdigit() else f"c{ident}"


def _name(title: str) -> str:
    """The spec's model name: at most 128 characters of letters, digits, ``_- ()``."""
    allowed = "".join(ch if ch.isalnum() or ch in "_- ()" else " " for ch in title)
    return " ".join(allowed.split())[:128] or "Pairscope model"


def export_files(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    sample_path: str | os.PathLike[str],
    *,
    channel_names: list[str] | None = None,
    pixel_size_um: float | None = None,
    dataset_digest: str | None = None,
) -> ExportResult:
    """:func:`export_bioimageio` from files: a saved model (folder or .zip) and a TIFF field of
    its microscope read by the service's reader (a Z stack gives its middle plane; the pixel
    size comes from the file's metadata unless given). Bad paths raise
    :class:`~models.cli_science.ScienceInputError` naming the file."""
    from .cli_science import load_model, read_input_image
    from .image_io import read_image

    model = load_model(model_path)
    image, axes = read_input_image(sample_path, channels=model.n_channels)
    if axes == "ZCYX":
        image = image[image.shape[0] // 2]
    if pixel_size_um is None:
        pixel_size_um = read_image(sample_path, channels=model.n_channels)[1].pixel_size_um
    return export_bioimageio(
        model,
        out_path,
        image,
        channel_names=channel_names,
        pixel_size_um=pixel_size_um,
        dataset_digest=dataset_digest,
    )
