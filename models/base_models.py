"""The network's base model: what it learns from and which pairings it fits. No TensorFlow.

A base is **channel-agnostic**: a single-channel generator trained on single-channel fields
(every channel of every field is a training pair of its own) and applied to each channel of a
microscope independently. That is the simplest layout that works for any channel count and any
channel order: a base trained on three-channel fibroblasts serves a two-channel lab as well,
and a pairing's channels need no agreed meaning across the network. What a base cannot learn
(cross-talk between channels) the fine-tuned version learns from the pairing itself; see
:mod:`models.base_init` for how a multi-channel generator starts from it.

Its data are synthetic pairs (:func:`models.synthetic.make_pair` over a range of optics, pixel
sizes and photon counts, registered: ``scale = 1``, no shift) and the aligned pairs of the
pairings whose institutions both consented. :class:`SyntheticRecipe` is the simulation's recipe,
stored with the base so it can be made again; :func:`pixel_size_range` is the range of grids it
saw, against which :func:`check_compatible` judges a pairing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .config import GENERATOR_KEYS
from .pixel_grid import RESAMPLE_RANGE

Field = tuple[str, np.ndarray, np.ndarray]  # field id, LQ, HQ; (C)YX or ZCYX


class IncompatibleBase(ValueError):
    """The base cannot initialise this model (channel layout or pixel size); says why."""


@dataclass(frozen=True)
class SyntheticRecipe:
    """How many synthetic fields to simulate and over which optics: each field draws its pixel
    size, wide-field NA and photon count uniformly from the ranges, from ``seed``.

    ``denoise_fraction`` of the fields (drawn per field) are denoising pairs (HQ = the same
    wide-field optics with ``denoise_photon_factor`` times the photons, as a frame average is)
    rather than wide-field → confocal ones: many pairings only denoise, and a base that has
    only ever deblurred sharpens what they want kept. At 0 (the default) no extra draw is made,
    so recipes written before it make the same fields. ``log_photons`` draws the photon count
    log-uniformly (a wide range spends as many fields on 5–50 photons as on 50–500)."""

    fields: int = 0
    shape: tuple[int, int] = (96, 96)
    seed: int = 0
    pixel_size_um: tuple[float, float] = (0.065, 0.2)
    wf_na: tuple[float, float] = (0.8, 1.4)
    wf_photons: tuple[float, float] = (20.0, 200.0)
    denoise_fraction: float = 0.0
    denoise_photon_factor: float = 100.0
    log_photons: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.fields <= 10_000:
            raise ValueError(f"recipe 'fields': must be in 0..10000 (got {self.fields})")
        if len(self.shape) != 2 or min(self.shape) < 32 or max(self.shape) > 1024:
            raise ValueError(f"recipe 'shape': two sides in 32..1024 (got {self.shape})")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"recipe 'seed': must be in [0, 2**31) (got {self.seed})")
        if not 0.0 <= self.denoise_fraction <= 1.0:
            raise ValueError(
                f"recipe 'denoise_fraction': must be in 0..1 (got {self.denoise_fraction})"
            )
        if not 1.0 <= self.denoise_photon_factor <= 1e4:
            raise ValueError(
                "recipe 'denoise_photon_factor': must be in 1..10000 "
                f"(got {self.denoise_photon_factor})"
            )
        for key, low, high in (
            ("pixel_size_um", 0.01, 2.0),
            ("wf_na", 0.1, 1.45),
            ("wf_photons", 1.0, 1e6),
        ):
            lo, hi = getattr(self, key)
            if not low <= lo <= hi <= high:
                raise ValueError(
                    f"recipe {key!r}: needs {low} <= min <= max <= {high} (got {lo}, {hi})"
                )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyntheticRecipe:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown recipe key(s): {', '.join(map(repr, unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"recipe: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def synthetic_fields(recipe: SyntheticRecipe) -> Iterator[tuple[Field, float]]:
    """The recipe's registered pairs (3-channel CYX, float32) with each one's pixel size; a
    denoising pair's id says so (``synthetic-denoise:0007``)."""
    from .synthetic import make_pair  # scipy and scikit-image: only when simulating

    rng = np.random.default_rng(recipe.seed)
    for i in range(recipe.fields):
        pixel = float(rng.uniform(*recipe.pixel_size_um))
        na = float(rng.uniform(*recipe.wf_na))
        if recipe.log_photons:
            photons = float(np.exp(rng.uniform(*np.log(recipe.wf_photons))))
        else:
            photons = float(rng.uniform(*recipe.wf_photons))
        seed = int(rng.integers(2**31))
        denoise = recipe.denoise_fraction > 0 and bool(rng.uniform() < recipe.denoise_fraction)
        extra = (
            {"hq_system": "widefield", "cf_photons": photons * recipe.denoise_photon_factor}
            if denoise
            else {}
        )
        lq, hq, _ = make_pair(
            tuple(recipe.shape),
            seed=seed,
            pixel_size_um=pixel,
            wf_na=min(na, 1.45),
            wf_photons=photons,
            dtype="float32",
            **extra,
        )
        kind = "synthetic-denoise" if denoise else "synthetic"
        yield (f"{kind}:{i:04d}", lq, hq), pixel


def single_channel_fields(fields: Iterable[Field]) -> Iterator[Field]:
    """Every channel of every (C)YX / ZCYX field as a ``1YX`` pair of its own; Z planes are
    kept together under one field id per channel (they stay on one side of a split)."""
    for field_id, lq, hq in fields:
        lq_planes = [lq] if lq.ndim == 3 else list(lq)
        hq_planes = [hq] if hq.ndim == 3 else list(hq)
        channels = lq_planes[0].shape[0] if lq_planes[0].ndim == 3 else 1
        for c in range(channels):
            for z, (a, b) in enumerate(zip(lq_planes, hq_planes, strict=True)):
                a2 = a[c] if a.ndim == 3 else a
                b2 = b[c] if b.ndim == 3 else b
                suffix = f"/z{z}" if len(lq_planes) > 1 else ""
                yield f"{field_id}/c{c}{suffix}", a2[None], b2[None]


def generator_overrides(base_config: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """The base's generator architecture as Config overrides; an explicitly requested value
    that differs raises :class:`IncompatibleBase` naming it. A single-channel base starts a
    ``per_channel`` generator (its network run on each channel, so the started model computes
    exactly what the base does); a base with more channels passes on its own setting."""
    chosen = {key: base_config[key] for key in GENERATOR_KEYS if key in base_config}
    if base_config.get("n_channels") == 1:
        chosen["per_channel"] = True
    for key, value in chosen.items():
        if key in requested and requested[key] != value:
            raise IncompatibleBase(
                f"{key}={requested[key]!r} differs from the base's {value!r}; a model started "
                "from a base keeps its network architecture"
            )
    return chosen


def pixel_size_range(pixel_sizes: Sequence[float]) -> tuple[float, float]:
    if not pixel_sizes:
        raise ValueError("a base learns from at least one field")
    return float(min(pixel_sizes)), float(max(pixel_sizes))


def check_compatible(
    *,
    base_channels: int,
    base_pixel_range: tuple[float, float],
    n_channels: int,
    grid_pixel_um: float,
) -> None:
    """Raise :class:`IncompatibleBase` unless the base can start a model of ``n_channels`` on
    a grid of ``grid_pixel_um``: a single-channel base fits any channel count (it is applied
    per channel), a multi-channel one only its own; the grid must lie within the resampling
    factor of :data:`models.pixel_grid.RESAMPLE_RANGE` of the sizes the base saw, as an input's
    pixel must against a version's."""
    if base_channels != 1 and base_channels != n_channels:
        raise IncompatibleBase(
            f"the base takes {base_channels} channels together and this pairing maps "
            f"{n_channels}; only a single-channel (per-channel) base fits any channel count"
        )
    low, high = base_pixel_range
    lowest, highest = low * RESAMPLE_RANGE[0], high * RESAMPLE_RANGE[1]
    if not lowest <= grid_pixel_um <= highest:
        raise IncompatibleBase(
            f"the pairing's aligned grid has {grid_pixel_um:g} µm pixels; the base learned "
            f"{low:g}–{high:g} µm and starts models from {lowest:g} to {highest:g} µm only"
        )
