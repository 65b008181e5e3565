import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from models import synthetic
from models.cli_science import ScienceInputError, enhance, enhance_files, train_local
from tests.ome_output import PROVENANCE_KEYS, pixels_per_cm, read_back, resolution_value

# What TensorFlow and CUDA print while they load, which the command line hides.
TF_START_UP = ("oneDNN", "cuda", "absl", "cpu_feature_guard", "tensorflow")


def _pairscope(*args, cwd):
    """The console command as a scientist runs it, without any TensorFlow log setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PAIRSCOPE_"))}
    return subprocess.run(
        [sys.executable, "-m", "pairscope", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def _quiet(stderr):
    """stderr without progress bars shows nothing from TensorFlow's start-up, no traceback."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if "%|" not in line]
    noise = [line for line in lines if any(word in line for word in TF_START_UP)]
    return not noise and "Traceback" not in stderr


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


REFERENCE_CHANNELS = [
    ("DAPI", "Hoechst 33342", 350.0, 461.0),
    ("AF488", "Alexa Fluor 488", 495.0, 520.0),
    ("AF555", "Alexa Fluor 555", 555.0, 565.0),
]


def _describe_reference(hq_dir, pixel_size_um=0.1):
    """Rewrite the HQ files as OME-TIFFs that name their channels and objective, as a
    confocal's export would (built with ome-types, independently of Pairscope's writer)."""
    from ome_types import OME, to_xml
    from ome_types.model import (
        Channel,
        Image,
        Instrument,
        Objective,
        ObjectiveSettings,
        Pixels,
        TiffData,
    )

    for path in sorted(hq_dir.iterdir()):
        data = tifffile.imread(path)
        channels = [
            Channel(name=n, fluor=f, excitation_wavelength=ex, emission_wavelength=em)
            for n, f, ex, em in REFERENCE_CHANNELS
        ]
        pixels = Pixels(
            dimension_order="XYCZT",
            type="uint16",
            size_x=data.shape[2],
            size_y=data.shape[1],
            size_c=3,
            size_z=1,
            size_t=1,
            physical_size_x=pixel_size_um,
            physical_size_y=pixel_size_um,
            channels=channels,
            tiff_data_blocks=[TiffData(plane_count=3)],
        )
        objective = Objective(
            id="Objective:0:0",
            lens_na=1.4,
            nominal_magnification=63,
            immersion="Oil",
            model="Leica SP8",
        )
        ome = OME(
            instruments=[Instrument(id="Instrument:0", objectives=[objective])],
            images=[
                Image(
                    pixels=pixels,
                    objective_settings=ObjectiveSettings(
                        id="Objective:0:0", refractive_index=1.515
                    ),
                )
            ],
        )
        xml = to_xml(ome).encode("ascii", "xmlcharrefreplace")
        tifffile.imwrite(
            path, data.astype(np.uint16), description=xml, metadata=None, photometric="minisblack"
        )


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    lq_dir, hq_dir = _write_pairs(root)
    _describe_reference(hq_dir)
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


def test_train_local_saves_the_uncertainty_calibration(cli_model):
    """Calibrated on the fields it validated on, or on its training fields with a note."""
    from models import EnhancementModel
    from models.trust import calibration_of

    model = EnhancementModel.load(cli_model[0])
    calibration = calibration_of(model.metadata)
    assert calibration is not None and calibration.coverage == 0.9 and calibration.quantile > 0
    validated = bool(model.metadata.get("training", {}).get("val_fields"))
    assert calibration.notes["fields"] == ("validation" if validated else "training")
    assert validated or "no validation fields" in calibration.notes["note"]


def test_enhance_a_z_stack(cli_model, tmp_path):
    model_dir, lq_dir = cli_model
    a = tifffile.imread(lq_dir / "field_000.tif")
    tifffile.imwrite(
        tmp_path / "z.tif", np.stack([a, a]), metadata={"axes": "ZCYX"}, photometric="minisblack"
    )
    enhance(model_dir, tmp_path / "z.tif", tmp_path / "z_out.tif")
    assert tifffile.imread(tmp_path / "z_out.tif").shape == (2, 3, 64, 64)


def _assert_reference_look(back):
    """The channels and objective of the HQ files the local model learned from."""
    pixels = back.pixels
    assert [
        (c.name, c.fluor, c.excitation_wavelength, c.emission_wavelength) for c in pixels.channels
    ] == REFERENCE_CHANNELS
    assert {c.excitation_wavelength_unit.value for c in pixels.channels} == {"nm"}
    objective = back.objective
    assert (objective.lens_na, objective.nominal_magnification) == (1.4, 63)
    assert objective.immersion.value == "Oil" and objective.model == "Leica SP8"


def test_local_output_metadata_matches_the_service(cli_model, tmp_path):
    """A plain input takes the model's training pixel size; the provenance has the service's
    keys; the channels and objective are the reference's, as the model saved them."""
    model_dir, lq_dir = cli_model
    from models import EnhancementModel

    model = EnhancementModel.load(model_dir)
    out = tmp_path / "plain.ome.tif"
    enhance(model_dir, lq_dir / "field_000.tif", out, ensemble=True)
    back = read_back(out)
    _assert_reference_look(back)
    assert back.axes == "CYX" and back.pixels.physical_size_x == 0.1
    assert back.pixels.physical_size_x_unit.value == "µm"
    assert back.resolution_unit == 3
    assert resolution_value(back.resolution[1]) == pytest.approx(pixels_per_cm(0.1))
    provenance = back.provenance
    assert set(provenance) == PROVENANCE_KEYS
    assert provenance["weights_sha256"] == model.metadata["weights_sha256"]
    assert provenance["model_id"] == model.identity["id"] and provenance["ensemble"] == "True"
    assert provenance["input_file"] == "field_000.tif" and len(provenance["input_sha256"]) == 64
    assert provenance["precision"] == model.policy and provenance["out_dtype"] == "float32"


def test_local_z_stack_output_keeps_the_inputs_sizes_and_date(cli_model, tmp_path):
    model_dir, lq_dir = cli_model
    a = tifffile.imread(lq_dir / "field_000.tif")
    tifffile.imwrite(
        tmp_path / "z.ome.tif",
        np.stack([a, a, a]),
        metadata={
            "axes": "ZCYX",
            "PhysicalSizeX": 0.13,
            "PhysicalSizeY": 0.13,
            "PhysicalSizeZ": 0.5,
            "AcquisitionDate": "2025-01-02T03:04:05",
        },
    )
    enhance(model_dir, tmp_path / "z.ome.tif", tmp_path / "z_out.ome.tif")
    back = read_back(tmp_path / "z_out.ome.tif")
    pixels = back.pixels
    assert back.axes == "ZCYX" and (pixels.size_z, pixels.size_c) == (3, 3)
    assert (pixels.physical_size_x, pixels.physical_size_y, pixels.physical_size_z) == (
        0.13,
        0.13,
        0.5,
    )
    assert back.tifffile_ome["Image"]["Pixels"]["PhysicalSizeZ"] == 0.5
    assert str(back.ome.images[0].acquisition_date) == "2025-01-02 03:04:05"
    assert resolution_value(back.resolution[0]) == pytest.approx(pixels_per_cm(0.13))
    _assert_reference_look(back)


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


def test_enhance_files_loads_the_model_once_and_goes_on_after_a_bad_input(cli_model, tmp_path):
    model_dir, lq_dir = cli_model
    (tmp_path / "broken.tif").write_text("not an image")
    jobs = [
        (lq_dir / "field_000.tif", tmp_path / "a.ome.tif"),
        (tmp_path / "broken.tif", tmp_path / "b.ome.tif"),
        (lq_dir / "field_001.tif", tmp_path / "c.ome.tif"),
    ]
    failed = enhance_files(model_dir, jobs)
    assert list(failed) == [tmp_path / "broken.tif"]
    assert "not a readable TIFF" in failed[tmp_path / "broken.tif"]
    assert _listing(tmp_path) == ["a.ome.tif", "broken.tif", "c.ome.tif"]
    with pytest.raises(ScienceInputError, match="no such model"):
        enhance_files(tmp_path / "no-model", jobs)


def test_command_line_enhance_of_folders_and_files(cli_model, tmp_path):
    """`pairscope enhance --out DIR` takes folders and files: one result each, a summary of
    what failed and exit 1; the one-input form still works; TensorFlow's logs stay hidden."""
    model_dir, lq_dir = cli_model
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken.tif").write_text("not an image")
    tifffile.imwrite(
        extra / "other.ome.tif",
        tifffile.imread(lq_dir / "field_002.tif"),
        metadata={"axes": "CYX"},
        photometric="minisblack",
    )
    out = tmp_path / "out"
    run = _pairscope("enhance", "--model", model_dir, "--out", out, lq_dir, extra, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "5 of 6 enhanced image(s) written" in run.stdout
    assert "failed" in run.stdout and "broken.tif: not a readable TIFF" in run.stdout
    assert _quiet(run.stderr), run.stderr
    written = [f"field_00{i}_enhanced.ome.tif" for i in range(4)] + ["other_enhanced.ome.tif"]
    assert _listing(out) == written

    one = _pairscope(
        "enhance", "--model", model_dir, lq_dir / "field_000.tif", "one.ome.tif", cwd=tmp_path
    )
    assert one.returncode == 0 and _quiet(one.stderr), one.stderr
    assert tifffile.imread(tmp_path / "one.ome.tif").shape == (3, 64, 64)


def test_command_line_usage_errors_exit_2(cli_model, tmp_path):
    model_dir, lq_dir = cli_model
    cases = {
        "no such file or folder": ("--out", "o", tmp_path / "missing"),
        "a folder; give --out FOLDER": (lq_dir, "x.tif"),
        "one input and its output file": (lq_dir / "field_000.tif",),
        "no such model": ("--out", "o", lq_dir),
    }
    for message, args in cases.items():
        model = tmp_path / "nothing" if message == "no such model" else model_dir
        run = _pairscope("enhance", "--model", model, *args, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, (message, run.stderr)
        assert run.stderr.strip().count("\n") == 0, run.stderr
    missing = _pairscope("train-local", "--lq", "nope", "--hq", lq_dir, "--out", "m", cwd=tmp_path)
    assert missing.returncode == 2 and "nope: the LQ folder does not exist" in missing.stderr


def test_command_line_train_local_is_quiet(tmp_path):
    lq_dir, hq_dir = _write_pairs(tmp_path, n=2)
    run = _pairscope(
        "train-local",
        *("--lq", lq_dir, "--hq", hq_dir, "--out", tmp_path / "m", "--preset", "tiny"),
        *("--steps", "2"),
        cwd=tmp_path,
    )
    assert run.returncode == 0 and _quiet(run.stderr), run.stderr
    assert (tmp_path / "m" / "metadata.json").exists()
