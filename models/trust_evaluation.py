"""The trust part of a version's evaluation report: the reference it was published with (the
effective PSF, the OOD threshold), every test field's consistency numbers, the null inputs'
outputs ("no structure from nothing"), and the panel that shows one field's error map and, for
a calibrated model, its uncertainty half-width map."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .null_inputs import structure_from_nothing, training_range
from .trust import TrustReference, assess
from .trust_figures import trust_lines, trust_panel
from .uncertainty import Calibration, uncertainty

AXES_BY_NDIM = {3: "CYX", 4: "ZCYX"}


def trust_section(
    reference: TrustReference,
    fields: Sequence[tuple[str, np.ndarray, np.ndarray]],
    outputs: Mapping[str, np.ndarray],
    predict: Callable[[np.ndarray], np.ndarray],
    train_lq: Sequence[np.ndarray],
    train_hq: Sequence[np.ndarray],
    pixel_size_um: float,
    panel_field: str,
    emission_nm: Sequence[float] | None = None,
    calibration: Calibration | None = None,
    coverage: float | None = None,
) -> tuple[dict[str, Any], bytes]:
    """``(report.json's info["trust"], the panel PNG)``. ``outputs``: field id → the model's
    output for that field's LQ (already computed by the evaluation); ``panel_field`` is drawn,
    with its uncertainty half-width when a ``calibration`` is given (``coverage``: the measured
    coverage of its interval on the evaluated fields, shown in the map's title)."""
    per_field: dict[str, Any] = {}
    maps: dict[str, np.ndarray] = {}
    for field_id, lq, _ in fields:
        axes = AXES_BY_NDIM[np.ndim(lq)]
        assessment = assess(outputs[field_id], lq, axes, reference, pixel_size_um)
        summary = assessment.summary()
        per_field[field_id] = {
            **{k: summary["consistency"][k] for k in ("rsp", "rse", "flagged", "reasons")},
            "ood_score": summary["ood"]["score"],
            "ood_warning": summary["ood"]["warning"],
        }
        if field_id == panel_field:
            n_ch = np.shape(lq)[-3]
            maps[field_id] = assessment.maps[0, :n_ch]  # the first plane's error maps
    null, null_images = structure_from_nothing(predict, train_lq, train_hq)
    section = {"reference": reference.describe(), "fields": per_field, "null_inputs": null}
    lq = next(f[1] for f in fields if f[0] == panel_field)
    out = outputs[panel_field]
    if np.ndim(lq) == 4:  # a Z stack: its first plane, like the error map
        lq, out = lq[0], out[0]
    half_width, half_title = None, "uncertainty half-width (max over channels)"
    if calibration is not None:
        half_width = _relative_half_width(out, lq, calibration)
        half_title = f"{calibration.coverage:.0%} interval half-width (of range)"
        if coverage is not None:
            half_title += f", coverage {coverage:.1%}"
    panel = trust_panel(
        lq,
        out,
        maps[panel_field],
        null_images["noise"],
        null_images["noise input"],
        training_range(train_hq),
        [*trust_lines(section), f"consistency error map: field {panel_field}"],
        emission_nm=emission_nm,
        half_width=half_width,
        half_width_title=half_title,
    )
    return section, panel


def _relative_half_width(
    output: np.ndarray, lq: np.ndarray, calibration: Calibration
) -> np.ndarray:
    """``CYX`` half-width of ``output``'s interval (``lq``: its input), per channel as a
    fraction of the channel's 0.1–99.9 percentile range (one colour scale for all channels)."""
    result = uncertainty(lambda _: [np.asarray(output)], lq, calibration)
    half = np.asarray(result.half_width, np.float64)
    out = np.asarray(output, np.float64)
    span = [max(float(np.percentile(c, 99.9) - np.percentile(c, 0.1)), 1e-12) for c in out]
    return np.stack([h / s for h, s in zip(half, span, strict=True)])
