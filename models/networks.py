"""Generator and discriminator builders (paper §2, Fig. 1, eq. 1–4).

Both builders take the Keras dtype policy explicitly (``"float32"``, ``"mixed_bfloat16"``,
``"mixed_float16"``) instead of relying on the global policy, so a float32 and a mixed model can
live in one process. Under a mixed policy the last convolution, the final activation, the residual
output and the discriminator's logit layer compute in float32.

Weights are initialised from seeds derived from ``seed`` (one per layer), so two builds with the
same seed are identical without touching global random state.
"""

from __future__ import annotations

import itertools

import keras
import tensorflow as tf
from keras import layers

from .config import Config


class _Seeds:
    def __init__(self, seed: int) -> None:
        self._c = itertools.count()
        self._base = int(seed) * 10_007

    def conv(self) -> keras.initializers.Initializer:
        return keras.initializers.HeUniform(seed=self._base + next(self._c))

    def glorot(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=self._base + next(self._c))


@keras.saving.register_keras_serializable(package="pairscope")
class SpaceToDepth(layers.Layer):
    """``(N, H, W, C) -> (N, H/b, W/b, b·b·C)``: each ``b × b`` pixel block becomes channels."""

    def __init__(self, block: int = 2, **kw) -> None:
        super().__init__(**kw)
        self.block = int(block)

    def call(self, x):
        return tf.nn.space_to_depth(x, self.block)

    def get_config(self) -> dict:
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="pairscope")
class DepthToSpace(layers.Layer):
    """The inverse of :class:`SpaceToDepth`."""

    def __init__(self, block: int = 2, **kw) -> None:
        super().__init__(**kw)
        self.block = int(block)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block)

    def get_config(self) -> dict:
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="pairscope")
class FoldChannels(layers.Layer):
    """``(N, H, W, C) -> (N·C, H, W, 1)``: every channel becomes an image of its own."""

    def call(self, x):
        shape = tf.shape(x)
        folded = tf.transpose(x, (0, 3, 1, 2))
        return tf.reshape(folded, (shape[0] * shape[3], shape[1], shape[2], 1))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (None if n is None or c is None else n * c, h, w, 1)


@keras.saving.register_keras_serializable(package="pairscope")
class UnfoldChannels(layers.Layer):
    """The inverse of :class:`FoldChannels` for ``channels`` channels."""

    def __init__(self, channels: int = 1, **kw) -> None:
        super().__init__(**kw)
        self.channels = int(channels)

    def call(self, x):
        shape = tf.shape(x)
        unfolded = tf.reshape(x, (-1, self.channels, shape[1], shape[2]))
        return tf.transpose(unfolded, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        return (None if n is None else n // self.channels, h, w, self.channels)

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}


def _filters(base: int, level: int, cap: int) -> int:
    return int(min(base * 2**level, cap))


def build_generator(
    config: Config,
    n_channels: int,
    policy: str = "float32",
    seed: int | None = None,
    input_hw: tuple[int, int] | None = None,
) -> keras.Model:
    """The residual U-Net generator (paper eq. 3–4).

    ``depth`` down-sampling blocks, each ``convs_per_block`` × [Conv2D 3×3 + LeakyReLU] plus the
    block input added through a 1×1 convolution (the channel count changes, so the identity of
    eq. 3 needs a projection), followed by 2×2 average pooling; a bottom block; ``depth``
    up-sampling blocks (up-sample, concatenate the skip, ``convs_per_block`` × [Conv2D +
    LeakyReLU]); a final 1×1 convolution to ``n_channels`` (+ LeakyReLU as in the paper when
    ``final_activation == "leaky_relu"``), and, with ``residual_output``, the input added to the
    result. Fully convolutional: any spatial size that is a multiple of ``config.multiple``
    (``input_hw`` fixes the spatial size, e.g. to count FLOPs with :func:`conv_flops`).

    With ``stem == "space_to_depth"`` the U-Net above runs on the image rearranged into 2 × 2
    pixel blocks (4·C channels at half resolution) and its final convolution produces 4·C
    channels that are rearranged back to full resolution before the activation and the residual
    addition (a cheaper full-resolution stage, as in FFDNet).

    With ``per_channel`` (and more than one channel) all of the above is the single-channel
    network, with the same layer names and shapes as a single-channel base, applied to every
    channel on its own: the channels are folded into the batch in front of it and unfolded
    behind it (:class:`FoldChannels`), so each channel's correction sees only that channel.
    """
    seeds = _Seeds(config.seed if seed is None else seed)
    slope = config.leaky_slope

    def conv_block(x, f, n, name):
        for i in range(n):
            x = layers.Conv2D(
                f,
                3,
                padding="same",
                kernel_initializer=seeds.conv(),
                dtype=policy,
                name=f"{name}_conv{i}",
            )(x)
            x = layers.LeakyReLU(negative_slope=slope, dtype=policy, name=f"{name}_act{i}")(x)
        return x

    hw = (None, None) if input_hw is None else tuple(int(v) for v in input_hw)
    inp = keras.Input(shape=(*hw, n_channels), name="lq")
    fold = config.per_channel and n_channels > 1
    image = FoldChannels(dtype="float32", name="fold_channels")(inp) if fold else inp
    channels = 1 if fold else n_channels
    s2d = config.stem == "space_to_depth"
    x = SpaceToDepth(2, dtype=policy, name="stem_s2d")(image) if s2d else image
    skips = []
    for level in range(config.depth):
        f = _filters(config.base_filters, level, config.max_filters)
        h = conv_block(x, f, config.convs_per_block, f"down{level}")
        r = layers.Conv2D(
            f, 1, kernel_initializer=seeds.glorot(), dtype=policy, name=f"down{level}_proj"
        )(x)
        h = layers.Add(dtype=policy, name=f"down{level}_res")([h, r])
        skips.append(h)
        x = layers.AveragePooling2D(2, dtype=policy, name=f"down{level}_pool")(h)
    f = _filters(config.base_filters, config.depth, config.max_filters)
    x = conv_block(x, f, config.convs_per_block, "bottom")
    for level in reversed(range(config.depth)):
        f = _filters(config.base_filters, level, config.max_filters)
        x = layers.UpSampling2D(
            2, interpolation=config.upsampling, dtype=policy, name=f"up{level}_upsample"
        )(x)
        x = layers.Concatenate(dtype=policy, name=f"up{level}_concat")([x, skips[level]])
        x = conv_block(x, f, config.convs_per_block, f"up{level}")
    out = layers.Conv2D(
        channels * (4 if s2d else 1),
        1,
        kernel_initializer=seeds.glorot(),
        dtype="float32",
        name="final_conv",
    )(x)
    if s2d:
        out = DepthToSpace(2, dtype="float32", name="stem_d2s")(out)
    if config.final_activation == "leaky_relu":
        out = layers.LeakyReLU(negative_slope=slope, dtype="float32", name="final_act")(out)
    if config.residual_output:
        out = layers.Add(dtype="float32", name="residual_output")([out, image])
    if fold:
        out = UnfoldChannels(n_channels, dtype="float32", name="unfold_channels")(out)
    return keras.Model(inp, out, name="generator")


def discriminator_strides(config: Config, patch_size: int | None = None) -> list[int]:
    """Stride of each of the ``disc_blocks`` blocks (applied in its first convolution).

    The published code strides by 2 in every convolution, which shrinks a 256² patch to 1×1
    within two of the ten blocks, so most of the network then sees a single pixel and the 4×4
    average pooling has nothing to pool. Here a block halves the feature map (stride 2 in its
    first convolution) only while the map is larger than 8×8; the remaining blocks keep the
    8×8 resolution and add depth. A 128² patch is thus reduced by 4 blocks and a 256² patch by 5,
    and the 4×4 average pooling always sees an 8×8 map and hands a 2×2 map to the dense layers,
    which keeps the description of eq. 1 (ten blocks, pooling, two dense layers) meaningful for
    both patch sizes.
    """
    size = config.patch_size if patch_size is None else patch_size
    strides = []
    for _ in range(config.disc_blocks):
        if size > 8:
            strides.append(2)
            size = (size + 1) // 2
        else:
            strides.append(1)
    return strides


def build_discriminator(
    config: Config,
    n_channels: int,
    policy: str = "float32",
    patch_size: int | None = None,
    seed: int | None = None,
) -> keras.Model:
    """The discriminator (paper eq. 1): a first convolution, ``disc_blocks`` blocks of
    ``disc_convs_per_block`` × [Conv2D 3×3 + LeakyReLU 0.1], 4×4 average pooling, two dense layers.

    Returns **logits** (the sigmoid of eq. 5 is applied inside the numerically stable
    loss, :func:`models.losses.relativistic_bce`). See :func:`discriminator_strides` for the
    choice of strides.
    """
    seeds = _Seeds((config.seed if seed is None else seed) + 7919)
    size = config.patch_size if patch_size is None else patch_size
    slope = config.leaky_slope
    inp = keras.Input(shape=(size, size, n_channels), name="image")
    x = layers.Conv2D(
        config.disc_filters,
        3,
        padding="same",
        kernel_initializer=seeds.conv(),
        dtype=policy,
        name="first_conv",
    )(inp)
    x = layers.LeakyReLU(negative_slope=slope, dtype=policy, name="first_act")(x)
    n_down = 0
    for b, stride in enumerate(discriminator_strides(config, size)):
        n_down += stride == 2
        f = _filters(config.disc_filters, n_down, config.disc_max_filters)
        for i in range(config.disc_convs_per_block):
            x = layers.Conv2D(
                f,
                3,
                strides=stride if i == 0 else 1,
                padding="same",
                kernel_initializer=seeds.conv(),
                dtype=policy,
                name=f"block{b}_conv{i}",
            )(x)
            x = layers.LeakyReLU(negative_slope=slope, dtype=policy, name=f"block{b}_act{i}")(x)
    x = layers.AveragePooling2D(4, padding="same", dtype=policy, name="pool")(x)
    x = layers.Flatten(dtype=policy, name="flatten")(x)
    x = layers.Dense(
        config.disc_dense_units, kernel_initializer=seeds.glorot(), dtype=policy, name="dense"
    )(x)
    x = layers.LeakyReLU(negative_slope=slope, dtype=policy, name="dense_act")(x)
    logits = layers.Dense(1, kernel_initializer=seeds.glorot(), dtype="float32", name="logit")(x)
    return keras.Model(inp, logits, name="discriminator")


def receptive_field_margin(config: Config) -> int:
    """Pixels on each side of an output pixel that can influence it (the theoretical margin).

    Walks the deepest path of the U-Net: every 3×3 convolution adds one pixel at the current
    scale, every 2×2 average pooling one pixel at the finer scale, every up-sampling one pixel at
    the coarser scale (nearest-neighbour rounding, or the bilinear support). A tile whose
    borders lie at least this far from the pixels taken from it reproduces the whole-image
    prediction up to floating-point rounding. A ``space_to_depth`` stem doubles the margin
    (plus one pixel for the 2 × 2 block).
    """
    r, j = 0, 1
    for _ in range(config.depth):
        r += config.convs_per_block * j
        r += j  # 2x2 pooling window
        j *= 2
    r += config.convs_per_block * j
    for _ in range(config.depth):
        r += j  # up-sampling rounding / support at the coarse scale
        j //= 2
        r += config.convs_per_block * j
    if config.stem == "space_to_depth":
        r = 2 * r + 1
    return int(r)


def conv_flops(model: keras.Model) -> int:
    """Floating-point operations (2 per multiply-add) of the convolutions and dense layers of a
    model built with static spatial shapes (``build_generator(..., input_hw=...)`` or the
    discriminator), for one image; element-wise layers are not counted. A per-channel
    generator runs its network once per channel, so its count is multiplied by the channels."""
    total = 0
    folded = [layer for layer in model.layers if isinstance(layer, FoldChannels)]
    passes = int(model.input_shape[-1]) if folded else 1
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            if h is None or w is None:
                raise ValueError("conv_flops needs a model with static spatial shapes")
            total += 2 * int(kh) * int(kw) * int(cin) * int(cout) * int(h) * int(w)
        elif isinstance(layer, layers.Dense):
            cin, cout = layer.kernel.shape
            total += 2 * int(cin) * int(cout)
    return int(total) * passes


def count_params(model: keras.Model) -> int:
    """Number of weights (trainable and not) of a built model."""
    return int(model.count_params())
