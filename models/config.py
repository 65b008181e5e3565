"""Validated, JSON-serialisable training and network configuration.

``Config`` is a frozen dataclass: every field is checked on construction, an unknown key or a bad
value raises ``ValueError`` naming the key. Presets:

``paper``
    The published set-up (Panek et al.): 256² patches, 64 base filters, 4 levels with 3
    convolutions each, paper discriminator (10 blocks of 4 convolutions), Adam at a constant 1e-5,
    loss weights with MSE + SSIM making up 10 % of the total weight (α = β = 0.05, γ = 0.9).
    Meant for GPU workers.
``cpu-small``
    What trains the best model on two CPU cores within 15 minutes, chosen by measurement on the
    validation fields of the W2S benchmark (``docs/benchmarks.md``): a 1.97 M-parameter residual
    U-Net (16 base filters, 4 levels, 2 convolutions per block, full-resolution first level),
    MSE + 0.1 · (1 − SSIM), Adam with a cosine learning rate from 2e-3 keyed to the wall-clock
    budget, a moving average of the weights for validation and the kept model, 8 × 128²
    patches, HQ targets fitted to their LQ input's intensity scale (``fit_target_to_input``,
    the default everywhere: +1.2 dB on validation), the best validation weights kept. The
    generator alone (γ = 0): with a light adversarial term (γ = 1e-3, a 10-block
    discriminator with 2 convolutions per block, kept in the preset for ``adv_weight > 0``)
    it scored clearly worse on validation.
``tiny``
    Trains in seconds; for tests and the demo.

This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from typing import Any

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
LR_SCHEDULES = ("constant", "cosine")
UPSAMPLING = ("nearest", "bilinear")
FINAL_ACTIVATIONS = ("leaky_relu", "linear")
STEMS = ("none", "space_to_depth")
INIT_KINDS = ("base", "version:", "file:")


# The Config keys that shape the generator: a checkpoint or a base must agree on them.
GENERATOR_KEYS = (
    "base_filters",
    "depth",
    "convs_per_block",
    "max_filters",
    "upsampling",
    "final_activation",
    "residual_output",
    "leaky_slope",
    "stem",
    "per_channel",
)


@dataclass(frozen=True)
class Config:
    """All settings of a generator / discriminator pair and its training.

    Network (generator, paper eq. 3–4)
        ``n_channels`` (None: taken from the training data), ``base_filters``, ``depth`` (number of
        down-sampling blocks), ``convs_per_block``, ``max_filters`` (cap on filters per level),
        ``upsampling``, ``final_activation`` (paper: LeakyReLU), ``residual_output`` (add the input
        to the output; the network then learns a correction), ``leaky_slope``, ``stem``
        (``"none"``: the U-Net's first level works at full resolution as in the paper;
        ``"space_to_depth"``: the image is first rearranged into 2 × 2 pixel blocks stacked as
        channels, the U-Net runs at half resolution and its output is rearranged back – a
        cheaper full-resolution stage, as in FFDNet; the input is still added at full
        resolution with ``residual_output``), ``per_channel`` (the generator folds the channels
        into the batch and runs one single-channel network on each channel with shared weights:
        what a single-channel base computes, so a model started from one begins exactly as the
        base; chosen automatically then, see :func:`models.base_models.generator_overrides`;
        costs C single-channel passes).
    Discriminator (paper eq. 1)
        ``disc_filters``, ``disc_blocks``, ``disc_convs_per_block``, ``disc_max_filters``,
        ``disc_dense_units``.
    Loss (paper eq. 5–6)
        ``mse_weight`` (α), ``ssim_weight`` (β, on 1 − SSIM), ``adv_weight`` (γ; 0 trains the
        generator alone), ``l1_weight`` (optional extra L1 term), ``ssim_filter_size``.
    Optimisation
        ``learning_rate``, ``disc_learning_rate`` (None: same), ``lr_schedule``, ``warmup_steps``,
        ``min_lr_fraction`` (cosine floor), ``clipnorm`` (None: off), ``adam_beta_1``,
        ``adam_beta_2``, ``ema_momentum`` (None: off; otherwise validation, the kept weights and
        the saved model use an exponential moving average of the generator's weights with this
        momentum – Keras' ``use_ema``, warmed up over the first steps), ``batch_size``
        (:meth:`samples_per_step`), ``patch_size``.
    Budget
        ``steps`` (maximum number of steps), ``minutes`` (wall-clock budget, None: no budget);
        training ends at whichever comes first.
    Data
        ``norm_low`` / ``norm_high`` (per-image, per-channel percentiles), ``fit_target_to_input``
        (after its own normalisation each HQ target is mapped by the least-squares scale and
        offset onto its normalised LQ input, so the network need not guess from a patch the
        other microscope's per-image intensity scale; see :func:`models.data.fit_to_input`),
        ``val_fraction``,
        ``foreground_threshold`` / ``foreground_min_fraction`` (patch sampling),
        ``augment_flips``, ``augment_rot90``, ``augment_translate``.
    Bookkeeping
        ``val_every``, ``checkpoint_every``, ``val_max_images``, ``seed``, ``precision``.
    Starting weights
        ``init`` (``"scratch"``; ``"base"`` or ``"base:N"`` for a pretrained base,
        ``"version:N"`` for one of the pairing's own versions, ``"file:NAME"`` for a model
        folder or archive) and ``init_sha256`` (the starting generator's weights digest), so a
        version says what it was fine-tuned from (see :mod:`models.base_init`).
    Inference
        ``tile_size`` (largest tile side), ``tile_batch``.
    """

    # generator
    n_channels: int | None = None
    base_filters: int = 32
    depth: int = 3
    convs_per_block: int = 2
    max_filters: int = 256
    upsampling: str = "nearest"
    final_activation: str = "linear"
    residual_output: bool = True
    leaky_slope: float = 0.1
    stem: str = "none"
    per_channel: bool = False
    # discriminator
    disc_filters: int = 16
    disc_blocks: int = 10
    disc_convs_per_block: int = 4
    disc_max_filters: int = 128
    disc_dense_units: int = 64
    # losses
    mse_weight: float = 1.0
    ssim_weight: float = 0.1
    adv_weight: float = 0.001
    l1_weight: float = 0.0
    ssim_filter_size: int = 11
    # optimisation
    learning_rate: float = 1e-3
    disc_learning_rate: float | None = None
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_fraction: float = 0.02
    clipnorm: float | None = 1.0
    adam_beta_1: float = 0.9
    adam_beta_2: float = 0.999
    ema_momentum: float | None = None
    batch_size: int = 8
    patch_size: int = 128
    # budget
    steps: int = 100_000
    minutes: float | None = 15.0
    # data
    norm_low: float = 1.0
    norm_high: float = 99.8
    fit_target_to_input: bool = True
    val_fraction: float = 0.1
    foreground_threshold: float = 0.2
    foreground_min_fraction: float = 0.02
    augment_flips: bool = True
    augment_rot90: bool = True
    augment_translate: int = 0
    # bookkeeping
    val_every: int = 250
    checkpoint_every: int = 500
    val_max_images: int = 8
    seed: int = 0
    precision: str = "auto"
    # starting weights
    init: str = "scratch"
    init_sha256: str | None = None
    # inference
    tile_size: int = 1024
    tile_batch: int = 1

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        def need(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ValueError(f"config key {key!r}: {msg} (got {getattr(self, key)!r})")

        for f in fields(self):
            v = getattr(self, f.name)
            _check_type(f.name, v, f.type)

        need(self.n_channels is None or self.n_channels >= 1, "n_channels", "must be >= 1")
        for k in ("base_filters", "max_filters", "disc_filters", "disc_max_filters"):
            need(getattr(self, k) >= 1, k, "must be >= 1")
        need(1 <= self.depth <= 6, "depth", "must be between 1 and 6")
        need(1 <= self.convs_per_block <= 8, "convs_per_block", "must be between 1 and 8")
        need(self.upsampling in UPSAMPLING, "upsampling", f"must be one of {UPSAMPLING}")
        need(
            self.final_activation in FINAL_ACTIVATIONS,
            "final_activation",
            f"must be one of {FINAL_ACTIVATIONS}",
        )
        need(0.0 <= self.leaky_slope < 1.0, "leaky_slope", "must be in [0, 1)")
        need(1 <= self.disc_blocks <= 16, "disc_blocks", "must be between 1 and 16")
        need(1 <= self.disc_convs_per_block <= 8, "disc_convs_per_block", "must be in 1..8")
        need(self.disc_dense_units >= 1, "disc_dense_units", "must be >= 1")
        for k in ("mse_weight", "ssim_weight", "adv_weight", "l1_weight"):
            need(
                math.isfinite(getattr(self, k)) and getattr(self, k) >= 0,
                k,
                "must be a finite number >= 0",
            )
        need(
            self.mse_weight + self.ssim_weight + self.l1_weight > 0,
            "mse_weight",
            "mse_weight, ssim_weight and l1_weight cannot all be 0",
        )
        need(
            self.ssim_filter_size >= 3 and self.ssim_filter_size % 2 == 1,
            "ssim_filter_size",
            "must be an odd integer >= 3",
        )
        need(0 < self.learning_rate < 1, "learning_rate", "must be in (0, 1)")
        need(
            self.disc_learning_rate is None or 0 < self.disc_learning_rate < 1,
            "disc_learning_rate",
            "must be None or in (0, 1)",
        )
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"must be one of {LR_SCHEDULES}")
        need(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        need(0 <= self.min_lr_fraction <= 1, "min_lr_fraction", "must be in [0, 1]")
        need(self.clipnorm is None or self.clipnorm > 0, "clipnorm", "must be None or > 0")
        need(0 <= self.adam_beta_1 < 1, "adam_beta_1", "must be in [0, 1)")
        need(0 <= self.adam_beta_2 < 1, "adam_beta_2", "must be in [0, 1)")
        need(
            self.ema_momentum is None or 0 < self.ema_momentum < 1,
            "ema_momentum",
            "must be None or in (0, 1)",
        )
        need(1 <= self.batch_size <= 1024, "batch_size", "must be between 1 and 1024")
        need(self.stem in STEMS, "stem", f"must be one of {STEMS}")
        mult = self.multiple
        need(
            self.patch_size >= max(16, mult) and self.patch_size % mult == 0,
            "patch_size",
            f"must be >= 16 and a multiple of {mult} (2**depth, x2 with a space_to_depth stem)",
        )
        need(
            self.patch_size >= self.ssim_filter_size,
            "patch_size",
            "must be at least ssim_filter_size",
        )
        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.minutes is None or self.minutes > 0, "minutes", "must be None or > 0")
        need(
            0 <= self.norm_low < self.norm_high <= 100,
            "norm_low",
            "needs 0 <= norm_low < norm_high <= 100",
        )
        need(0 <= self.val_fraction < 1, "val_fraction", "must be in [0, 1)")
        need(0 <= self.foreground_threshold <= 1, "foreground_threshold", "must be in [0, 1]")
        need(0 <= self.foreground_min_fraction <= 1, "foreground_min_fraction", "must be in [0, 1]")
        need(
            0 <= self.augment_translate <= self.patch_size // 4,
            "augment_translate",
            "must be between 0 and patch_size // 4",
        )
        need(self.val_every >= 1, "val_every", "must be >= 1")
        need(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        need(self.val_max_images >= 1, "val_max_images", "must be >= 1")
        need(0 <= self.seed < 2**31, "seed", "must be in [0, 2**31)")
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}")
        need(
            self.init == "scratch" or self.init.startswith(INIT_KINDS),
            "init",
            "must be 'scratch' or start with 'base', 'version:' or 'file:'",
        )
        need(len(self.init) <= 300, "init", "must be at most 300 characters")
        need(
            (self.init == "scratch") == (self.init_sha256 is None),
            "init_sha256",
            "is the starting weights' digest: given exactly when init is not 'scratch'",
        )
        need(
            self.tile_size >= 64 and self.tile_size % mult == 0,
            "tile_size",
            f"must be >= 64 and a multiple of {mult}",
        )
        need(1 <= self.tile_batch <= 64, "tile_batch", "must be between 1 and 64")

    @property
    def multiple(self) -> int:
        """Image sides the generator takes must be multiples of this (``2**depth``, doubled by
        a ``space_to_depth`` stem)."""
        return 2 ** (self.depth + (self.stem == "space_to_depth"))

    def samples_per_step(self, n_channels: int) -> int:
        """Patches drawn per training step: ``batch_size``; for a ``per_channel`` generator,
        which runs its network on each of a patch's ``n_channels`` channels,
        ``round(batch_size / n_channels)`` (at least 1), so that a step costs about
        ``batch_size`` single-channel passes, as a step of its base did. Why: with whole
        ``batch_size`` patches a 3-channel fine-tune made ≈ 400 steps in 3 CPU minutes and
        was still improving; with 3 patches, ≈ 1000 steps and +0.1 dB on the validation fields
        (docs/benchmarks.md, Transfer)."""
        if not self.per_channel:
            return self.batch_size
        return max(1, round(self.batch_size / max(int(n_channels), 1)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Build from a mapping; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(map(repr, unknown))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        """Parse a JSON string produced by :meth:`to_json`."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"config is not valid JSON: {e}") from e
        return cls.from_dict(d)

    def with_overrides(self, overrides: dict[str, Any] | None = None, **kw: Any) -> Config:
        """A copy with some keys changed (validated; unknown keys raise ``ValueError``)."""
        d = self.to_dict()
        upd = dict(overrides or {})
        upd.update(kw)
        known = set(d)
        unknown = sorted(set(upd) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(map(repr, unknown))}")
        d.update(upd)
        return Config(**d)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Config:
        """One of :data:`PRESETS` (``paper``, ``cpu-small``, ``tiny``) with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls.from_dict(dict(PRESETS[name])).with_overrides(overrides)


def _check_type(key: str, value: Any, annotation: Any) -> None:
    ann = str(annotation)
    optional = "None" in ann
    if value is None:
        if not optional:
            raise ValueError(f"config key {key!r}: must not be None")
        return
    if ann.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif ann.startswith("float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(float(value)):
            raise ValueError(f"config key {key!r}: must be finite (got {value!r})")
    elif ann.startswith("bool"):
        ok = isinstance(value, bool)
    elif ann.startswith("str"):
        ok = isinstance(value, str)
    else:  # pragma: no cover - every field is one of the above
        ok = True
    if not ok:
        raise ValueError(f"config key {key!r}: wrong type {type(value).__name__} (expected {ann})")


PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(
        base_filters=64,
        depth=4,
        convs_per_block=3,
        max_filters=1024,
        upsampling="nearest",
        final_activation="leaky_relu",
        residual_output=False,
        disc_filters=32,
        disc_blocks=10,
        disc_convs_per_block=4,
        disc_max_filters=256,
        disc_dense_units=128,
        # "the combined weights of MSE and SSIM accounted for approximately 10 % of the total"
        mse_weight=0.05,
        ssim_weight=0.05,
        adv_weight=0.9,
        learning_rate=1e-5,
        lr_schedule="constant",
        warmup_steps=0,
        clipnorm=None,
        batch_size=8,
        patch_size=256,
        steps=500_000,
        minutes=None,
        val_every=1000,
        checkpoint_every=10_000,
        tile_size=1024,
        augment_translate=16,
    ),
    "cpu-small": dict(
        # chosen on the W2S validation fields 061-064 only (training on 001-060; the test
        # fields never seen), see docs/benchmarks.md "How cpu-small was chosen". A 4-level
        # U-Net of 16 base filters costs a third of a 3-level one of 32 (each level costs the
        # same: twice the filters on a quarter of the pixels), sees a larger field and beat
        # the 32-filter net at equal time. MSE + 0.1·(1 − SSIM): the SSIM term
        # speeds learning markedly (0.01 lost 2.7 dB at 3 minutes); L1 + SSIM was worse. A
        # cosine schedule from 2e-3 keyed to the wall-clock budget, with a divergence guard
        # (restart from the last good state at half the rate) and an exponential moving
        # average of the weights for validation and the kept model. The generator alone
        # (γ = 0) beat a light adversarial term (γ = 1e-3) by 2.3 dB / 0.13 SSIM on
        # validation, so γ = 0 here; the discriminator settings (10 blocks of 2 convolutions,
        # cheap) apply when adv_weight is set > 0.
        base_filters=16,
        depth=4,
        convs_per_block=2,
        max_filters=256,
        upsampling="nearest",
        final_activation="linear",
        residual_output=True,
        stem="none",
        disc_filters=16,
        disc_blocks=10,
        disc_convs_per_block=2,
        disc_max_filters=128,
        disc_dense_units=64,
        mse_weight=1.0,
        ssim_weight=0.1,
        adv_weight=0.0,
        learning_rate=2e-3,
        lr_schedule="cosine",
        warmup_steps=100,
        min_lr_fraction=0.02,
        clipnorm=1.0,
        ema_momentum=0.995,
        batch_size=8,
        patch_size=128,
        steps=100_000,
        minutes=15.0,
        # tiles of up to 2048²: a 2048² image is one tile (no overlap to compute twice);
        # larger images are cut into tiles of at most 2048² (bench/speed.py)
        val_every=200,
        checkpoint_every=500,
        tile_size=2048,
    ),
    "tiny": dict(
        base_filters=8,
        depth=2,
        convs_per_block=1,
        max_filters=32,
        final_activation="linear",
        residual_output=True,
        disc_filters=4,
        disc_blocks=2,
        disc_convs_per_block=1,
        disc_max_filters=8,
        disc_dense_units=8,
        mse_weight=1.0,
        ssim_weight=0.1,
        adv_weight=0.01,
        ssim_filter_size=7,
        learning_rate=2e-3,
        lr_schedule="constant",
        warmup_steps=0,
        clipnorm=1.0,
        batch_size=2,
        patch_size=32,
        steps=20,
        minutes=None,
        val_every=10,
        checkpoint_every=10,
        val_max_images=2,
        tile_size=64,
    ),
}
