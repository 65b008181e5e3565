"""A pairing's own learning curve: fields imaged → the quality its versions reached.

A lab deciding how many more fields to image on both microscopes wants to see how test quality
grew with the training fields of its own versions, and what more fields should bring. Each
version is one point: its snapshot's training-field count against its own test-field medians,
beside the input itself and Richardson–Lucy (the quality gate's reference) on the same fields.
With versions trained on at least three different field counts the points are fitted with
``PSNR(n) = a − b / √n`` — the usual shape of a learning curve that saturates — and the fit is
drawn from one field to twice the largest count seen, never further: an expectation, not a
promise, and labelled so. Versions differ in training time and start too; each point says both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.services.snapshots import trainable_pairs
from api.tables import DatasetMember, ModelVersion, Pairing, Split

#: versions on this many distinct field counts before a curve is fitted through them
MIN_COUNTS_FOR_FIT = 3
#: the fit is drawn up to this multiple of the largest field count seen
EXTRAPOLATION_LIMIT = 2.0


@dataclass(frozen=True)
class CurvePoint:
    version: int
    train_fields: int
    minutes: float | None
    init: str
    psnr: float | None
    ssim: float | None
    input_psnr: float | None
    richardson_lucy_psnr: float | None


def _medians(version: ModelVersion) -> dict[str, Any]:
    return dict((version.metrics or {}).get("medians") or {})


def _scores(version: ModelVersion, method: str) -> dict[str, Any]:
    row = _medians(version).get(method)
    return dict(row) if isinstance(row, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def points(session: Session, pairing: Pairing) -> list[CurvePoint]:
    """One point per version of the pairing, in version order."""
    versions = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.pairing_id == pairing.id)
        .order_by(ModelVersion.number)
    ).all()
    dataset_ids = {v.dataset_id for v in versions}
    train_counts = dict(
        session.execute(
            select(DatasetMember.dataset_id, func.count())
            .where(DatasetMember.dataset_id.in_(dataset_ids), DatasetMember.split == Split.train)
            .group_by(DatasetMember.dataset_id)
        ).all()
    )
    out = []
    for v in versions:
        own = _scores(v, (v.metrics or {}).get("self_method") or "generated")
        seconds = _number((v.training or {}).get("elapsed_s"))
        out.append(
            CurvePoint(
                version=v.number,
                train_fields=int(train_counts.get(v.dataset_id, 0)),
                minutes=None if seconds is None else round(seconds / 60.0, 2),
                init=str((v.config or {}).get("init") or "scratch"),
                psnr=_number(own.get("psnr")),
                ssim=_number(own.get("ssim")),
                input_psnr=_number(_scores(v, "identity").get("psnr")),
                richardson_lucy_psnr=_number(_scores(v, "richardson_lucy").get("psnr")),
            )
        )
    return out


def fit(curve: list[CurvePoint]) -> tuple[float, float] | str:
    """Least-squares ``(a, b)`` of ``PSNR = a − b/√n`` over the scored points, or why none."""
    scored = [(p.train_fields, p.psnr) for p in curve if p.psnr is not None and p.train_fields > 0]
    if len({n for n, _ in scored}) < MIN_COUNTS_FOR_FIT:
        return (
            f"versions trained on at least {MIN_COUNTS_FOR_FIT} different numbers of fields are "
            "needed for an expected curve; train on a new snapshot after imaging more fields"
        )
    xs = [1.0 / math.sqrt(n) for n, _ in scored]
    ys = [psnr for _, psnr in scored]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return mean_y - slope * mean_x, -slope


def expected(a: float, b: float, largest: int) -> list[tuple[int, float]]:
    """The fitted curve at 1, 2, 4, … fields, up to the extrapolation limit."""
    counts, n = [], 1
    while n <= EXTRAPOLATION_LIMIT * largest:
        counts.append(n)
        n *= 2
    if largest not in counts:
        counts = sorted({*counts, largest})
    return [(n, round(a - b / math.sqrt(n), 3)) for n in counts]


def fields_available(session: Session, pairing: Pairing) -> int:
    """Accepted, aligned pairs the pairing holds now — what a new snapshot would split."""
    count = select(func.count()).select_from(trainable_pairs(pairing).subquery())
    return int(session.scalar(count) or 0)


@dataclass(frozen=True)
class LearningCurve:
    fields_available: int
    points: list[CurvePoint]
    expected: list[tuple[int, float]]
    fit: str


def learning_curve(session: Session, pairing: Pairing) -> LearningCurve:
    """The points, the fitted expectation (empty without a fit) and the formula or why none."""
    curve = points(session, pairing)
    fitted = fit(curve)
    if isinstance(fitted, str):
        expectation, formula = [], fitted
    else:
        a, b = fitted
        expectation = expected(a, b, max(p.train_fields for p in curve))
        formula = f"PSNR = {a:.2f} − {b:.2f}/√n dB (least squares over the scored versions)"
    return LearningCurve(fields_available(session, pairing), curve, expectation, formula)
