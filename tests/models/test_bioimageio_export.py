"""The bioimage.io package of a trained model: it validates with bioimageio.spec, passes
bioimageio.core's own model test on onnxruntime, and bioimageio.core's tiled prediction of a
larger real field matches Pairscope's own prediction."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytest.importorskip("bioimageio.core")
pytest.importorskip("onnxruntime")

from models.bioimageio_export import (  # noqa: E402
    RELATIVE_TOLERANCE,
    export_bioimageio,
    validate_package,
)

CHANNELS = ["nucleus", "actin", "tubulin"]


@pytest.fixture(scope="module")
def package(trained_tiny, w2s_field, tmp_path_factory):
    model, _ = trained_tiny
    out = tmp_path_factory.mktemp("bioimageio") / "tiny.zip"
    result = export_bioimageio(
        model,
        out,
        w2s_field,
        channel_names=CHANNELS,
        pixel_size_um=0.065,
        dataset_digest="sha256:0123abcd",
    )
    return model, result


def test_package_validates_and_describes_the_model(package):
    model, result = package
    assert result.path.exists()
    assert validate_package(result.path) is not None  # raises when invalid
    from bioimageio.spec import load_model_description

    descr = load_model_description(result.path, perform_io_checks=True)
    assert descr.weights.onnx is not None and descr.weights.keras_hdf5 is not None
    assert descr.weights.onnx.opset_version == 17
    axes = {str(a.id): a for a in descr.inputs[0].axes}
    assert [str(n) for n in axes["channel"].channel_names] == CHANNELS
    assert axes["y"].scale == pytest.approx(0.065) and axes["y"].unit == "micrometer"
    out_axes = {str(a.id): a for a in descr.outputs[0].axes}
    assert out_axes["x"].halo == result.halo >= 19  # the tiny net's receptive field margin
    assert "scale_linear" in [p.id for p in descr.inputs[0].preprocessing]
    assert "scale_linear" in [p.id for p in descr.outputs[0].postprocessing]
    tol = descr.config.bioimageio.reproducibility_tolerance[0]
    assert tol.absolute_tolerance == pytest.approx(result.absolute_tolerance)
    assert all(d <= result.absolute_tolerance for d in result.max_abs_diff.values())
    assert descr.config.pairscope["training_snapshot_digest"] == "sha256:0123abcd"
    assert "Panek" in descr.cite[0].text
    with zipfile.ZipFile(result.path) as z:
        names = set(z.namelist())
    assert {
        "rdf.yaml",
        "weights.onnx",
        "weights.h5",
        "test_input.npy",
        "test_output.npy",
        "cover.png",
        "README.md",
    } <= names


def test_bioimageio_core_model_test_passes_on_onnxruntime(package):
    from bioimageio.core import test_model

    _, result = package
    summary = test_model(result.path, weight_format="onnx", devices=["cpu"])
    failed = [
        d.name + ": " + "; ".join(e.msg for e in d.errors)
        for d in summary.details
        if d.status == "failed"
    ]
    assert summary.status == "passed", failed


def test_tiled_prediction_matches_pairscope(package, w2s_field):
    """A 512² field (the test tensor is a 256² crop) through bioimageio.core's blocked
    prediction on onnxruntime, in several blocks with halos, against EnhancementModel.predict.
    The package's fixed percentiles are this field's, so the service normalises it alike."""
    from bioimageio.core import create_prediction_pipeline, predict
    from bioimageio.spec import load_model_description

    model, result = package
    descr = load_model_description(result.path)
    ours = model.predict(w2s_field, axes="CYX")
    x = np.moveaxis(w2s_field.astype(np.float32), 0, -1)[None]
    pipeline = create_prediction_pipeline(descr, weight_format="onnx")
    sample = predict(model=pipeline, inputs=x, blocksize_parameter=20)
    theirs = np.moveaxis(np.asarray(sample.members["enhanced"].data)[0], -1, 0)
    assert theirs.shape == ours.shape
    diff = np.abs(theirs - ours)
    # the borders are padded differently (core: symmetric, Pairscope: reflect); inside the
    # receptive field margin of the border the two predictions agree within the tolerance
    m = result.halo
    inner = diff[:, m:-m, m:-m]
    scale = np.asarray(result.high) - np.asarray(result.low)
    print(f"max |core − pairscope| inside: {inner.max():.3g}, whole: {diff.max():.3g}")
    assert inner.max() <= RELATIVE_TOLERANCE * scale.max()


def test_export_command_writes_a_valid_package(trained_tiny, tmp_path):
    from pairscope.cli import main

    _, saved = trained_tiny
    field = "/work/shared/data/w2s-widefield-denoise/lq/field_065.tif"
    out = tmp_path / "pkg.zip"
    code = main(
        [
            "export",
            "--model",
            str(saved),
            "--sample",
            field,
            "--out",
            str(out),
            "--channel-names",
            ",".join(CHANNELS),
            "--pixel-size-um",
            "0.065",
        ]
    )
    assert code == 0 and out.exists()
    validate_package(out)
    assert (
        main(
            [
                "export",
                "--model",
                str(saved),
                "--sample",
                str(tmp_path / "none.tif"),
                "--out",
                str(tmp_path / "bad.zip"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad.zip").exists()


def test_a_per_channel_model_exports_and_passes_on_onnxruntime(w2s_field, tmp_path):
    """A generator started from a single-channel base (channels folded into the batch) exports
    to ONNX and passes bioimageio.core's model test like any other."""
    from bioimageio.core import test_model

    from models import Config, EnhancementModel

    config = Config.preset("tiny", precision="float32", per_channel=True)
    model = EnhancementModel(config, n_channels=3, name="per-channel")
    result = export_bioimageio(
        model, tmp_path / "pc.zip", w2s_field, channel_names=CHANNELS, pixel_size_um=0.065
    )
    assert all(d <= result.absolute_tolerance for d in result.max_abs_diff.values())
    summary = test_model(result.path, weight_format="onnx", devices=["cpu"])
    assert summary.status == "passed", [d.name for d in summary.details if d.status == "failed"]
