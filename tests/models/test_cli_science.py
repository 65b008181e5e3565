import os

import numpy as np
import pytest
import tifffile

from models import synthetic
from models.cli_science import ScienceInputError, enhance, train_local


def _write_pairs(root, n=4, shape=(64, 64), seed=0):
    lq_dir, hq_dir = root / "lq", root / "hq"
    lq_dir.mkdir()
    hq_dir.mkdir()
    lq, hq, ids = synthetic.make_dataset(n, shape, seed=seed)
    for a, b, i in zip(lq, hq, ids, strict=True):
        tifffile.imwrite(lq_dir / f"{i}.tif", a, metadata={"axes": "CYX"}, photometric="minisblack")
        tifffile.imwrite(hq_dir / f"{i}.tif", b, metadata={"axes": "CYX"}, photometric="minisblack")
    return lq_dir, hq_dir


def _listing(folder):
    return sorted(os.listdir(folder))


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    lq_dir, hq_dir = _write_pairs(root)
    out = root / "model"
    train_local(lq_dir, hq_dir, out, preset="tiny", steps=6, seed=1)
    return out, lq_dir


def test_train_local_then_enhance(cli_model, tmp_path):
    model_dir, lq_dir = cli_model
    assert (model_dir / "generator.weights.h5").exists()
    out = tmp_path / "enhanced.ome.tif"
    enhance(model_dir, lq_dir / "field_000.tif", out)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome
        arr = tif.series[0].asarray()
        ome = tif.ome_metadata
    assert arr.shape == (3, 64, 64) and arr.dtype == np.float32
    from models import EnhancementModel

    ident = EnhancementModel.load(model_dir).identity
    assert ident["id"] in ome and "model_id" in ome and ident["name"] in ome
    enhance(
        model_dir, lq_dir / "field_001.tif", tmp_path / "u16.tif", out_dtype="uint16", ensemble=True
    )
    assert tifffile.imread(tmp_path / "u16.tif").dtype == np.uint16
    assert _listing(tmp_path) == ["enhanced.ome.tif", "u16.tif"]  # no temporary files left


def test_enhance_a_z_stack(cli_model, tmp_path):
    model_dir, lq_dir = cli_model
    a = tifffile.imread(lq_dir / "field_000.tif")
    tifffile.imwrite(
        tmp_path / "z.tif", np.stack([a, a]), metadata={"axes": "ZCYX"}, photometric="minisblack"
    )
    enhance(model_dir, tmp_path / "z.tif", tmp_path / "z_out.tif")
    assert tifffile.imread(tmp_path / "z_out.tif").shape == (2, 3, 64, 64)


def _expect(exc_match, fn, *args, out, **kw):
    with pytest.raises(ScienceInputError, match=exc_match):
        fn(*args, **kw)
    assert not os.path.exists(out)
    parent = os.path.dirname(out)
    assert not [f for f in os.listdir(parent) if f.startswith(".tmp")]


def test_folders_that_do_not_pair_up(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    os.rename(hq_dir / "field_001.tif", hq_dir / "field_009.tif")
    _expect(
        r"field_001\.tif: no file of that name in the HQ folder",
        train_local,
        lq_dir,
        hq_dir,
        tmp_path / "m",
        preset="tiny",
        steps=2,
        out=tmp_path / "m",
    )


def test_shapes_that_differ(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    tifffile.imwrite(
        hq_dir / "field_001.tif", np.zeros((3, 64, 60), np.uint16), photometric="minisblack"
    )
    _expect(
        r"field_001\.tif: shape \(3, 64, 64\).*differs",
        train_local,
        lq_dir,
        hq_dir,
        tmp_path / "m",
        preset="tiny",
        steps=2,
        out=tmp_path / "m",
    )


def test_channel_counts_that_differ(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    for d in (lq_dir, hq_dir):
        tifffile.imwrite(
            d / "field_001.tif", np.ones((2, 64, 64), np.uint16), metadata={"axes": "CYX"}
        )
    _expect(
        r"field_001\.tif: 2 channel\(s\), but .*field_000\.tif has 3",
        train_local,
        lq_dir,
        hq_dir,
        tmp_path / "m",
        preset="tiny",
        steps=2,
        out=tmp_path / "m",
    )


def test_a_file_that_is_not_a_tiff(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    (lq_dir / "field_001.tif").write_text("hello, I am not an image")
    _expect(
        r"field_001\.tif: not a readable TIFF",
        train_local,
        lq_dir,
        hq_dir,
        tmp_path / "m",
        preset="tiny",
        steps=2,
        out=tmp_path / "m",
    )


def test_missing_folder_and_bad_preset(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    _expect(
        "does not exist", train_local, tmp_path / "nope", hq_dir, tmp_path / "m", out=tmp_path / "m"
    )
    _expect(
        "preset", train_local, lq_dir, hq_dir, tmp_path / "m", preset="huge", out=tmp_path / "m"
    )


def test_output_that_is_not_a_model_is_kept(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    (tmp_path / "precious.txt").write_text("data")
    with pytest.raises(ScienceInputError, match="precious.txt: exists"):
        train_local(lq_dir, hq_dir, tmp_path / "precious.txt", preset="tiny", steps=2)
    assert (tmp_path / "precious.txt").read_text() == "data"


def test_enhance_wrong_channel_count(cli_model, tmp_path):
    model_dir, _ = cli_model
    tifffile.imwrite(
        tmp_path / "two.tif", np.ones((2, 64, 64), np.uint16), metadata={"axes": "CYX"}
    )
    _expect(
        r"two\.tif: 2 channel\(s\).*takes 3",
        enhance,
        model_dir,
        tmp_path / "two.tif",
        tmp_path / "out.tif",
        out=tmp_path / "out.tif",
    )


def test_enhance_input_not_a_tiff(cli_model, tmp_path):
    model_dir, _ = cli_model
    (tmp_path / "in.tif").write_bytes(b"\x00" * 100)
    _expect(
        r"in\.tif: not a readable TIFF",
        enhance,
        model_dir,
        tmp_path / "in.tif",
        tmp_path / "out.tif",
        out=tmp_path / "out.tif",
    )
    _expect(
        r"missing\.tif: no such file",
        enhance,
        model_dir,
        tmp_path / "missing.tif",
        tmp_path / "out.tif",
        out=tmp_path / "out.tif",
    )


def test_enhance_bad_model(tmp_path, cli_model):
    _, lq_dir = cli_model
    (tmp_path / "notamodel").mkdir()
    _expect(
        "notamodel: not a Pairscope model",
        enhance,
        tmp_path / "notamodel",
        lq_dir / "field_000.tif",
        tmp_path / "out.tif",
        out=tmp_path / "out.tif",
    )


def test_enhance_failure_leaves_nothing(cli_model, tmp_path, monkeypatch):
    model_dir, lq_dir = cli_model
    import tifffile as tf_mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(tf_mod, "imwrite", boom)
    with pytest.raises(OSError, match="disk full"):
        enhance(model_dir, lq_dir / "field_000.tif", tmp_path / "out.tif")
    assert _listing(tmp_path) == []
