"""Evaluation under the metric protocol, the report's JSON form and the gate's ``beats``, and the
figures (valid PNGs of sensible size). Small synthetic fields only: the whole file runs in a few
seconds on 2 CPU cores."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from models import figures, synthetic
from models.baselines import Optics
from models.evaluation import (
    EvaluationReport,
    compute_medians,
    evaluate,
    method_outputs,
    score_field,
)
from models.metrics import score_image

OPTICS = Optics(
    na=1.3, immersion_index=1.515, pixel_size_um=0.1, wavelengths_nm=synthetic.WAVELENGTHS_NM
)


@pytest.fixture(scope="module")
def fields() -> list[tuple[str, np.ndarray, np.ndarray]]:
    lq, hq, ids = synthetic.make_dataset(3, (64, 64), seed=11)
    return list(zip(ids, lq, hq, strict=True))


@pytest.fixture(scope="module")
def report(fields) -> EvaluationReport:
    hq_of = {id(lq): hq for _, lq, hq in fields}
    calls: list[tuple[int, int]] = []
    rep = evaluate(
        fields,
        {
            "oracle": lambda lq: hq_of[id(lq)].astype(np.float32),
            "lq copy": lambda lq: np.asarray(lq, np.float32) * 2.0 + 5.0,
        },
        optics=OPTICS,
        rl_iterations=5,
        progress=lambda done, total: calls.append((done, total)),
    )
    rep.info["progress_calls"] = calls
    return rep


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.format == "PNG"
    return im.size


# ---------------------------------------------------------------------------------- evaluate
def test_methods_rows_and_progress(report, fields):
    assert report.methods == ["identity", "richardson_lucy", "oracle", "lq copy"]
    assert len(report.rows) == len(fields) * 4
    assert report.field_ids == [f[0] for f in fields]
    assert report.info["progress_calls"] == [(i, 12) for i in range(1, 13)]
    row = report.rows[0]
    assert row["field_id"] == fields[0][0] and row["method"] == "identity"
    assert set(row) >= {"mse", "nrmse", "ssim", "psnr", "planes", "per_channel"}
    assert len(row["per_channel"]) == 3 and row["planes"] == 1
    # the row is exactly the protocol's score of the LQ
    ref = score_image(fields[0][1], fields[0][2])
    for k in ("mse", "nrmse", "ssim", "psnr"):
        assert row[k] == pytest.approx(ref[k], rel=1e-12)
        assert [c[k] for c in row["per_channel"]] == pytest.approx(
            [c[k] for c in ref["per_channel"]], rel=1e-12
        )


def test_oracle_best_and_affine_copy_equals_identity(report):
    med = report.medians
    assert med["oracle"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert med["oracle"]["psnr"] > 100 and med["oracle"]["mse"] < 1e-10
    for other in ("identity", "richardson_lucy", "lq copy"):
        assert report.beats("oracle", other, metrics=("mse", "nrmse", "ssim", "psnr"))
        assert not report.beats(other, "oracle")
    # the protocol's scale+offset fit makes an affine copy of the LQ score as the LQ itself
    for k in ("mse", "nrmse", "ssim", "psnr"):
        assert med["lq copy"][k] == pytest.approx(med["identity"][k], rel=1e-6)
    assert not report.beats("lq copy", "identity")  # equal is not better
    assert report.info["optics"]["na"] == 1.3 and report.info["rl_iterations"] == 5


def test_medians_by_hand():
    rows = [
        {"field_id": f"f{i}", "method": m, "mse": v, "nrmse": v * 10, "ssim": 1 - v, "psnr": 10 / v}
        for i, (m, v) in enumerate([("a", 0.1), ("a", 0.4), ("a", 0.2), ("b", 0.3), ("b", 0.5)])
    ]
    med = compute_medians(rows, ["a", "b"])
    assert med["a"] == pytest.approx({"mse": 0.2, "nrmse": 2.0, "ssim": 0.8, "psnr": 50.0})
    assert med["b"] == pytest.approx(
        {"mse": 0.4, "nrmse": 4.0, "ssim": 0.6, "psnr": (100 / 3 + 20) / 2}
    )
    rep = EvaluationReport(methods=["a", "b"], rows=rows, medians=med)
    assert rep.beats("a", "b") and rep.beats("a", "b", metrics=("mse", "nrmse"))
    assert not rep.beats("b", "a")
    rep.medians["a"]["ssim"] = 0.5  # better PSNR, worse SSIM: not a win
    assert not rep.beats("a", "b") and rep.beats("a", "b", metrics=("psnr",))
    rep.medians["b"]["psnr"] = float("nan")
    assert not rep.beats("a", "b", metrics=("psnr",))
    with pytest.raises(ValueError, match="'c'"):
        rep.beats("a", "c")
    with pytest.raises(ValueError, match="unknown metric"):
        rep.beats("a", "b", metrics=("sharpness",))


def test_z_stack_scored_plane_by_plane(fields):
    _, lq0, hq0 = fields[0]
    _, lq1, hq1 = fields[1]
    lq, hq = np.stack([lq0, lq1]), np.stack([hq0, hq1])
    s = score_field(lq, hq)
    a, b = score_image(lq0, hq0), score_image(lq1, hq1)
    assert s["planes"] == 2
    assert s["psnr"] == pytest.approx((a["psnr"] + b["psnr"]) / 2)
    assert s["per_channel"][2]["ssim"] == pytest.approx(
        (a["per_channel"][2]["ssim"] + b["per_channel"][2]["ssim"]) / 2
    )
    rep = evaluate([("stack", lq, hq)], {}, optics=OPTICS, rl_iterations=2)
    assert [r["planes"] for r in rep.rows] == [2, 2]
    assert rep.rows[0]["psnr"] == pytest.approx(s["psnr"])


def test_json_round_trip_with_infinite_psnr(fields):
    fid, lq, hq = fields[0]
    rep = evaluate([(fid, lq, hq)], {"exact": lambda x: hq}, include_identity=True)
    rep.rows[1]["psnr"] = rep.medians["exact"]["psnr"] = float("inf")  # a perfect prediction
    text = json.dumps(rep.to_dict(), allow_nan=False)  # strict JSON
    back = EvaluationReport.from_dict(json.loads(text))
    assert back.methods == rep.methods and back.info == json.loads(json.dumps(rep.info))
    assert back.medians["exact"]["psnr"] == math.inf
    assert back.rows[1]["psnr"] == math.inf
    assert back.rows[0] == rep.rows[0]
    assert back.medians["identity"] == rep.medians["identity"]
    assert back.beats("exact", "identity")
    with pytest.raises(ValueError, match="format"):
        EvaluationReport.from_dict({**rep.to_dict(), "format": "other/9"})


def test_helpers_csv_summary_representative(report):
    csv_text = report.to_csv().splitlines()
    assert csv_text[0].startswith("field_id,method,planes,mse,nrmse,ssim,psnr,mse_c0")
    assert len(csv_text) == 1 + len(report.rows)
    summary = report.summary()
    assert all(m in summary for m in report.methods)
    fid = report.representative_field("identity")
    vals = report.values("identity", "psnr")
    med = report.medians["identity"]["psnr"]
    assert report.field_ids.index(fid) == int(np.argmin([abs(v - med) for v in vals]))


def test_bad_inputs(fields):
    fid, lq, hq = fields[0]
    with pytest.raises(ValueError, match="shape"):
        evaluate([(fid, lq, hq)], {"crop": lambda x: x[:, :32]})
    with pytest.raises(ValueError, match="non-finite"):
        evaluate([(fid, lq, hq)], {"nan": lambda x: np.full(x.shape, np.nan)})
    with pytest.raises(ValueError, match="twice"):
        evaluate([(fid, lq, hq)], {"identity": lambda x: x})
    with pytest.raises(ValueError, match="twice"):
        evaluate([(fid, lq, hq), (fid, lq, hq)], {})
    with pytest.raises(ValueError, match="LQ shape"):
        evaluate([(fid, lq[:, :32], hq)], {})
    with pytest.raises(ValueError, match="no test fields"):
        evaluate([], {"x": lambda x: x})


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, models.evaluation, models.figures; "
        "bad = [m for m in ('tensorflow', 'keras', 'fastapi', 'celery', 'api', 'worker') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------- figures
def test_box_plots_png(report):
    w, h = _png_size(figures.box_plots(report))
    assert 800 <= w <= 3000 and 300 <= h <= 1500


def test_comparison_panel_png(fields):
    _, lq, hq = fields[0]
    outs = method_outputs(
        lq, {"generated": lambda x: hq.astype(np.float32)}, optics=OPTICS, rl_iterations=3
    )
    assert list(outs) == ["richardson_lucy", "generated"]
    png = figures.comparison_panel(lq, hq, outs, emission_nm=list(synthetic.WAVELENGTHS_NM))
    w, h = _png_size(png)
    assert 800 <= w <= 3000 and 400 <= h <= 3000
    # explicit row, 2-D and Z-stack inputs
    _png_size(
        figures.comparison_panel(lq[0], hq[0], {"g": hq[0]}, profile_row=10, show_scores=False)
    )
    _png_size(figures.comparison_panel(lq[None], hq[None], {"g": hq[None]}))
    with pytest.raises(ValueError, match="profile_row"):
        figures.comparison_panel(lq, hq, {}, profile_row=64)
    with pytest.raises(ValueError, match="emission"):
        figures.comparison_panel(lq, hq, {}, emission_nm=[500.0])


def test_profile_row_and_colours():
    img = np.zeros((2, 40, 50))
    img[0, 23, ::2] = 1.0  # a row full of edges
    assert figures.choose_profile_row(img) in (22, 23, 24)
    assert figures.channel_colors(3, [565.0, 461.0, 520.0]) == [
        (1.0, 0.0, 0.0),
        (0.0, 0.35, 1.0),
        (0.0, 1.0, 0.0),
    ]  # red, blue, green by wavelength


def test_report_and_curves_png(report, fields):
    _, lq, hq = fields[0]
    panel = figures.comparison_panel(lq, hq, {"oracle": hq})
    pw, ph = _png_size(panel)
    bw, bh = _png_size(figures.box_plots(report))
    w, h = _png_size(figures.report_png(report, panel, title="version 3"))
    assert w == max(pw, bw) and h > ph + bh
    history = [
        {
            "step": s,
            "losses": {"g_total": 1.0 / s, "d_loss": 0.69},
            "val_psnr": None if s % 2 else 20 + s,
            "val_ssim": None if s % 2 else 0.5,
        }
        for s in range(1, 11)
    ]
    history += [{"step": 12, "elapsed_s": 3.0, "val_psnr": 33.0, "val_ssim": 0.8}]
    cw, ch = _png_size(figures.curves_png(history))
    assert 800 <= cw <= 2000 and 250 <= ch <= 800
    _png_size(figures.curves_png([]))
