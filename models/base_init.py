"""Starting a pairing's generator from a base model (or from another model of the same shape).

A base is a single-channel generator (:mod:`models.base_models`). A pairing's generator sees
all its channels at once (``EnhancementModel`` is unchanged: its predict, save, load, export
and evaluation keep working as they are), so the base initialises it like this:

* every layer whose weights have the base's shape is copied as it is (all inner layers: the
  architecture keys of :data:`models.config.GENERATOR_KEYS` are the base's);
* the layers that read the input (the first convolution and the first level's 1×1 projection)
  take, for each of the C channels, the base's input kernel divided by C;
* the final convolution gives each of the C channels the base's output kernel and bias.

So for an image whose channels are all equal the started model computes exactly what the base
computes on one of them, and with ``residual_output`` each channel keeps its own input; for a
single-channel pairing it *is* the base. Fine-tuning then learns how the channels differ. Why
not run the base per channel inside the model (shared weights, ``C`` passes)? That would need a
second kind of ``EnhancementModel`` in predict, save/load, the bioimage.io export and every
evaluation; this keeps one kind, at the price that the channels share the base's first and
last layers only as a starting point.

With a ``space_to_depth`` stem the input and output carry 4 values per channel, in
``tf.nn.space_to_depth``'s order (block position major, channel minor), which the same
repetition respects.
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
