"""Choose ``cpu-small`` by measurement: train one variant, record its validation curve.

Trains on W2S fields 001–060 and validates on 061–064 only (the test fields 065–080 are never
touched here — they belong to ``bench/quality.py``). Each run writes
``bench/out/tune/<label>.json`` (config, steps, the validation history, training losses; the
model itself in ``<label>.model``) and
prints one summary line; ``--table`` prints every recorded run side by side.

    .venv/bin/python -m bench.tune --label base --minutes 15
    .venv/bin/python -m bench.tune --label f16 --minutes 15 --set base_filters=16
    .venv/bin/python -m bench.tune --table
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.quality import DATA, load, parse_fields  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "tune")


def _patchwise(trainer, image_cyx, patch: int):
    """Prediction of non-overlapping ``patch``² crops, each without context (as in training)."""
    import numpy as np

    c, h, w = image_cyx.shape
    hwc = np.moveaxis(image_cyx, 0, -1)
    crops = [
        hwc[y : y + patch, x : x + patch] for y in range(0, h, patch) for x in range(0, w, patch)
    ]
    out = trainer.predict_fn(np.stack(crops))
    res = np.zeros_like(hwc)
    i = 0
    for y in range(0, h, patch):
        for x in range(0, w, patch):
            res[y : y + patch, x : x + patch] = out[i]
            i += 1
    return np.moveaxis(res, -1, 0)


def diagnose(trainer, twin, patch: int, nvl, nvh, ntl, nth) -> dict:
    """With the averaged weights: normalised validation fields whole and as context-free
    training-size patches (does training on small patches fit inference on whole images?), a
    few normalised training fields whole (does the model overfit the fields it trains on?), the
    training objective itself (MSE against the training-normalised target) on those fields, and
    the same weights run in float32 by ``twin`` (does the mixed policy's rounding cost PSNR?)."""
    import numpy as np

    from models.metrics import score_image

    with trainer.averaged_weights():
        whole = trainer.validate(nvl, nvh)
        pw = [score_image(_patchwise(trainer, a, patch), b) for a, b in zip(nvl, nvh, strict=True)]
        train = trainer.validate(ntl, nth)
        objective = float(
            np.mean(
                [
                    np.mean((trainer.predict_normalized(a) - b) ** 2)
                    for a, b in zip(ntl, nth, strict=True)
                ]
            )
        )
        out = {}
        if twin is not None:
            twin.generator.set_weights(trainer.generator.get_weights())
            f32 = twin.validate(nvl, nvh)
            out = {
                "val_whole_f32": round(f32["val_psnr"], 3),
                "val_ssim_f32": round(f32["val_ssim"], 4),
            }
        wnorm = float(
            np.sqrt(
                sum(
                    float(np.sum(w.astype(np.float64) ** 2))
                    for w in trainer.generator.get_weights()
                )
            )
        )
    return {
        "val_whole": round(whole["val_psnr"], 3),
        **out,
        "val_patchwise": round(float(np.mean([s["psnr"] for s in pw])), 3),
        "train4_whole": round(train["val_psnr"], 3),
        "train4_ssim": round(train["val_ssim"], 4),
        "train4_objective_mse": round(objective, 6),
        "weight_norm": round(wnorm, 2),
    }


def run(
    label: str,
    preset: str,
    overrides: dict,
    minutes: float,
    val_every: int,
    train_fields: list[int],
    val_fields: list[int],
    raw_every: int = 300,
    diag_every: int = 400,
) -> dict:
    from models import Config, EnhancementModel
    from models.data import fit_to_input
    from models.networks import count_params
    from models.training import Trainer

    cfg = Config.preset(preset).with_overrides({"val_every": val_every, **overrides})
    model = EnhancementModel(cfg, name=f"tune-{label}")
    tl, th = load(DATA, train_fields)
    vl, vh = load(DATA, val_fields)
    losses: list[tuple[int, float]] = []
    raw_history: list[tuple[int, float, float]] = []
    diagnostics: list[dict] = []
    # the same weights run in float32 (the mixed policy's rounding measured), built once
    twin = (
        Trainer(cfg.with_overrides(adv_weight=0.0), tl[0].shape[0], "float32")
        if diag_every and model.policy != "float32"
        else None
    )
    norm = model.normalization  # the images the trainer validates on, normalised once
    nvl, nvh = [norm(a) for a in vl], [norm(a) for a in vh]
    ntl = [norm(a) for a in tl[:4]]
    nth = [norm(a) for a in th[:4]]
    if cfg.fit_target_to_input:  # the targets training sees, so the objective is the real one
        nth = [fit_to_input(b, a) for a, b in zip(ntl, nth, strict=True)]

    def progress(p: dict) -> None:
        if p["step"] % 50 == 0:
            losses.append((p["step"], round(p["losses"].get("g_total", float("nan")), 6)))
        if cfg.ema_momentum is not None and p["step"] % raw_every == 0:
            # the raw (not averaged) weights on the same trajectory, to measure the average
            v = model._ensure_built().validate(nvl, nvh)
            raw_history.append((p["step"], round(v["val_psnr"], 3), round(v["val_ssim"], 4)))
        if diag_every and p["step"] % diag_every == 0:
            diagnostics.append(
                {
                    "step": p["step"],
                    **diagnose(model._ensure_built(), twin, cfg.patch_size, nvl, nvh, ntl, nth),
                }
            )

    t0 = time.perf_counter()
    res = model.train(
        tl, th, train_fields, val_lq=vl, val_hq=vh, minutes=minutes, seed=0, progress=progress
    )
    rec = {
        "label": label,
        "preset": preset,
        "overrides": overrides,
        "minutes": minutes,
        "train_s": round(time.perf_counter() - t0, 1),
        "steps": res.steps,
        "params": count_params(model.generator),
        "policy": model.policy,
        "best_step": res.best_step,
        "best_val_psnr": res.best_val_psnr,
        "best_val_ssim": res.best_val_ssim,
        "history": [
            (h["step"], round(h["elapsed_s"]), round(h["val_psnr"], 3), round(h["val_ssim"], 4))
            for h in res.history
        ],
        "recoveries": res.recoveries,
        "raw_history": raw_history,
        "diagnostics": diagnostics,
        "losses": losses,
        "load": os.getloadavg(),
    }
    os.makedirs(OUT, exist_ok=True)
    model.save(os.path.join(OUT, f"{label}.model"))
    with open(os.path.join(OUT, f"{label}.json"), "w", encoding="utf-8") as fh:
        json.dump(rec, fh, indent=1)
    return rec


def table() -> str:
    rows = []
    for fn in sorted(os.listdir(OUT)):
        if fn.endswith(".json"):
            with open(os.path.join(OUT, fn), encoding="utf-8") as fh:
                rows.append(json.load(fh))
    lines = [
        "| label | overrides | min | steps | params | best step | val PSNR | val SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -(r["best_val_psnr"] or 0)):
        lines.append(
            f"| {r['label']} | {json.dumps(r['overrides'])} | {r['minutes']} | "
            f"{r['steps']} | {r['params'] / 1e6:.2f} M | {r['best_step']} | "
            f"{r['best_val_psnr']:.3f} | {r['best_val_ssim']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label")
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument(
        "--diag-every", type=int, default=400, help="steps between diagnostics (0: none)"
    )
    ap.add_argument("--train-fields", default="1-60")
    ap.add_argument("--val-fields", default="61-64")
    ap.add_argument("--table", action="store_true", help="print all recorded runs")
    a = ap.parse_args(argv)
    if a.table:
        print(table())
        return 0
    if not a.label:
        ap.error("--label is required")
    overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    rec = run(
        a.label,
        a.preset,
        overrides,
        a.minutes,
        a.val_every,
        parse_fields(a.train_fields),
        parse_fields(a.val_fields),
        diag_every=a.diag_every,
    )
    print(
        json.dumps(
            {
                k: rec[k]
                for k in (
                    "label",
                    "steps",
                    "best_step",
                    "best_val_psnr",
                    "best_val_ssim",
                    "train_s",
                    "recoveries",
                )
            }
        )
    )
    for h in rec["history"]:
        step, secs, psnr, ssim = h[:4]
        print(f"  step {step:5d}  {secs:4d}s  PSNR {psnr:.3f}  SSIM {ssim:.4f}")
    for step, psnr, ssim in rec["raw_history"]:
        print(f"  raw weights, step {step:5d}:  PSNR {psnr:.3f}  SSIM {ssim:.4f}")
    for d in rec["diagnostics"]:
        print("  diagnostics:", json.dumps(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
