"""Transfer benchmark (issue 19): how much a base saves a new pairing — the learning curve.

On the real W2S pairs, scored with the quality protocol of :mod:`bench.quality` (its loading,
scoring, medians and BM3D are imported, not repeated) on the test fields 065–080, which no model
here saw: for N training fields (the first N of 001–060; ``all`` = 001–060) and a wall-clock
budget of M minutes, a ``cpu-small`` generator trained **from scratch** against one
**fine-tuned** from the base (:mod:`models.base_init`; by default
``bench/bases/synthetic-only.zip``, the package's base until 2026-12-05, pretrained on synthetic
pairs only, so it never saw W2S — the base shipped now also saw W2S's training fields,
:mod:`bench.shipped_base`; a single-channel base starts a ``per_channel`` generator, as in the
service). ``--finetune-lr`` / ``--finetune-warmup`` change the fine-tune's schedule and ``--tag``
names such a variant's row. Every run keeps its best weights on the validation fields 061–064,
as the quality bench does. Beside them: BM3D (σ_psd factor chosen on the validation fields by
the quality bench, ``--bm3d-factor``) and the base alone, applied to each channel on its own,
with no fine-tuning.

Each point is written to ``OUT/rows/<name>.json`` when it finishes; ``--reuse`` keeps those
already there, so the grid can be run in pieces. ``summary.md`` (table) and ``curve.png`` (PSNR
and SSIM against fields) are made from every row file present; ``--docs`` copies the plot to
``docs/img/transfer_curve.png``.

    .venv/bin/python -m bench.transfer                                   # the whole grid
    .venv/bin/python -m bench.transfer --fields 4 --minutes 3            # the headline points
    .venv/bin/python -m bench.transfer --rows bm3d,base                  # the references only
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.machine import machine, short  # noqa: E402
from bench.quality import DATA, bm3d_denoise, load, medians, parse_fields, score_all  # noqa: E402

FIELD_COUNTS = ("1", "2", "4", "8", "all")
MINUTES = ("1", "3", "15")
MODES = ("scratch", "finetune")
REFERENCES = ("bm3d", "base")
#: The learning curve's base: pretrained on synthetic pairs only (shipped until 2026-12-05).
SYNTHETIC_BASE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "bases", "synthetic-only.zip"
)
BM3D_FACTOR = 3.0  # bench.quality's choice on the validation fields (docs/benchmarks.md)


def run_name(mode: str, fields: str, minutes: str, fresh_io: bool = False, tag: str = "") -> str:
    suffix = "-freshio" if fresh_io and mode == "finetune" else ""
    suffix += f"-{tag}" if tag and mode == "finetune" else ""
    return f"{mode}-{fields}f-{minutes}min{suffix}"


def _train_fields(spec: str, pool: list[int]) -> list[int]:
    return pool if spec == "all" else pool[: int(spec)]


def _base(path: str) -> Any:
    from models.model import EnhancementModel

    return EnhancementModel.load(path, precision="float32")


def run_curve_point(ctx: dict, mode: str, fields: str, minutes: str) -> tuple[list, dict]:
    """Train one generator (from scratch or from the base) and predict the test fields."""
    from models.base_init import initialise_from_base
    from models.cli_pretraining import start_config
    from models.config import Config
    from models.model import EnhancementModel

    chosen = _train_fields(fields, ctx["pool"])
    lq, hq = load(ctx["data"], chosen)
    config = Config.preset(ctx["preset"])
    if mode == "finetune":
        config = start_config(config, ctx["base"], ctx["base_label"])
        config = config.with_overrides(ctx["finetune_overrides"])
    name = run_name(mode, fields, minutes, ctx["fresh_io"], ctx["tag"])
    model = EnhancementModel(config, n_channels=lq[0].shape[0], name=name)
    if mode == "finetune":
        initialise_from_base(model, ctx["base"])
        if ctx["fresh_io"]:
            _fresh_io_layers(model, ctx["base"], config)
    vl, vh = ctx["val"]
    t0 = time.perf_counter()
    result = model.train(lq, hq, chosen, val_lq=vl, val_hq=vh, minutes=float(minutes), seed=0)
    train_s = time.perf_counter() - t0
    preds = [model.predict(a) for a in ctx["test"][0]]
    meta = {
        "mode": mode,
        "fields": fields,
        "train_fields": chosen,
        "minutes": float(minutes),
        "train_s": train_s,
        "steps": result.steps,
        "best_step": result.best_step,
        "best_val_psnr": result.best_val_psnr,
        "init": config.init,
        "fresh_io": bool(ctx["fresh_io"] and mode == "finetune"),
        "per_channel": config.per_channel,
        "learning_rate": config.learning_rate,
        "warmup_steps": config.warmup_steps,
        "batch_size": config.batch_size,
        "samples_per_step": config.samples_per_step(lq[0].shape[0]),
        "tag": ctx["tag"] if mode == "finetune" else "",
    }
    return preds, meta


def _fresh_io_layers(model: Any, base: Any, config: Any) -> None:
    """``--fresh-io``: the layers that face the channels (those whose shape differs from the
    base's: the first convolution, the first level's projection, the last convolution) start
    from fresh weights, the inner ones from the base — an experiment, not the service's rule."""
    from models.model import EnhancementModel

    fresh = EnhancementModel(config, n_channels=model.n_channels).generator
    fresh_layers = {layer.name: layer for layer in fresh.layers if layer.weights}
    base_layers = {layer.name: layer for layer in base.generator.layers if layer.weights}
    for layer in model.generator.layers:
        if not layer.weights:
            continue
        theirs = base_layers[layer.name].get_weights()
        if any(a.shape != b.shape for a, b in zip(layer.get_weights(), theirs, strict=True)):
            layer.set_weights(fresh_layers[layer.name].get_weights())


def run_base_alone(ctx: dict) -> tuple[list, dict]:
    """The base on each channel of each test field on its own: what a pairing gets at once."""
    base = ctx["base"]
    preds = [
        np.concatenate([base.predict(np.asarray(a[c : c + 1], np.float32)) for c in range(len(a))])
        for a in ctx["test"][0]
    ]
    return preds, {"init": ctx["base_label"], "per_channel": True}


def run_bm3d(ctx: dict) -> tuple[list, dict]:
    t = time.perf_counter()
    preds = [bm3d_denoise(a, ctx["bm3d_factor"]) for a in ctx["test"][0]]
    return preds, {"sigma_factor": ctx["bm3d_factor"], "seconds": time.perf_counter() - t}


def label(rec: dict) -> str:
    meta = rec["meta"]
    if rec["row"] == "bm3d":
        return f"BM3D (σ_psd = {meta['sigma_factor']} × estimate_sigma)"
    if rec["row"] == "base":
        return "base alone, per channel (no fine-tuning)"
    what = "fine-tuned from the base" if meta["mode"] == "finetune" else "from scratch"
    if meta.get("fresh_io"):
        what += " (channel-facing layers fresh)"
    if meta.get("per_channel"):
        what += ", per channel"
    if meta.get("tag"):
        what += f" [{meta['tag']}]"
    return f"{what}, {meta['fields']} field(s), {meta['minutes']:g} min"


def cpu_of(rec: dict) -> str:
    """The CPU a row ran on ('' for rows written before rows recorded it)."""
    info = rec.get("info", {}).get("machine")
    return short(info) if info else ""


def write_summary(out: Path, records: list[dict], info: dict) -> str:
    lines = [
        "| run | fields | minutes | steps | PSNR dB | SSIM | NRMSE | CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = sorted(
        records,
        key=lambda r: (
            r["row"] not in REFERENCES,
            r["meta"].get("mode", ""),
            r["meta"].get("minutes", 0),
            len(r["meta"].get("train_fields", [])),
        ),
    )
    for rec in order:
        md, meta = medians(rec["scores"]), rec["meta"]
        steps = meta.get("steps", "")
        fields = meta.get("fields", "")
        minutes = f"{meta['minutes']:g}" if "minutes" in meta else ""
        lines.append(
            f"| {label(rec)} | {fields} | {minutes} | {steps} | {md['psnr']:.2f} | "
            f"{md['ssim']:.3f} | {md['nrmse']:.4f} | {cpu_of(rec)} |"
        )
    table = "\n".join(lines)
    (out / "summary.md").write_text(
        f"Medians over (field, channel) of {info.get('data', 'W2S')} test fields "
        f"{info['test_fields']} "
        f"({info['date']})\n\n{table}\n",
        encoding="utf-8",
    )
    return table


def plot(out: Path, records: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    curves: dict[tuple[str, float], list[tuple[int, dict]]] = {}
    several_cpus = len({cpu_of(r) for r in records if r["row"] not in REFERENCES}) > 1
    for rec in records:
        meta = rec["meta"]
        if rec["row"] in REFERENCES:
            continue
        mode = meta["mode"] + ("+fresh-io" if meta.get("fresh_io") else "")
        mode += f" [{meta['tag']}]" if meta.get("tag") else ""
        # Steps per minute differ by CPU: a grid gathered on two machines gets a curve each.
        cpu = cpu_of(rec)
        mode += f" ({cpu})" if several_cpus and cpu else ""
        curves.setdefault((mode, meta["minutes"]), []).append(
            (len(meta["train_fields"]), medians(rec["scores"]))
        )
    for ax, metric in zip(axes, ("psnr", "ssim"), strict=True):
        for (mode, minutes), points in sorted(curves.items()):
            points.sort(key=lambda p: p[0])
            style = "-o" if mode.startswith("finetune") else "--s"
            ax.plot(
                [p[0] for p in points],
                [p[1][metric] for p in points],
                style,
                label=f"{mode.replace('finetune', 'fine-tuned')}, {minutes:g} min",
            )
        for rec in records:
            if rec["row"] in REFERENCES:
                ax.axhline(
                    medians(rec["scores"])[metric],
                    ls=":",
                    color="k" if rec["row"] == "bm3d" else "tab:gray",
                    label=label(rec),
                )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training fields (W2S, 512² × 3 channels)")
        ax.set_ylabel("median PSNR (dB)" if metric == "psnr" else "median SSIM")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("W2S test fields 065–080: from scratch vs fine-tuned from the synthetic-only base")
    fig.tight_layout()
    path = out / "curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="learning curve: scratch vs fine-tuned (issue 19)")
    ap.add_argument("--data", default=os.path.normpath(DATA))
    ap.add_argument("--fields", default=",".join(FIELD_COUNTS), help="training field counts")
    ap.add_argument("--minutes", default=",".join(MINUTES), help="wall-clock budgets")
    ap.add_argument("--modes", default=",".join(MODES), help=f"subset of {MODES}")
    ap.add_argument(
        "--rows", default=",".join(REFERENCES), help=f"references: subset of {REFERENCES} or ''"
    )
    ap.add_argument(
        "--base",
        default=SYNTHETIC_BASE,
        help="a base model (default: the synthetic-only base, which never saw W2S)",
    )
    ap.add_argument("--bm3d-factor", type=float, default=BM3D_FACTOR)
    ap.add_argument(
        "--fresh-io",
        action="store_true",
        help="fine-tuning: the channel-facing layers start fresh, the inner ones from the base "
        "(a per-channel start has none: every layer has the base's shape)",
    )
    ap.add_argument("--finetune-lr", type=float, help="fine-tuning: peak learning rate")
    ap.add_argument("--finetune-warmup", type=int, help="fine-tuning: warm-up steps")
    ap.add_argument("--tag", default="", help="fine-tuning: suffix of the row's name (a variant)")
    ap.add_argument("--test-fields", default="65-80")
    ap.add_argument("--val-fields", default="61-64")
    ap.add_argument("--train-pool", default="1-60")
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "transfer")
    )
    ap.add_argument("--reuse", action="store_true", help="keep row files already in OUT")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--docs", action="store_true", help="copy the plot to docs/img/")
    a = ap.parse_args(argv)

    split = [parse_fields(s) for s in (a.test_fields, a.val_fields, a.train_pool)]
    if set(split[0]) & (set(split[1]) | set(split[2])) or set(split[1]) & set(split[2]):
        ap.error("train, validation and test fields must not overlap")
    modes = [m for m in a.modes.split(",") if m]
    rows = [r for r in a.rows.split(",") if r]
    if set(modes) - set(MODES) or set(rows) - set(REFERENCES):
        ap.error(f"--modes from {MODES}, --rows from {REFERENCES}")
    points = [
        (mode, f, m)
        for m in a.minutes.split(",")
        if m
        for f in a.fields.split(",")
        if f
        for mode in modes
    ]
    out = Path(a.out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    info = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m bench.transfer", *(argv if argv is not None else sys.argv[1:])]
        ),
        "data": os.path.basename(os.path.normpath(a.data)),
        "test_fields": a.test_fields,
        "val_fields": a.val_fields,
        "load_before": os.getloadavg()[0],
        "machine": machine(),
    }
    print(json.dumps(info), flush=True)
    if not a.report_only:
        ctx: dict[str, Any] = {
            "data": a.data,
            "preset": a.preset,
            "pool": split[2],
            "bm3d_factor": a.bm3d_factor,
            "fresh_io": a.fresh_io,
            "tag": a.tag,
            "finetune_overrides": {
                k: v
                for k, v in (
                    ("learning_rate", a.finetune_lr),
                    ("warmup_steps", a.finetune_warmup),
                )
                if v is not None
            },
            "test": load(a.data, split[0]),
            "val": load(a.data, split[1]),
        }
        if "base" in rows or "finetune" in modes:
            ctx["base"] = _base(a.base)
            ctx["base_label"] = f"file:{Path(a.base).name}"
        jobs: list[tuple[str, Any]] = [
            (r, (lambda c, r=r: run_bm3d(c) if r == "bm3d" else run_base_alone(c))) for r in rows
        ]
        jobs += [
            (run_name(*p, a.fresh_io, a.tag), (lambda c, p=p: run_curve_point(c, *p)))
            for p in points
        ]
        for name, fn in jobs:
            path = out / "rows" / f"{name}.json"
            if a.reuse and path.exists():
                print(f"[{name}] kept from an earlier run", flush=True)
                continue
            t = time.perf_counter()
            preds, meta = fn(ctx)
            scores = score_all(preds, ctx["test"][1], split[0])
            rec = {
                "row": name,
                "scores": scores,
                "meta": meta,
                "info": info,
                "wall_s": time.perf_counter() - t,
                "load_after": os.getloadavg()[0],
            }
            path.write_text(json.dumps(rec, indent=1, default=float), encoding="utf-8")
            md = medians(scores)
            print(
                f"[{name}] PSNR {md['psnr']:.2f} dB, SSIM {md['ssim']:.3f} "
                f"({rec['wall_s']:.0f} s, load {rec['load_after']:.1f})",
                flush=True,
            )
    records = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "rows").glob("*.json"))
    ]
    if not records:
        print("no results")
        return 1
    print(write_summary(out, records, info))
    png = plot(out, records)
    if a.docs:
        docs = Path(__file__).resolve().parent.parent / "docs" / "img"
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "transfer_curve.png").write_bytes(png.read_bytes())
    print("wrote", out / "summary.md", png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
