"""OME-Zarr in and out of `pairscope enhance`: read back with ngff-zarr, block-by-block result
equal to the in-memory one, bad stores refused with nothing left at the destination."""

import json
import os
import subprocess
import sys

import dask.array as da
import ngff_zarr as nz
import numpy as np
import pytest

from models.chunked_predict import plane_percentiles
from models.data import Normalization
from models.ome_zarr import open_ome_zarr, read_pairscope_attributes
from models.output_metadata import ChannelInfo, Imaging

CHANNELS = (
    ChannelInfo("DAPI", "Hoechst 33342", 350.0, 461.0),
    ChannelInfo("AF488", "Alexa Fluor 488", 495.0, 520.0),
    ChannelInfo("AF555", "Alexa Fluor 555", 555.0, 565.0),
)


def _pairscope(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pairscope", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _write_input(path, image, dims=("c", "y", "x"), pixel_um=0.25):
    spatial = [d for d in dims if d in "zyx"]
    ngff = nz.to_ngff_image(
        da.from_array(image, chunks=64),
        dims=list(dims),
        scale=dict.fromkeys(spatial, pixel_um),
        translation=dict.fromkeys(spatial, 0.0),
        axes_units=dict.fromkeys(spatial, "micrometer"),
    )
    nz.to_ome_zarr(str(path), nz.to_multiscales(ngff, scale_factors=[]), version="0.4")


@pytest.fixture(scope="module")
def described_model(trained_tiny, tmp_path_factory):
    """The tiny model, saved again (a copy) with the imaging description a trained model
    carries."""
    from models import EnhancementModel

    model = EnhancementModel.load(trained_tiny[1])
    model.metadata["imaging"] = Imaging(CHANNELS, pixel_size_um=0.1, pairing="lab A").to_dict()
    path = tmp_path_factory.mktemp("zarr-model") / "tiny"
    model.save(path)
    return EnhancementModel.load(path), path


def test_round_trip_through_the_command(described_model, tmp_path):
    model, model_path = described_model
    rng = np.random.default_rng(5)
    image = rng.integers(100, 3000, (3, 150, 200)).astype(np.uint16)  # several blocks of 64
    _write_input(tmp_path / "in.ome.zarr", image)
    out = tmp_path / "out.ome.zarr"
    done = _pairscope("enhance", "--model", model_path, tmp_path / "in.ome.zarr", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.ome.zarr", "out.ome.zarr"]

    zattrs = json.loads((out / ".zattrs").read_text())
    assert zattrs["multiscales"][0]["version"] == "0.4"
    ms = nz.from_ome_zarr(str(out))
    assert [a.name for a in ms.metadata.axes] == ["c", "y", "x"]
    assert [a.unit for a in ms.metadata.axes[1:]] == ["micrometer", "micrometer"]
    assert ms.images[0].scale == {"c": 1.0, "y": 0.25, "x": 0.25}  # the input's pixel size
    assert [c.label for c in ms.metadata.omero.channels] == ["DAPI", "AF488", "AF555"]
    assert ms.metadata.omero.channels[0].color == "006BFF"  # blue from the 461 nm emission
    # the pyramid: halving levels below the full resolution
    shapes = [tuple(i.data.shape) for i in ms.images]
    assert len(shapes) >= 2 and shapes[0] == (3, 150, 200) and shapes[1] == (3, 75, 100)
    assert ms.images[1].scale["y"] == pytest.approx(0.5)
    attrs = read_pairscope_attributes(out)
    assert attrs["provenance"]["input_file"] == "in.ome.zarr"
    assert attrs["provenance"]["weights_sha256"] == model.metadata["weights_sha256"]
    assert [c["emission_nm"] for c in attrs["channels"]] == [461.0, 520.0, 565.0]

    # block by block (the command) equals the whole image in memory, up to float rounding
    data, info = open_ome_zarr(out)
    assert info.axes == "CYX" and info.pixel_size_um == pytest.approx(0.25)
    expected = model.predict(image, axes="CYX")
    np.testing.assert_allclose(data.compute(), expected, rtol=1e-4, atol=1e-2 * expected.std())


def test_block_percentiles_equal_the_whole_plane():
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 60000, (2, 70, 90)).astype(np.uint16)
    norm = Normalization()
    lo, hi = plane_percentiles(norm, da.from_array(plane, chunks=32), block=32)
    want_lo, want_hi = norm.params(plane)
    np.testing.assert_array_equal(lo, want_lo)
    np.testing.assert_array_equal(hi, want_hi)
    floats = plane.astype(np.float32) / 7
    lo, hi = plane_percentiles(norm, floats, block=32)
    want_lo, want_hi = norm.params(floats)
    np.testing.assert_allclose(lo, want_lo, atol=1e-4 * floats.max())
    np.testing.assert_allclose(hi, want_hi, atol=1e-4 * floats.max())


def _plain_zarr(path):
    """A Zarr v2 group with an array but no NGFF metadata."""
    path.mkdir()
    (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (path / ".zattrs").write_text(json.dumps({"note": "not OME"}))


def test_bad_stores_exit_2_and_leave_nothing(described_model, tmp_path):
    _, model_path = described_model
    _plain_zarr(tmp_path / "plain.zarr")
    series = np.zeros((2, 3, 64, 64), np.uint16)  # two time points
    _write_input(tmp_path / "series.ome.zarr", series, dims=("t", "c", "y", "x"))
    before = sorted(os.listdir(tmp_path))
    for name, words in [("plain.zarr", "not an OME-Zarr image"), ("series.ome.zarr", "time")]:
        done = _pairscope(
            "enhance", "--model", model_path, tmp_path / name, tmp_path / "out.ome.zarr",
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and "Traceback" not in done.stderr
        assert sorted(os.listdir(tmp_path)) == before  # no output, no temporary folder
