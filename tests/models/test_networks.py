import numpy as np
import pytest

from models.config import Config
from models.networks import (
    build_discriminator,
    build_generator,
    conv_flops,
    count_params,
    discriminator_strides,
    receptive_field_margin,
)


def expected_generator_params(c: Config, n: int) -> int:
    f = [min(c.base_filters * 2**level, c.max_filters) for level in range(c.depth + 1)]
    s2d = c.stem == "space_to_depth"
    n_in = n_out = 4 * n if s2d else n
    total, cin = 0, n_in
    for level in range(c.depth):
        fl = f[level]
        total += 9 * cin * fl + fl + (c.convs_per_block - 1) * (9 * fl * fl + fl)
        total += cin * fl + fl  # 1x1 residual projection
        cin = fl
    fb = f[c.depth]
    total += 9 * cin * fb + fb + (c.convs_per_block - 1) * (9 * fb * fb + fb)
    prev = fb
    for level in reversed(range(c.depth)):
        fl = f[level]
        total += 9 * (prev + fl) * fl + fl + (c.convs_per_block - 1) * (9 * fl * fl + fl)
        prev = fl
    return total + f[0] * n_out + n_out


def expected_discriminator_params(c: Config, n: int) -> int:
    df = c.disc_filters
    total, cin, n_down = 9 * n * df + df, df, 0
    for s in discriminator_strides(c):
        n_down += s == 2
        fb = min(df * 2**n_down, c.disc_max_filters)
        total += 9 * cin * fb + fb + (c.disc_convs_per_block - 1) * (9 * fb * fb + fb)
        cin = fb
    return total + 4 * cin * c.disc_dense_units + c.disc_dense_units + c.disc_dense_units + 1


@pytest.mark.parametrize("preset", ["tiny", "cpu-small", "paper"])
def test_generator_shape_and_parameter_count(preset):
    c = Config.preset(preset)
    g = build_generator(c, 3)
    assert count_params(g) == expected_generator_params(c, 3)
    if preset == "tiny":
        x = np.random.default_rng(0).random((2, 48, 64, 3), dtype=np.float32)
        assert g(x).shape == (2, 48, 64, 3)


def test_space_to_depth_stem_shape_count_and_flops():
    c = Config.preset("tiny", stem="space_to_depth")
    assert c.multiple == 2 ** (c.depth + 1)
    g = build_generator(c, 3)
    assert count_params(g) == expected_generator_params(c, 3)
    x = np.random.default_rng(0).random((2, 48, 64, 3), dtype=np.float32)
    assert g(x).shape == (2, 48, 64, 3)
    full = build_generator(Config.preset("tiny"), 3, input_hw=(64, 64))
    half = build_generator(c, 3, input_hw=(64, 64))
    # the stem runs the same U-Net on a quarter of the pixels (4x the input/output channels)
    assert conv_flops(half) < conv_flops(full) / 2
    with pytest.raises(ValueError, match="patch_size"):
        Config.preset("tiny", stem="space_to_depth", patch_size=36)


def test_conv_flops_counts_multiply_adds_twice():
    c = Config.preset("tiny", depth=1, convs_per_block=1, base_filters=2, max_filters=2)
    g = build_generator(c, 1, input_hw=(8, 8))
    # down0: 3x3 1->2 at 8², proj 1x1 1->2; bottom 3x3 2->2 at 4²; up0 3x3 4->2 at 8²; final 2->1
    macs = 64 * 9 * 1 * 2 + 64 * 1 * 2 + 16 * 9 * 2 * 2 + 64 * 9 * 4 * 2 + 64 * 2 * 1
    assert conv_flops(g) == 2 * macs
    # a per-channel generator runs that network once per channel
    per_channel = build_generator(c.with_overrides(per_channel=True), 3, input_hw=(8, 8))
    assert conv_flops(per_channel) == 3 * 2 * macs


@pytest.mark.parametrize(
    "preset,patch,n_strided",
    [("tiny", 32, 2), ("cpu-small", 128, 4), ("paper", 256, 5), ("paper", 128, 4)],
)
def test_discriminator_shape_strides_and_count(preset, patch, n_strided):
    c = Config.preset(preset, patch_size=patch)
    strides = discriminator_strides(c)
    assert len(strides) == c.disc_blocks
    assert sum(s == 2 for s in strides) == n_strided
    assert patch // 2**n_strided == 8
    d = build_discriminator(c, 3)
    assert count_params(d) == expected_discriminator_params(c, 3)
    pool = d.get_layer("pool")
    assert tuple(pool.input.shape[1:3]) == (8, 8)
    assert tuple(pool.output.shape[1:3]) == (2, 2)
    if preset == "tiny":
        x = np.zeros((4, patch, patch, 3), np.float32)
        assert d(x).shape == (4, 1)


@pytest.mark.parametrize(
    "depth,convs,stem", [(2, 1, "none"), (3, 2, "none"), (2, 1, "space_to_depth")]
)
def test_receptive_field_margin_bounds_the_influence(depth, convs, stem):
    c = Config.preset(
        "tiny",
        depth=depth,
        convs_per_block=convs,
        base_filters=4,
        max_filters=16,
        patch_size=32,
        stem=stem,
    )
    g = build_generator(c, 1)
    m = receptive_field_margin(c)
    size = 2 * m + 64
    size += (-size) % c.multiple
    x0 = np.zeros((1, size, size, 1), np.float32)
    x1 = x0.copy()
    cy = cx = size // 2
    x1[0, cy, cx, 0] = 1.0
    diff = np.abs(np.asarray(g(x1)) - np.asarray(g(x0)))[0, ..., 0]
    ys, xs = np.nonzero(diff > 0)
    reach = max(np.abs(ys - cy).max(), np.abs(xs - cx).max())
    assert reach <= m
    assert reach >= m // 2  # the bound is not wildly loose


def test_mixed_policy_keeps_output_float32():
    c = Config.preset("tiny")
    g = build_generator(c, 3, policy="mixed_bfloat16")
    d = build_discriminator(c, 3, policy="mixed_bfloat16")
    assert g.get_layer("final_conv").compute_dtype == "float32"
    assert g.get_layer("residual_output").compute_dtype == "float32"
    assert g.get_layer("down0_conv0").compute_dtype == "bfloat16"
    assert g.get_layer("down0_conv0").variable_dtype == "float32"
    assert d.get_layer("logit").compute_dtype == "float32"
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert g(x).dtype.name == "float32" and d(x).dtype.name == "float32"


def test_same_seed_same_weights():
    c = Config.preset("tiny")
    a, b = build_generator(c, 2), build_generator(c, 2)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    other = build_generator(c.with_overrides(seed=1), 2)
    assert not np.array_equal(a.get_weights()[0], other.get_weights()[0])
