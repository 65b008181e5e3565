"""Evaluation of enhancement methods on held-out test fields, under the metric protocol.

Every method is scored on the same aligned ``(LQ, HQ)`` test fields with
:func:`models.metrics.score_image` (HQ percentile-normalised (0.1, 99.9), the output fitted to it
by least-squares scale and offset, ``data_range`` 1), so the medians of different methods — a
new version, the identity (the LQ itself, the floor), Richardson–Lucy with the LQ microscope's
optics, and the pairing's production version — are directly comparable, and the quality gate
(:meth:`EvaluationReport.beats`) compares like with like.

Images are ``(C)YX`` or ``ZCYX``; Z stacks are scored plane by plane and a field's row holds the
mean over its planes (so every field counts once in the medians). Everything here is
deterministic and numpy / scipy / scikit-image only; TensorFlow is touched only when a predictor
made by :func:`model_predictor` runs a model.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .baselines import Optics, richardson_lucy
from .metrics import GT_HIGH, GT_LOW, METRICS, score_image

if TYPE_CHECKING:  # pragma: no cover - typing only (importing it would load TensorFlow)
    from .model import EnhancementModel

IDENTITY = "identity"
RICHARDSON_LUCY = "richardson_lucy"
#: For each metric, whether a larger value is better (MSE / NRMSE: lower is better).
HIGHER_IS_BETTER: dict[str, bool] = {"mse": False, "nrmse": False, "ssim": True, "psnr": True}
REPORT_FORMAT = "pairscope-evaluation/1"

Predictor = Callable[[np.ndarray], np.ndarray]
Field = tuple[str, np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------------- the report
@dataclass
class EvaluationReport:
    """Per-field scores of several methods on the same test fields, and their medians.

    ``rows``: one dict per field and method — ``field_id``, ``method``, ``mse``, ``nrmse``,
    ``ssim``, ``psnr`` (means over channels and, for Z stacks, planes), ``planes`` and
    ``per_channel`` (one ``{mse, nrmse, ssim, psnr}`` dict per channel). ``medians``:
    method → metric → median over fields. ``info``: how the report was made (protocol, optics,
    RL iterations, field count) so a stored report explains itself.
    """

    methods: list[str]
    rows: list[dict]
    medians: dict[str, dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A strict-JSON dict (``json.dumps(..., allow_nan=False)`` works): non-finite floats,
        e.g. the infinite PSNR of a perfect prediction, become the strings ``"inf"``,
        ``"-inf"`` or ``"nan"`` because JSON has no such numbers; :meth:`from_dict` restores
        them."""
        return _encode(
            {
                "format": REPORT_FORMAT,
                "methods": list(self.methods),
                "rows": self.rows,
                "medians": self.medians,
                "info": self.info,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationReport:
        """Inverse of :meth:`to_dict`; medians are recomputed when absent."""
        fmt = d.get("format", REPORT_FORMAT)
        if fmt != REPORT_FORMAT:
            raise ValueError(f"unknown evaluation report format {fmt!r}")
        for key in ("methods", "rows"):
            if key not in d:
                raise ValueError(f"evaluation report: missing {key!r}")
        rows = _decode(list(d["rows"]))
        methods = [str(m) for m in d["methods"]]
        medians = (
            _decode(d["medians"])
            if d.get("medians") is not None
            else compute_medians(rows, methods)
        )
        return cls(methods=methods, rows=rows, medians=medians, info=_decode(d.get("info", {})))

    # -- queries --------------------------------------------------------------------------
    @property
    def field_ids(self) -> list[str]:
        """The fields in evaluation order."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.setdefault(r["field_id"], None)
        return list(seen)

    def values(self, method: str, metric: str) -> list[float]:
        """The per-field values of one metric for one method (field order), e.g. for box plots."""
        self._check(method, metric)
        return [float(r[metric]) for r in self.rows if r["method"] == method]

    def beats(self, method: str, other: str, metrics: Iterable[str] = ("psnr", "ssim")) -> bool:
        """True when ``method``'s median is strictly better than ``other``'s on every metric
        (higher PSNR / SSIM, lower MSE / NRMSE) — the quality gate's test. A NaN median never
        wins."""
        for m in metrics:
            self._check(method, m)
            self._check(other, m)
            a, b = self.medians[method][m], self.medians[other][m]
            if math.isnan(a) or math.isnan(b):
                return False
            if not (a > b if HIGHER_IS_BETTER[m] else a < b):
                return False
        return True

    def representative_field(self, method: str, metric: str = "psnr") -> str:
        """The field whose ``metric`` for ``method`` is closest to its median — a fair choice
        for the image panel (neither the best nor the worst case)."""
        self._check(method, metric)
        med = self.medians[method][metric]
        rows = [r for r in self.rows if r["method"] == method]
        if not rows:
            raise ValueError(f"no rows for method {method!r}")
        finite = [r for r in rows if math.isfinite(r[metric])] or rows
        if not math.isfinite(med):
            return str(finite[0]["field_id"])
        return str(min(finite, key=lambda r: abs(r[metric] - med))["field_id"])

    def summary(self) -> str:
        """A plain-text table of the medians (one line per method) for logs and the CLI."""
        name_w = max([len("method"), *(len(m) for m in self.methods)])
        lines = [f"{'method':<{name_w}}  {'MSE':>10}  {'NRMSE':>8}  {'SSIM':>7}  {'PSNR':>7}"]
        for m in self.methods:
            md = self.medians[m]
            lines.append(
                f"{m:<{name_w}}  {md['mse']:>10.3g}  {md['nrmse']:>8.4f}  "
                f"{md['ssim']:>7.4f}  {md['psnr']:>7.2f}"
            )
        return "\n".join(lines)

    def to_csv(self) -> str:
        """Per-field rows as CSV (``field_id, method, planes, mse, nrmse, ssim, psnr`` and one
        ``<metric>_c<k>`` column per channel)."""
        n_ch = max((len(r.get("per_channel", ())) for r in self.rows), default=0)
        header = [
            "field_id",
            "method",
            "planes",
            *METRICS,
            *(f"{m}_c{k}" for k in range(n_ch) for m in METRICS),
        ]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in self.rows:
            pc = r.get("per_channel", [])
            per = [
                repr(float(pc[k][m])) if k < len(pc) else "" for k in range(n_ch) for m in METRICS
            ]
            w.writerow(
                [
                    r["field_id"],
                    r["method"],
                    r.get("planes", 1),
                    *(repr(float(r[m])) for m in METRICS),
                    *per,
                ]
            )
        return buf.getvalue()

    def _check(self, method: str, metric: str) -> None:
        if method not in self.medians:
            raise ValueError(f"method {method!r} is not in the report (methods: {self.methods})")
        if metric not in HIGHER_IS_BETTER:
            raise ValueError(f"unknown metric {metric!r} (known: {list(METRICS)})")


def compute_medians(
    rows: Sequence[Mapping[str, Any]], methods: Sequence[str]
) -> dict[str, dict[str, float]]:
    """method → metric → median over that method's rows (NaN when a method has no rows)."""
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        out[m] = {
            k: float(np.median([float(r[k]) for r in mine])) if mine else float("nan")
            for k in METRICS
        }
    return out


# ---------------------------------------------------------------------------------- evaluation
def evaluate(
    fields: Sequence[Field],
    predictors: Mapping[str, Predictor],
    include_identity: bool = True,
    optics: Optics | None = None,
    rl_iterations: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Score every method on every field under the metric protocol.

    ``fields``: ``(field_id, lq, hq)`` with aligned ``lq`` and ``hq`` of one shape, ``(C)YX`` or
    ``ZCYX`` (any real dtype). ``predictors``: method name → function ``lq → prediction`` of the
    HQ's shape, run in the given order. Methods, in order: ``"identity"`` (the LQ itself, when
    ``include_identity``), ``"richardson_lucy"`` (when ``optics`` is given: the LQ microscope's
    NA, immersion index, pixel size and one emission wavelength per channel; ``rl_iterations``
    iterations, plane by plane), then the predictors. ``progress(done, total)`` is called after
    each (field, method). Raises ``ValueError`` naming the field and method for a shape mismatch
    or a non-finite prediction — a silent NaN score would corrupt the quality gate.
    """
    if not fields:
        raise ValueError("evaluate: no test fields")
    if rl_iterations < 1:
        raise ValueError(f"rl_iterations must be >= 1 (got {rl_iterations})")
    methods: list[str] = []
    runners: dict[str, Predictor] = {}
    if include_identity:
        methods.append(IDENTITY)
        runners[IDENTITY] = lambda lq: lq
    if optics is not None:
        methods.append(RICHARDSON_LUCY)
        runners[RICHARDSON_LUCY] = rl_predictor(optics, rl_iterations)
    for name, fn in predictors.items():
        if name in runners:
            raise ValueError(
                f"method name {name!r} is used twice (identity and "
                f"Richardson–Lucy are added by evaluate itself)"
            )
        methods.append(str(name))
        runners[str(name)] = fn
    if not methods:
        raise ValueError("evaluate: no methods (no predictors, no identity, no optics)")

    seen: set[str] = set()
    for fid, lq, hq in fields:
        if fid in seen:
            raise ValueError(f"field id {fid!r} appears twice")
        seen.add(fid)
        if np.shape(lq) != np.shape(hq):
            raise ValueError(f"field {fid!r}: LQ shape {np.shape(lq)} != HQ shape {np.shape(hq)}")
        if np.ndim(hq) not in (2, 3, 4):
            raise ValueError(
                f"field {fid!r}: expected a (C)YX or ZCYX image, got shape {np.shape(hq)}"
            )

    total, done = len(fields) * len(methods), 0
    rows: list[dict] = []
    for fid, lq, hq in fields:
        for name in methods:
            pred = np.asarray(runners[name](lq))
            if pred.shape != np.shape(hq):
                raise ValueError(
                    f"field {fid!r}, method {name!r}: prediction shape {pred.shape}"
                    f" != HQ shape {np.shape(hq)}"
                )
            if not np.all(np.isfinite(pred)):
                raise ValueError(
                    f"field {fid!r}, method {name!r}: the prediction has non-finite values"
                )
            rows.append({"field_id": str(fid), "method": name, **score_field(pred, hq)})
            done += 1
            if progress is not None:
                progress(done, total)
    info: dict[str, Any] = {
        "protocol": {
            "gt_percentiles": [GT_LOW, GT_HIGH],
            "fit": "least-squares scale+offset",
            "data_range": 1.0,
            "z_stacks": "plane by plane, mean over planes",
        },
        "n_fields": len(fields),
        "rl_iterations": rl_iterations if optics is not None else None,
        "optics": None
        if optics is None
        else {
            "na": optics.na,
            "immersion_index": optics.immersion_index,
            "pixel_size_um": optics.pixel_size_um,
            "wavelengths_nm": list(optics.wavelengths_nm),
        },
    }
    return EvaluationReport(
        methods=methods, rows=rows, medians=compute_medians(rows, methods), info=info
    )


def score_field(prediction: np.ndarray, ground_truth: np.ndarray) -> dict:
    """Protocol scores of one field: ``(C)YX`` directly, ``ZCYX`` plane by plane and averaged.

    Returns ``{mse, nrmse, ssim, psnr, planes, per_channel}``.
    """
    pred, gt = np.asarray(prediction), np.asarray(ground_truth)
    if pred.ndim == 4:
        planes = [score_image(p, g) for p, g in zip(pred, gt, strict=True)]
    else:
        planes = [score_image(pred, gt)]
    n_ch = len(planes[0]["per_channel"])
    out: dict[str, Any] = {k: _mean([s[k] for s in planes]) for k in METRICS}
    out["planes"] = len(planes)
    out["per_channel"] = [
        {k: _mean([s["per_channel"][c][k] for s in planes]) for k in METRICS} for c in range(n_ch)
    ]
    return out


def rl_predictor(optics: Optics, iterations: int = 10) -> Predictor:
    """Richardson–Lucy as a predictor: ``(C)YX`` or ``ZCYX`` (plane by plane), float32 out."""

    def run(lq: np.ndarray) -> np.ndarray:
        arr = np.asarray(lq)
        if arr.ndim == 4:
            return np.stack([richardson_lucy(p, optics, iterations) for p in arr])
        return richardson_lucy(arr, optics, iterations)

    return run


def model_predictor(model: EnhancementModel, ensemble: bool = False) -> Predictor:
    """A trained :class:`~models.model.EnhancementModel` as a predictor (``CYX`` / ``ZCYX``
    input; a 2-D input is one channel). TensorFlow runs only when the predictor is called."""

    def run(lq: np.ndarray) -> np.ndarray:
        axes = {2: "YX", 3: "CYX", 4: "ZCYX"}.get(np.ndim(lq))
        if axes is None:
            raise ValueError(f"cannot enhance an array of shape {np.shape(lq)}")
        return model.predict(lq, axes, ensemble=ensemble)

    return run


def method_outputs(
    lq: np.ndarray,
    predictors: Mapping[str, Predictor],
    optics: Optics | None = None,
    rl_iterations: int = 10,
) -> dict[str, np.ndarray]:
    """The outputs of Richardson–Lucy (when ``optics`` is given) and each predictor for one
    field, in :func:`evaluate`'s order — what :func:`models.figures.comparison_panel` shows."""
    out: dict[str, np.ndarray] = {}
    if optics is not None:
        out[RICHARDSON_LUCY] = rl_predictor(optics, rl_iterations)(lq)
    for name, fn in predictors.items():
        out[name] = np.asarray(fn(lq))
    return out


# ---------------------------------------------------------------------------------- helpers
def _mean(values: Sequence[float]) -> float:
    return float(np.mean(np.asarray(values, dtype=np.float64)))


def _encode(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: (
                _NONFINITE[v]
                if k in HIGHER_IS_BETTER and isinstance(v, str) and v in _NONFINITE
                else _decode(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj
