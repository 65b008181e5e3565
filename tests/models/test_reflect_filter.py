"""The cosine-transform filters are scipy's filters with ``mode="reflect"`` (to float32 rounding),
on even, odd and tiny planes, one kernel or several in a row, and for a stack of planes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from models import reflect_filter as rf


def _scipy(x: np.ndarray, name: str) -> np.ndarray:
    x = x.astype(np.float64)
    if name == "gauss 2":
        return ndimage.gaussian_filter(x, 2.0, mode="reflect")
    if name == "gauss 0.6 then 2":
        once = ndimage.gaussian_filter(x, 0.6, mode="reflect")
        return ndimage.gaussian_filter(once, 2.0, mode="reflect")
    if name == "immerkaer":
        h = ndimage.convolve1d(x, [1.0, -2.0, 1.0], axis=0, mode="reflect")
        return ndimage.convolve1d(h, [1.0, -2.0, 1.0], axis=1, mode="reflect")
    return ndimage.uniform_filter(x, int(name.split()[1]), mode="reflect")


FILTERS = {
    "gauss 2": (rf.gaussian_kernel(2.0),),
    "gauss 0.6 then 2": (rf.gaussian_kernel(0.6), rf.gaussian_kernel(2.0)),
    "immerkaer": (rf.IMMERKAER,),
    "box 5": (rf.box_kernel(5),),
    "box 7": (rf.box_kernel(7),),
}


@pytest.mark.parametrize("shape", [(64, 64), (37, 50), (5, 7)])
def test_filters_are_scipys_with_reflecting_edges(shape):
    x = np.random.default_rng(0).gamma(2.0, 1.0, shape)
    got = rf.filtered(x, list(FILTERS.values()))
    for name, g in zip(FILTERS, got, strict=True):
        want = _scipy(x, name)
        assert g.dtype == np.float32 and g.shape == shape
        assert np.max(np.abs(g - want)) <= 2e-6 * np.max(np.abs(want)), name


def test_a_stack_is_filtered_plane_by_plane():
    x = np.random.default_rng(1).random((3, 40, 30)).astype(np.float32)
    (got,) = rf.filtered(x, [FILTERS["gauss 2"]])
    for plane, g in zip(x, got, strict=True):
        assert np.allclose(g, _scipy(plane, "gauss 2"), rtol=0, atol=2e-6)


def test_kernels_are_scipys():
    assert rf.gaussian_kernel(0.1) == (1.0,)  # radius 0: scipy leaves the image as it is
    k = np.asarray(rf.gaussian_kernel(1.3))
    delta = np.zeros(31)
    delta[15] = 1.0
    want = ndimage.gaussian_filter1d(delta, 1.3, mode="constant")
    assert np.allclose(k, want[15 - k.size // 2 : 15 + k.size // 2 + 1], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="odd"):
        rf.box_kernel(4)
    with pytest.raises(ValueError, match="symmetric"):
        rf.filtered(np.ones((8, 8)), [((0.2, 0.3, 0.5),)])
