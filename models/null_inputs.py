"""No structure from nothing: what a model returns for a blank field and for pure noise.

A network that has learned the training fields' structures may paint them into any input —
most visibly into an empty background patch. Two inputs with nothing in them show whether it
does: a *blank* field (every channel constant at the training inputs' background level) and
*pure noise* (that background plus white Gaussian noise of the training inputs' own level). The
outputs' spread is compared with the training HQ's dynamic range and with the noise the model
was given; :data:`BLANK_STD_MAX` and :data:`NOISE_GAIN_MAX` are the stated bounds (the
evaluation report shows the numbers and the noise input's output; the tests hold a trained
model to the bounds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .noise import noise_sigma

#: A blank field's output may vary by at most this fraction of the training HQ's range.
BLANK_STD_MAX = 0.01
#: Pure noise's output may vary at most 1.2× as much as the noise it was given: a denoiser
#: makes it smaller, a barely trained (near-identity) model leaves it about as it was (0.99 for
#: the tiny preset after 12 steps); clearly more is structure the input did not have.
NOISE_GAIN_MAX = 1.2
#: …and by at most this fraction of the training HQ's range (the noise itself is ~1 %).
NOISE_STD_MAX = 0.05


def null_inputs(
    train_lq: Sequence[np.ndarray], shape: tuple[int, int], seed: int = 0
) -> dict[str, np.ndarray]:
    """``{"blank": …, "noise": …}`` ``CYX`` float32 inputs of ``shape`` from training ``CYX``
    LQ planes: per channel the median of their 5th percentiles (the background) and the median
    of their noise σ."""
    planes = [np.asarray(p, dtype=np.float64) for p in train_lq]
    n_ch = planes[0].shape[0]
    background = [float(np.median([np.percentile(p[c], 5) for p in planes])) for c in range(n_ch)]
    sigma = [float(np.median([noise_sigma(p[c]) for p in planes])) for c in range(n_ch)]
    rng = np.random.default_rng(seed)
    blank = np.stack([np.full(shape, b) for b in background])
    noise = np.stack(
        [b + rng.normal(0.0, s, shape) for b, s in zip(background, sigma, strict=True)]
    )
    return {"blank": blank.astype(np.float32), "noise": noise.astype(np.float32)}


def training_range(train_hq: Sequence[np.ndarray]) -> list[float]:
    """Per channel, the median over training HQ planes of their 0.1–99.9 % range."""
    planes = [np.asarray(p, dtype=np.float64) for p in train_hq]
    return [
        float(np.median([np.subtract(*np.percentile(p[c], (99.9, 0.1))) for p in planes]))
        for c in range(planes[0].shape[0])
    ]


def structure_from_nothing(
    predict: Callable[[np.ndarray], np.ndarray],
    train_lq: Sequence[np.ndarray],
    train_hq: Sequence[np.ndarray],
    shape: tuple[int, int] = (128, 128),
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The numbers (per channel; ``within_bounds`` the verdict) and the outputs by input."""
    inputs = null_inputs(train_lq, shape, seed)
    outputs = {name: np.asarray(predict(x), dtype=np.float64) for name, x in inputs.items()}
    span = training_range(train_hq)
    blank_std = [
        float(o.std()) / max(r, 1e-12) for o, r in zip(outputs["blank"], span, strict=True)
    ]
    noise_in = inputs["noise"].astype(np.float64)
    gain = [
        float(o.std()) / max(float(i.std()), 1e-12)
        for o, i in zip(outputs["noise"], noise_in, strict=True)
    ]
    noise_std = [
        float(o.std()) / max(r, 1e-12) for o, r in zip(outputs["noise"], span, strict=True)
    ]
    numbers = {
        "shape": list(shape),
        "blank_output_std_of_range": blank_std,
        "noise_output_std_of_range": noise_std,
        "noise_gain": gain,
        "bounds": {
            "blank_std_of_range_max": BLANK_STD_MAX,
            "noise_std_of_range_max": NOISE_STD_MAX,
            "noise_gain_max": NOISE_GAIN_MAX,
        },
        "within_bounds": (
            max(blank_std) <= BLANK_STD_MAX
            and max(noise_std) <= NOISE_STD_MAX
            and max(gain) <= NOISE_GAIN_MAX
        ),
    }
    return numbers, {**{f"{k} input": v for k, v in inputs.items()}, **outputs}
