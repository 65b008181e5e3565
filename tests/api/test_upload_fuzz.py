"""Damaged TIFF and OME-TIFF files, uploaded through the real route, never make a 5xx: each
answer is a success (201, or 200 for bytes already stored) or a 4xx in the error shape, and a
4xx leaves no row and no object behind.

Hypothesis mutates valid files — bit flips, truncation, tag values, image dimensions, strip
and tile offsets, compression codes, OME-XML sizes. UPLOAD_FUZZ_EXAMPLES raises the number of
inputs (`make fuzz`); the run prints how many it tried."""

from __future__ import annotations

import io
import os
import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given
from hypothesis import settings as run_with
from hypothesis import strategies as st

from api.openapi_responses import ErrorResponse
from api.settings import Settings
from tests.api.conftest import Network
from tests.api.test_ingest import stored_files, upload
from tests.api.test_registry import row_counts

EXAMPLES = int(os.environ.get("UPLOAD_FUZZ_EXAMPLES", "60"))
TRIED: Counter[str] = Counter()

# Tags whose values shape how a reader walks the file.
TAGS = (
    "ImageWidth",
    "ImageLength",
    "BitsPerSample",
    "Compression",
    "PhotometricInterpretation",
    "StripOffsets",
    "SamplesPerPixel",
    "RowsPerStrip",
    "StripByteCounts",
    "PlanarConfiguration",
    "TileWidth",
    "TileLength",
    "TileOffsets",
    "TileByteCounts",
    "SampleFormat",
    "Predictor",
)
# Compression codes: none, LZW, JPEG, deflate, PackBits, LZMA, zstd, JPEG 2000, and nonsense.
COMPRESSIONS = (1, 5, 7, 8, 32773, 34925, 50000, 34712, 2, 65535)
EDGE_VALUES = (0, 1, 2, 3, 255, 256, 65535, 2**31 - 1, 2**32 - 1)


def _tiff(array: np.ndarray, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    tifffile.imwrite(out, array, **kwargs)
    return out.getvalue()


def _seeds() -> dict[str, bytes]:
    """Small valid files the wide-field microscope (3 channels) accepts, in several layouts."""
    rng = np.random.default_rng(0)
    cyx = rng.integers(0, 4000, (3, 32, 48), dtype=np.uint16)
    return {
        "plain": _tiff(cyx, photometric="minisblack"),
        "deflate": _tiff(cyx, photometric="minisblack", compression="zlib", predictor=True),
        "lzw-tiled": _tiff(cyx, photometric="minisblack", compression="lzw", tile=(16, 16)),
        "ome": _tiff(
            cyx.astype(np.float32),
            ome=True,
            metadata={"axes": "CYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1},
        ),
        "ome-zstack": _tiff(
            rng.integers(0, 255, (2, 3, 16, 16), dtype=np.uint8),
            ome=True,
            metadata={"axes": "ZCYX", "PhysicalSizeZ": 0.3},
        ),
    }


SEEDS = _seeds()
Layout = dict[str, tuple[int, int, int]]


def _layout(content: bytes) -> Layout:
    """Where each tag's value sits in a seed's first IFD: offset, item size, item count (read
    from the intact seed, so earlier damage cannot hide later targets)."""
    page = tifffile.TiffFile(io.BytesIO(content)).pages[0]
    layout = {}
    for tag in page.tags.values():
        size = struct.calcsize(tifffile.TIFF.DATA_FORMATS[tag.dtype][-1])
        if size in (1, 2, 4, 8):
            layout[tag.name] = (tag.valueoffset, size, max(1, tag.count))
    return layout


LAYOUTS = {name: _layout(content) for name, content in SEEDS.items()}


@dataclass(frozen=True)
class TagEdit:
    tag: str
    index: int
    value: int

    def apply(self, data: bytearray, layout: Layout) -> None:
        if self.tag not in layout:
            return
        offset, size, count = layout[self.tag]
        offset += (self.index % count) * size
        if offset + size <= len(data):
            data[offset : offset + size] = (self.value % 2 ** (8 * size)).to_bytes(size, "little")


@dataclass(frozen=True)
class BitFlips:
    positions: tuple[int, ...]

    def apply(self, data: bytearray, layout: Layout) -> None:
        for position in self.positions:
            data[position % len(data)] ^= 1 << (position % 8)


@dataclass(frozen=True)
class Truncate:
    fraction: float

    def apply(self, data: bytearray, layout: Layout) -> None:
        del data[int(len(data) * self.fraction) :]


@dataclass(frozen=True)
class OmeText:
    old: bytes
    new: bytes

    def apply(self, data: bytearray, layout: Layout) -> None:
        at = data.find(self.old)
        if at >= 0:  # same length keeps every offset valid: only the XML's meaning changes
            data[at : at + len(self.old)] = self.new.ljust(len(self.old))[: len(self.old)]


values = st.one_of(st.sampled_from(EDGE_VALUES), st.integers(0, 2**32 - 1))
mutations = st.one_of(
    st.builds(TagEdit, st.sampled_from(TAGS), st.integers(0, 8), values),
    st.builds(TagEdit, st.just("Compression"), st.just(0), st.sampled_from(COMPRESSIONS)),
    st.builds(TagEdit, st.sampled_from(("ImageWidth", "ImageLength")), st.just(0), values),
    st.builds(
        TagEdit,
        st.sampled_from(("StripOffsets", "TileOffsets", "StripByteCounts", "TileByteCounts")),
        st.integers(0, 8),
        values,
    ),
    st.builds(BitFlips, st.lists(st.integers(0, 2**20), min_size=1, max_size=16).map(tuple)),
    st.builds(Truncate, st.floats(0, 0.999)),
    st.builds(
        OmeText,
        st.sampled_from((b'SizeC="3"', b'SizeX="48"', b'SizeZ="2"', b'PhysicalSizeX="0.1"')),
        st.sampled_from((b'SizeC="7"', b'SizeX="0"', b'SizeZ="9"', b'SizeC="-1"', b'X="nan"')),
    ),
)


@pytest.fixture
def pairing(network: Network) -> int:
    return network.ids["pairing"]


@run_with(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("UPLOAD_FUZZ_EXAMPLES") is None,  # CI: the same inputs each run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(mutations, min_size=1, max_size=3),
)
def test_damaged_uploads_answer_4xx_and_leave_nothing(
    network: Network, settings: Settings, pairing: int, seed: str, edits: list
) -> None:
    data = bytearray(SEEDS[seed])
    for edit in edits:
        if data:
            edit.apply(data, LAYOUTS[seed])
    rows, files = row_counts(settings), stored_files(settings)
    field = f"fuzz-{sum(TRIED.values())}"
    response = upload(network, pairing, "lq", bytes(data), field_id=field)
    TRIED[str(response.status_code)] += 1
    assert response.status_code < 500, response.text
    if response.status_code in (200, 201):
        return
    assert 400 <= response.status_code < 500, response.status_code
    error = ErrorResponse.model_validate(response.json()).error
    assert error.status == response.status_code and error.message
    assert row_counts(settings) == rows, "a refused upload left a row"
    assert stored_files(settings) == files, "a refused upload left an object"


def test_the_seeds_themselves_are_accepted(network: Network, pairing: int) -> None:
    """The mutations start from files the service takes, so a 4xx is the damage's doing."""
    for name, content in SEEDS.items():
        response = upload(network, pairing, "lq", content, field_id=f"seed-{name}")
        assert response.status_code == 201, (name, response.text)


def teardown_module() -> None:
    total = sum(TRIED.values())
    by_status = ", ".join(f"{status}: {n}" for status, n in sorted(TRIED.items()))
    print(f"\nupload fuzz: {total} damaged inputs tried ({by_status})")
