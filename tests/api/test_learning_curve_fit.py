"""The expected-quality curve a pairing's page draws from its own versions."""

from __future__ import annotations

import math

from api.services.learning_curve import CurvePoint, expected, fit


def _point(version: int, fields: int, psnr: float | None) -> CurvePoint:
    return CurvePoint(version, fields, 15.0, "scratch", psnr, 0.8, 18.0, 17.0)


def test_three_field_counts_recover_a_saturating_curve() -> None:
    truth = {n: 33.0 - 6.0 / math.sqrt(n) for n in (2, 8, 32)}
    points = [_point(i, n, psnr) for i, (n, psnr) in enumerate(truth.items(), start=1)]
    a, b = fit(points)  # type: ignore[misc]
    assert math.isclose(a, 33.0, abs_tol=1e-9) and math.isclose(b, 6.0, abs_tol=1e-9)
    curve = dict(expected(a, b, largest=32))
    # drawn from one field to twice the largest count seen, and never further
    assert min(curve) == 1 and max(curve) == 64
    assert curve[8] == round(truth[8], 3)
    values = [curve[n] for n in sorted(curve)]
    assert values == sorted(values) and len(set(values)) == len(values)


def test_fewer_than_three_counts_or_unscored_versions_give_a_reason() -> None:
    same_count = [_point(1, 4, 30.0), _point(2, 4, 30.5), _point(3, 8, None)]
    reason = fit(same_count)
    assert isinstance(reason, str) and "at least 3 different numbers of fields" in reason
