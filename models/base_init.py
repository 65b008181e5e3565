"""Starting a pairing's generator from a base model (or from another model of the same shape).

A base is a single-channel generator (:mod:`models.base_models`). A model started from it is a
``per_channel`` generator (:func:`models.base_models.generator_overrides` chooses it): the
same single-channel network run on each of the pairing's channels with shared weights
(:func:`models.networks.build_generator` folds the channels into the batch), so every layer has
the base's shape, the weights are copied as they are, and the started model computes on every
channel exactly what the base computes on it. It stays one kind of ``EnhancementModel``:
predict, save/load, the bioimage.io export and every evaluation are unchanged.

Why not start a generator that sees all C channels at once? Its first layers would have to mix
the channels from the base's single-channel kernels (the base's input kernel divided by C for
each channel), so every channel's correction would start from the *mean* of channels that can
look nothing alike; on W2S that start fine-tuned to 20.75 dB against 29.49 from scratch
(docs/benchmarks.md, Transfer). That expansion is still done here for a model built without
``per_channel`` (the layers that read the input take the base's input kernel divided by C, the
final convolution repeats the output kernel and bias per channel; with a ``space_to_depth``
stem in ``tf.nn.space_to_depth``'s order), so such a model equals the base on equal channels.
"""

from __future__ import annotations

import numpy as np

from .base_models import IncompatibleBase
from .model import EnhancementModel


def _expanded(base: np.ndarray, shape: tuple[int, ...], channels: int, name: str) -> np.ndarray:
    """The base's weight spread over `channels`: along the kernel's input axis (divided by the
    count) or its output axis / the bias (repeated)."""
    if base.ndim == 4 and base.shape[:2] == shape[:2]:
        if base.shape[3] == shape[3] and base.shape[2] * channels == shape[2]:
            return np.repeat(base, channels, axis=2) / channels
        if base.shape[2] == shape[2] and base.shape[3] * channels == shape[3]:
            return np.repeat(base, channels, axis=3)
    if base.ndim == 1 and base.shape[0] * channels == shape[0]:
        return np.repeat(base, channels)
    raise IncompatibleBase(
        f"layer {name!r}: the base's weights {base.shape} do not fit {shape}; the base was "
        "built with another network architecture"
    )


def initialise_from_base(model: EnhancementModel, base: EnhancementModel) -> None:
    """Set ``model``'s generator weights from ``base``'s (see the module's docstring). The
    model's channel count must be known (``EnhancementModel(config, n_channels=C)``); raises
    :class:`IncompatibleBase` saying why when the base cannot start it."""
    channels = model.n_channels
    if channels is None:
        raise ValueError("give the model its channel count before initialising it")
    if base.n_channels not in (1, channels):
        raise IncompatibleBase(
            f"the base takes {base.n_channels} channels together; this model has {channels}"
        )
    factor = channels // base.n_channels
    base_layers = {layer.name: layer for layer in base.generator.layers if layer.weights}
    for layer in model.generator.layers:
        if not layer.weights:
            continue
        source = base_layers.get(layer.name)
        if source is None:
            raise IncompatibleBase(f"the base has no layer {layer.name!r}: another architecture")
        values = []
        for mine, theirs in zip(layer.get_weights(), source.get_weights(), strict=True):
            if mine.shape == theirs.shape:
                values.append(theirs)
            else:
                values.append(_expanded(theirs, mine.shape, factor, layer.name))
        layer.set_weights([v.astype(np.float32) for v in values])
