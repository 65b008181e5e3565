"""Calibrate a trained model's per-pixel uncertainty and measure it, as a version is published.

Why: the interval ``point ± half-width`` means something only if it is calibrated on fields the
model did not train on and checked on others. The service (at publish) and ``pairscope
train-local`` fit the calibration here on the validation fields; the service then measures, on
the test fields, how often the nominal 90 % interval holds the ground truth (the promotion
gate's figure) and how well the half-width ranks 16 × 16 blocks by their error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .uncertainty import Calibration, evaluate, fit_calibration, model_members, uncertainty

NOMINAL_COVERAGE = 0.9
TRAINING_FIELDS_NOTE = (
    "calibrated on the training fields (the snapshot has no validation fields): in-sample "
    "errors are smaller, so the intervals may be too narrow"
)


def calibrate(
    model: Any,
    validation_lq: Sequence[np.ndarray],
    validation_hq: Sequence[np.ndarray],
    train_lq: Sequence[np.ndarray],
    train_hq: Sequence[np.ndarray],
) -> Calibration:
    """The calibration of ``model`` (one member: its plain prediction) on ``CYX`` planes of the
    validation fields, or of the training fields with a note when there are none."""
    predict = model_members(model, axes="CYX")
    if validation_lq:
        fitted = fit_calibration(predict, validation_lq, validation_hq, NOMINAL_COVERAGE)
        return replace(fitted, notes={"fields": "validation"})
    fitted = fit_calibration(predict, train_lq, train_hq, NOMINAL_COVERAGE)
    return replace(fitted, notes={"fields": "training", "note": TRAINING_FIELDS_NOTE})


def measure(
    calibration: Calibration,
    fields: Sequence[tuple[str, np.ndarray, np.ndarray]],
    outputs: Mapping[str, np.ndarray],
    split: str,
) -> dict[str, Any]:
    """The calibrated intervals on ``fields`` (id, LQ, HQ; ``(Z)CYX``) whose predictions are
    ``outputs`` (by field id): the coverage over all their pixels, the median over fields of
    the 16 × 16-block Spearman ρ, and each field's figures — report.json's ``uncertainty``."""
    per_field: dict[str, dict[str, float | None]] = {}
    inside, pixels = 0.0, 0
    for field_id, lq, hq in fields:
        point = outputs[field_id]
        result = uncertainty(_fixed(point), lq, calibration)
        figures = evaluate(result, hq)
        per_field[field_id] = {k: _finite(v) for k, v in figures.items()}
        if math.isfinite(figures["coverage"]):
            inside += figures["coverage"] * np.size(hq)
            pixels += np.size(hq)
    rhos = [f["spearman"] for f in per_field.values() if f["spearman"] is not None]
    calibrated = calibration.notes.get("fields", "validation")
    return {
        "coverage_nominal": calibration.coverage,
        "coverage": _finite(inside / pixels) if pixels else None,
        "spearman_median": _finite(float(np.median(rhos))) if rhos else None,
        "split": split,
        "calibrated_on": calibrated,
        "note": calibration.notes.get("note"),
        "quantile": _finite(calibration.quantile),
        "validation_coverage": _finite(calibration.validation_coverage),
        "fields": per_field,
    }


def _fixed(point: np.ndarray) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The evaluation's prediction as the one member (the model is not run again)."""
    return lambda _: [np.asarray(point)]


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)
