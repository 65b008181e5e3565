"""One reader, one answer: every kind of TIFF goes through the service's upload route, the
worker's read of a stored image and `pairscope enhance`'s reader, and all three agree on its
canonical axes, shape and pixel size, or refuse it with the same words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from api.storage import LocalStore
from api.tables import Image
from models.cli_science import ScienceInputError, read_input_image
from models.image_io import InvalidImage, read_image
from pairscope.testing.flow import CHANNELS, microscope_body
from tests.api.conftest import Network
from tests.api.test_ingest import tiff_bytes, upload, zero_width
from worker.alignment import _load as worker_load


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], bytes]
    channels: int  # of the microscope that takes the upload, and of the model that enhances it
    axes: str | None = None  # the answer for an accepted file ...
    shape: tuple[int, ...] | None = None
    pixel_size_um: float | None = None
    refusal: str | None = None  # ... or the words of the refusal


u16 = np.uint16
CASES = [
    Case("plain 2-D", lambda: tiff_bytes(np.ones((64, 48), u16)), 1, "CYX", (1, 64, 48)),
    Case(
        "CYX",
        lambda: tiff_bytes(
            np.ones((3, 64, 48), u16), metadata={"axes": "CYX"}, photometric="minisblack"
        ),
        3,
        "CYX",
        (3, 64, 48),
    ),
    Case(
        "ZCYX",
        lambda: tiff_bytes(
            np.ones((4, 3, 32, 40), u16), metadata={"axes": "ZCYX"}, photometric="minisblack"
        ),
        3,
        "ZCYX",
        (4, 3, 32, 40),
    ),
    Case(
        "unnamed axis of the channel count",
        lambda: tiff_bytes(np.ones((3, 32, 32), u16), photometric="minisblack"),
        3,
        "CYX",
        (3, 32, 32),
    ),
    Case(
        "unnamed axis of another length is Z",
        lambda: tiff_bytes(np.ones((5, 32, 32), u16), photometric="minisblack"),
        1,
        "ZCYX",
        (5, 1, 32, 32),
    ),
    Case(
        "RGB, samples interleaved (YXS)",
        lambda: tiff_bytes(np.ones((32, 40, 3), np.uint8), photometric="rgb"),
        3,
        "CYX",
        (3, 32, 40),
    ),
    Case(
        "ImageJ hyperstack with pixel size",
        lambda: tiff_bytes(
            np.ones((2, 3, 32, 32), u16),
            imagej=True,
            resolution=(1 / 0.25, 1 / 0.25),
            metadata={"axes": "ZCYX", "unit": "um", "spacing": 0.5},
        ),
        3,
        "ZCYX",
        (2, 3, 32, 32),
        0.25,
    ),
    Case(
        "OME-TIFF with pixel size",
        lambda: tiff_bytes(
            np.ones((3, 32, 32), np.float32),
            ome=True,
            metadata={"axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm"},
        ),
        3,
        "CYX",
        (3, 32, 32),
        0.2,
    ),
    Case(
        "single time point",
        lambda: tiff_bytes(
            np.ones((1, 3, 32, 32), u16), metadata={"axes": "TCYX"}, photometric="minisblack"
        ),
        3,
        "CYX",
        (3, 32, 32),
    ),
    Case(
        "time series",
        lambda: tiff_bytes(
            np.ones((4, 3, 32, 32), u16), metadata={"axes": "TCYX"}, photometric="minisblack"
        ),
        3,
        refusal="time series are not supported (4 time points)",
    ),
    Case(
        "channels of RGB samples",
        lambda: tiff_bytes(np.ones((3, 32, 32, 3), np.uint8), imagej=True, photometric="rgb"),
        3,
        refusal="3 interleaved samples per pixel",
    ),
    Case(
        "one pixel high",
        lambda: tiff_bytes(
            np.ones((3, 1, 64), u16), metadata={"axes": "CYX"}, photometric="minisblack"
        ),
        3,
        refusal="the image is 1x64 pixels (height x width); at least 16x16 are needed",
    ),
    Case("zero width", zero_width, 1, refusal="zero-sized axis"),
    Case("empty file", lambda: b"", 3, refusal="the file is empty"),
    Case("not a TIFF", lambda: b"plain text, no image", 3, refusal="not a readable TIFF"),
    Case(
        "truncated",
        lambda: tiff_bytes(
            np.ones((3, 64, 64), u16), metadata={"axes": "CYX"}, photometric="minisblack"
        )[:-2000],
        3,
        refusal="the file is truncated",
    ),
    Case(
        "float64 pixels",
        lambda: tiff_bytes(
            np.ones((3, 32, 32), np.float64), metadata={"axes": "CYX"}, photometric="minisblack"
        ),
        3,
        refusal="pixel type float64 is not supported",
    ),
]


def pairing_with(network: Network, channels: int) -> int:
    """The network's 3-channel pairing, or a new one between microscopes of ``channels``."""
    if channels == len(CHANNELS):
        return network.ids["pairing"]
    ids = [
        network.call(
            "POST",
            "/api/v1/microscopes",
            json=microscope_body(network.ids[who], f"{who} {channels}ch", kind)
            | {"channels": CHANNELS[:channels]},
        ).json()["id"]
        for who, kind in (("lab", "widefield"), ("partner", "confocal"))
    ]
    response = network.call(
        "POST",
        "/api/v1/pairings",
        json={"name": f"{channels}ch", "lq_microscope_id": ids[0], "hq_microscope_id": ids[1]},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def read_by_worker(path: Path, axes: str, shape: list[int], folder: Path) -> np.ndarray:
    """The worker's read of a stored upload, given the image record the service keeps."""
    store = LocalStore(folder / "objects")
    with path.open("rb") as stream:
        stored = store.put("upload.tif", stream)
    record = Image(object_key=stored.key, sha256=stored.sha256, axes=axes, shape=shape)
    return worker_load(store, record, folder)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_entry_point_gives_one_answer(network: Network, tmp_path: Path, case: Case) -> None:
    path = tmp_path / "field.tif"
    path.write_bytes(case.make())
    response = upload(network, pairing_with(network, case.channels), "lq", path.read_bytes())

    if case.refusal is not None:
        assert response.status_code == 422, response.text
        service = response.json()["error"]["message"].removeprefix("field_001.tif: ")
        with pytest.raises(InvalidImage) as worker:  # a record as if the file had been stored
            read_by_worker(path, "CYX", [case.channels, 16, 16], tmp_path)
        with pytest.raises(ScienceInputError) as cli:
            read_input_image(path, channels=case.channels)
        answers = {service, str(worker.value), str(cli.value).removeprefix(f"{path}: ")}
        assert len(answers) == 1, answers
        assert case.refusal in service, service
        assert "Error" not in service, f"the message shows the parser's internals: {service}"
        return

    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["axes"], tuple(record["shape"])) == (case.axes, case.shape)
    from_worker = read_by_worker(path, record["axes"], record["shape"], tmp_path)
    from_cli, cli_axes = read_input_image(path, channels=case.channels)
    assert from_worker.shape == from_cli.shape == case.shape and cli_axes == case.axes
    assert np.array_equal(from_worker, from_cli)
    if case.pixel_size_um is None:
        assert record["pixel_size_source"] == "microscope"
    else:
        assert record["pixel_size_um"] == pytest.approx(case.pixel_size_um)
        assert read_image(path)[1].pixel_size_um == pytest.approx(case.pixel_size_um)
