"""Quality benchmark of the science core (issue 8, "Quality benchmark"; paper Figs. 3–5).

On the real W2S pairs (``../shared/data/w2s-widefield-denoise``): methods that train use fields
001–060 and validate on 061–064 (keeping the best weights); everything is scored on the test
fields 065–080 with the protocol of :mod:`models.metrics` (per field and channel, ground truth
percentile-normalised 0.1 / 99.9, the output fitted to it by least-squares scale and offset,
``data_range = 1``). Every parameter a classical method has is chosen on the validation fields.

Rows (``--rows``, comma-separated; default all):

Tables give medians over all (field, channel) pairs of the test fields, as in the issue.

``identity``   the LQ input itself (the floor)
``gaussian``   Gaussian smoothing, σ chosen on the validation fields (PSNR)
``rl``         Richardson–Lucy, 10 iterations, Born–Wolf PSF (NA 1.49 oil, 0.1 µm pixels)
``bm3d``       BM3D (PyPI ``bm3d``) per channel, ``sigma_psd = k · skimage estimate_sigma``,
               ``k`` chosen on the validation fields
``care``       CARE (``csbdeep``; default 2-D U-Net, L1 loss), trained for ``--minutes``
``gen``        our generator alone (``cpu-small``, γ = 0), with and without the 8-fold
               test-time ensemble (``gen`` / ``gen+ens``)
``gan``        the GAN: ``cpu-small`` with its discriminator (γ = the preset's ``adv_weight``,
               or 1e-3 if the preset trains the generator alone), ``gan`` / ``gan+ens``
``precision``  ``gen`` trained twice at ``--precision-minutes`` (default ``--minutes``): in
               float32 (``gen-f32``) and in the hardware's mixed policy (``gen-mixed``; when the
               budgets are equal the ``gen`` row is that run)

Each row's scores are written to ``OUT/rows/<row>.json`` as soon as it finishes (``--reuse``
skips rows already there, so a long run can be resumed or split); the tables, the per-field CSV
and the figures are made from all row files present. Outputs (``OUT`` = ``bench/out/quality``):
``per_field.csv`` (one line per method, field and channel), ``summary.md`` (medians),
``boxplots.png`` (Fig. 5 style) and ``panel.png`` (LQ / RL / BM3D / ours / HQ with a line
profile, Figs. 3–4 style); ``--docs`` copies the two PNGs to ``docs/img/``.

    .venv/bin/python -m bench.quality                          # everything, 15-minute budgets
    .venv/bin/python -m bench.quality --minutes 1 --rows identity,gaussian,gen \\
        --fields 65-66 --val-fields 61 --out /tmp/q              # a smoke test (~2 min)
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

DATA = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "shared",
    "data",
    "w2s-widefield-denoise",
)
ALL_ROWS = ("identity", "gaussian", "rl", "bm3d", "care", "gen", "gan", "precision")
ORDER = (
    "identity",
    "gaussian",
    "rl",
    "bm3d",
    "care",
    "gen",
    "gen+ens",
    "gan",
    "gan+ens",
    "gen-mixed",
    "gen-f32",
)
METRICS = ("mse", "nrmse", "ssim", "psnr")
GAUSS_SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
BM3D_FACTORS = (2.0, 3.0, 4.0)
GAN_ADV_WEIGHT = 1e-3  # the gan row's γ when the preset trains the generator alone
# W2S: 60x / 1.49 NA oil; 0.1 µm pixels is the data README's estimate. The channels' emission
# wavelengths (DAPI, AF488, MitoTracker Red) are approximate.
W2S_OPTICS = dict(
    na=1.49, immersion_index=1.515, pixel_size_um=0.1, wavelengths_nm=(461.0, 520.0, 600.0)
)
LABELS = {
    "identity": "LQ (identity)",
    "gaussian": "Gaussian",
    "rl": "Richardson–Lucy",
    "bm3d": "BM3D",
    "care": "CARE",
    "gen": "cpu-small: generator (γ=0)",
    "gen+ens": "cpu-small: generator (γ=0) + ens.",
    "gan": "GAN (γ=1e-3)",
    "gan+ens": "GAN (γ=1e-3) + ens.",
    "gen-f32": "generator (γ=0), float32",
    "gen-mixed": "generator (γ=0), mixed",
}


def parse_fields(spec: str) -> list[int]:
    """``"65-80"`` or ``"1,3,5-7"`` -> a sorted list of field numbers."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return sorted(out)


def load(data: str, fields: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import tifffile

    lq = [
        np.asarray(tifffile.imread(os.path.join(data, "lq", f"field_{i:03d}.tif"))) for i in fields
    ]
    hq = [
        np.asarray(tifffile.imread(os.path.join(data, "hq", f"field_{i:03d}.tif"))) for i in fields
    ]
    return lq, hq


def percentile_norm(img: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    from models.data import Normalization

    return Normalization(low, high)(np.asarray(img, np.float32))


def score_all(preds: list[np.ndarray], hq: list[np.ndarray], fields: list[int]) -> list[dict]:
    from models.metrics import score_image

    rows = []
    for f, p, g in zip(fields, preds, hq, strict=True):
        s = score_image(p, g)
        for c, sc in enumerate(s["per_channel"]):
            rows.append({"field": f, "channel": c, **sc})
    return rows


def medians(scores: list[dict]) -> dict[str, float]:
    """Medians over all (field, channel) pairs – the issue's protocol."""
    return {m: float(np.median([s[m] for s in scores])) for m in METRICS}


def mean_psnr_ssim(preds, hq) -> tuple[float, float]:
    from models.metrics import score_image

    s = [score_image(p, g) for p, g in zip(preds, hq, strict=True)]
    return float(np.mean([x["psnr"] for x in s])), float(np.mean([x["ssim"] for x in s]))


# ---------------------------------------------------------------------------- methods
def run_identity(ctx) -> dict:
    return {"preds": {"identity": [np.asarray(x, np.float32) for x in ctx["test"][0]]}, "meta": {}}


def run_gaussian(ctx) -> dict:
    from models.baselines import gaussian_smooth

    vl, vh = ctx["val"]
    val = {
        s: mean_psnr_ssim([gaussian_smooth(percentile_norm(a), s) for a in vl], vh)
        for s in GAUSS_SIGMAS
    }
    best = max(val, key=lambda s: val[s][0])
    t = time.perf_counter()
    preds = [gaussian_smooth(percentile_norm(a), best) for a in ctx["test"][0]]
    return {
        "preds": {"gaussian": preds},
        "meta": {"sigma": best, "val": val, "seconds": time.perf_counter() - t},
    }


def run_rl(ctx) -> dict:
    from models.baselines import Optics, richardson_lucy

    optics = Optics(**W2S_OPTICS)
    t = time.perf_counter()
    preds = [richardson_lucy(percentile_norm(a), optics, iterations=10) for a in ctx["test"][0]]
    return {
        "preds": {"rl": preds},
        "meta": {"optics": W2S_OPTICS, "iterations": 10, "seconds": time.perf_counter() - t},
    }


def bm3d_denoise(img: np.ndarray, factor: float) -> np.ndarray:
    import bm3d
    from skimage.restoration import estimate_sigma

    x = percentile_norm(img)
    return np.stack(
        [
            np.asarray(bm3d.bm3d(ch, sigma_psd=factor * float(estimate_sigma(ch))), np.float32)
            for ch in x
        ]
    )


def run_bm3d(ctx) -> dict:
    vl, vh = ctx["val"]
    val = {k: mean_psnr_ssim([bm3d_denoise(a, k) for a in vl], vh) for k in BM3D_FACTORS}
    best = max(val, key=lambda k: val[k][0])
    t = time.perf_counter()
    preds = [bm3d_denoise(a, best) for a in ctx["test"][0]]
    dt = time.perf_counter() - t
    return {
        "preds": {"bm3d": preds},
        "meta": {
            "sigma_factor": best,
            "val": val,
            "seconds": dt,
            "seconds_per_channel": dt / max(1, 3 * len(preds)),
        },
    }


def run_care(ctx) -> dict:
    import keras
    from csbdeep.data import PadAndCropResizer, PercentileNormalizer
    from csbdeep.models import CARE
    from csbdeep.models import Config as CareConfig

    from models.data import PatchSampler

    minutes = ctx["minutes"]
    (tl, th), (vl, vh) = ctx["train"], ctx["val"]
    rng = np.random.default_rng(0)
    sampler = PatchSampler(
        [percentile_norm(a) for a in tl],
        [percentile_norm(a) for a in th],
        patch_size=128,
        batch_size=64,
    )
    X, Y = zip(*(sampler.sample(rng) for _ in range(16)), strict=True)
    X, Y = np.concatenate(X), np.concatenate(Y)
    vs = PatchSampler(
        [percentile_norm(a) for a in vl],
        [percentile_norm(a) for a in vh],
        patch_size=128,
        batch_size=64,
        flips=False,
        rot90=False,
    )
    Xv, Yv = vs.sample(rng)
    basedir = os.path.join(ctx["out"], "care_model")
    shutil.rmtree(basedir, ignore_errors=True)
    conf = CareConfig(
        "YXC",
        n_channel_in=3,
        n_channel_out=3,
        train_steps_per_epoch=50,
        train_epochs=100_000,
        train_batch_size=16,
        train_tensorboard=False,
    )
    care = CARE(conf, "care", basedir=basedir)
    care.prepare_for_training()
    t0 = time.perf_counter()

    class Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - t0 > minutes * 60:
                self.model.stop_training = True

    care.callbacks.append(Budget())
    hist = care.train(X, Y, validation_data=(Xv, Yv))
    train_s = time.perf_counter() - t0
    best = os.path.join(basedir, "care", "weights_best.h5")
    if os.path.exists(best):
        care.keras_model.load_weights(best)
    t = time.perf_counter()
    preds = [
        np.moveaxis(
            care.predict(
                np.moveaxis(np.asarray(a, np.float32), 0, -1),
                "YXC",
                normalizer=PercentileNormalizer(1, 99.8),
                resizer=PadAndCropResizer(),
            ),
            -1,
            0,
        )
        for a in ctx["test"][0]
    ]
    return {
        "preds": {"care": preds},
        "meta": {
            "train_s": train_s,
            "epochs": len(hist.history.get("loss", [])),
            "steps": 50 * len(hist.history.get("loss", [])),
            "params": int(care.keras_model.count_params()),
            "predict_s": time.perf_counter() - t,
        },
    }


def run_ours(ctx, row: str) -> dict:
    from models import Config, EnhancementModel
    from models.networks import count_params

    overrides = dict(ctx["overrides"])
    minutes = ctx["minutes"]
    if row in ("gen", "gen-f32", "gen-mixed"):
        overrides["adv_weight"] = 0.0
    if row in ("gen-f32", "gen-mixed"):
        minutes = ctx["precision_minutes"]
    if row == "gen-f32":
        overrides["precision"] = "float32"
    cfg = Config.preset(ctx["preset"]).with_overrides(overrides)
    if row == "gan" and cfg.adv_weight == 0:
        cfg = cfg.with_overrides(adv_weight=GAN_ADV_WEIGHT)
    model = EnhancementModel(cfg, name=f"bench-{row}")
    (tl, th), (vl, vh) = ctx["train"], ctx["val"]
    t0 = time.perf_counter()
    res = model.train(tl, th, ctx["train_fields"], val_lq=vl, val_hq=vh, minutes=minutes, seed=0)
    train_s = time.perf_counter() - t0
    meta = {
        "train_s": train_s,
        "steps": res.steps,
        "best_step": res.best_step,
        "best_val_psnr": res.best_val_psnr,
        "best_val_ssim": res.best_val_ssim,
        "policy": model.policy,
        "params": count_params(model.generator),
        "history": [
            (h["step"], round(h["elapsed_s"]), round(h["val_psnr"], 3), round(h["val_ssim"], 4))
            for h in res.history
        ],
        "config": cfg.to_dict(),
    }
    model.save(os.path.join(ctx["out"], "models", row))
    test = ctx["test"][0]
    t = time.perf_counter()
    preds = {row: [model.predict(a) for a in test]}
    meta["predict_s_per_field"] = (time.perf_counter() - t) / len(test)
    if row in ("gen", "gan"):
        t = time.perf_counter()
        preds[f"{row}+ens"] = [model.predict(a, ensemble=True) for a in test]
        meta["predict_ens_s_per_field"] = (time.perf_counter() - t) / len(test)
    return {"preds": preds, "meta": meta}


# ---------------------------------------------------------------------------- reporting
def write_tables(out: str, results: dict[str, dict], info: dict) -> str:
    order = [r for r in ORDER if r in results]
    with open(os.path.join(out, "per_field.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "field", "channel", *METRICS])
        for r in order:
            for s in results[r]["scores"]:
                w.writerow([r, s["field"], s["channel"], *(f"{s[m]:.6g}" for m in METRICS)])
    lines = ["| method | MSE | NRMSE | SSIM | PSNR dB | notes |", "|---|---|---|---|---|---|"]
    for r in order:
        md = medians(results[r]["scores"])
        lines.append(
            f"| {LABELS.get(r, r)} | {md['mse']:.5f} | {md['nrmse']:.4f} | "
            f"{md['ssim']:.3f} | {md['psnr']:.2f} | {results[r].get('note', '')} |"
        )
    table = "\n".join(lines)
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as fh:
        fh.write(
            f"Medians over (field, channel) of test fields {info.get('fields')} "
            f"({info.get('date')})\n\n"
        )
        fh.write(table + "\n")
    return table


def note_for(row: str, meta: dict) -> str:
    if row == "gaussian":
        return f"σ = {meta['sigma']} (validation)"
    if row == "bm3d":
        return (
            f"σ_psd = {meta['sigma_factor']} × estimate_sigma (validation); "
            f"{meta['seconds_per_channel']:.1f} s / 512² channel"
        )
    if row == "rl":
        return "10 iterations, Born–Wolf NA 1.49"
    if row == "care":
        return (
            f"{meta['params'] / 1e6:.2f} M params, {meta['train_s'] / 60:.1f} min, "
            f"{meta['steps']} steps, float32"
        )
    if row.startswith(("gen", "gan")):
        s = (
            f"{meta['params'] / 1e6:.2f} M params, {meta['policy']}, "
            f"{meta['train_s'] / 60:.1f} min, {meta['steps']} steps (best {meta['best_step']})"
        )
        if row.endswith("+ens"):
            s += f"; 8-fold ensemble, {meta.get('predict_ens_s_per_field', 0):.1f} s / field"
        return s
    return ""


def plot(
    out: str, results: dict[str, dict], panel: dict[str, np.ndarray], panel_field: int | None
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.metrics import normalize_minmse, normalize_percentile

    files = []
    order = [r for r in ORDER if r in results]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6))
    for ax, m in zip(axes, METRICS, strict=True):
        data = [[s[m] for s in results[r]["scores"]] for r in order]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(
            range(1, len(order) + 1),
            [LABELS.get(r, r) for r in order],
            rotation=60,
            ha="right",
            fontsize=8,
        )
        ax.set_title(m.upper() + (" (dB)" if m == "psnr" else ""))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("W2S test fields 065–080: one value per field and channel")
    fig.tight_layout()
    p = os.path.join(out, "boxplots.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    files.append(p)

    ours = next((r for r in ("gen+ens", "gan+ens", "gen", "gan") if r in panel), None)
    cols = [r for r in ("lq", "rl", "bm3d", ours, "hq") if r and r in panel]
    if panel_field is not None and len(cols) >= 3:
        ch, y0, x0, size = 1, 128, 128, 256
        hq = normalize_percentile(panel["hq"][ch])
        titles = {
            "lq": "LQ (wide-field frame)",
            "rl": "Richardson–Lucy",
            "bm3d": "BM3D",
            "hq": "HQ (mean of 400)",
            ours: LABELS.get(ours, ours),
        }
        fig, axes = plt.subplots(
            2, len(cols), figsize=(3.2 * len(cols), 6.6), gridspec_kw={"height_ratios": [3, 1.4]}
        )
        row_y = size // 2
        prof_ax = plt.subplot2grid((2, len(cols)), (1, 0), colspan=len(cols), fig=fig)
        for a in axes[1]:
            a.remove()
        for k, r in enumerate(cols):
            img = hq if r == "hq" else normalize_minmse(panel[r][ch], hq)
            crop = img[y0 : y0 + size, x0 : x0 + size]
            axes[0, k].imshow(crop, cmap="magma", vmin=0, vmax=1)
            axes[0, k].axhline(row_y, color="c", lw=0.6)
            axes[0, k].set_title(titles[r], fontsize=9)
            axes[0, k].axis("off")
            prof_ax.plot(crop[row_y], label=titles[r], lw=1.2 if r in ("hq", ours) else 0.8)
        prof_ax.set_xlabel("pixel along the cyan line")
        prof_ax.set_ylabel("intensity (fitted to HQ)")
        prof_ax.legend(fontsize=7, ncol=len(cols))
        fig.suptitle(f"W2S field {panel_field:03d}, channel {ch}, crop {size}²")
        fig.tight_layout()
        p = os.path.join(out, "panel.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        files.append(p)
    return files


# ---------------------------------------------------------------------------- main
def run_row(row, fn, ctx, test, test_fields, rows_dir, panel_dir, info) -> None:
    """Run one method, score it on the test fields and write ``rows/<name>.json``."""
    t = time.perf_counter()
    print(f"[{row}] running …", flush=True)
    try:
        r = fn(ctx)
    except Exception as e:  # noqa: BLE001 - one failing method must not end the benchmark
        print(f"[{row}] FAILED after {time.perf_counter() - t:.0f} s: {e!r}", flush=True)
        with open(os.path.join(rows_dir, f"{row}.failed.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"{e!r}\n")
        return
    for name, preds in r["preds"].items():
        scores = score_all(preds, test[1], test_fields)
        np.save(os.path.join(panel_dir, f"{name}.npy"), np.asarray(preds[0], np.float32))
        rec = {
            "row": name,
            "scores": scores,
            "meta": r["meta"],
            "note": note_for(name, r["meta"]),
            "info": info,
            "wall_s": time.perf_counter() - t,
        }
        with open(os.path.join(rows_dir, f"{name}.json"), "w", encoding="utf-8") as fh:
            json.dump(rec, fh, indent=1, default=float)
        md = medians(scores)
        print(
            f"[{name}] median PSNR {md['psnr']:.2f} dB, SSIM {md['ssim']:.3f}, "
            f"NRMSE {md['nrmse']:.4f} — {rec['note']} ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="W2S quality benchmark (issue 8)")
    ap.add_argument("--data", default=os.path.normpath(DATA))
    ap.add_argument("--rows", default=",".join(ALL_ROWS), help=f"subset of {ALL_ROWS}")
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget per row")
    ap.add_argument(
        "--precision-minutes",
        type=float,
        default=None,
        help="budget of the float32-vs-mixed rows (default: --minutes)",
    )
    ap.add_argument("--fields", default="65-80", help="test fields")
    ap.add_argument("--val-fields", default="61-64")
    ap.add_argument("--train-fields", default="1-60")
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="config override for our rows, e.g. --set base_filters=16",
    )
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "quality")
    )
    ap.add_argument("--reuse", action="store_true", help="keep row files already in OUT")
    ap.add_argument("--report-only", action="store_true", help="tables and figures only")
    ap.add_argument("--docs", action="store_true", help="copy the PNGs to docs/img/")
    a = ap.parse_args(argv)

    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ALL_ROWS]
    if bad:
        ap.error(f"unknown row(s) {bad}; choose from {ALL_ROWS}")
    overrides = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        overrides[k] = json.loads(v)
    test_fields = parse_fields(a.fields)
    val_fields = parse_fields(a.val_fields)
    train_fields = parse_fields(a.train_fields)
    if set(test_fields) & (set(val_fields) | set(train_fields)) or set(val_fields) & set(
        train_fields
    ):
        ap.error("train, validation and test fields must not overlap")
    rows_dir = os.path.join(a.out, "rows")
    panel_dir = os.path.join(a.out, "panel")
    os.makedirs(rows_dir, exist_ok=True)
    os.makedirs(panel_dir, exist_ok=True)
    info = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m bench.quality", *(argv if argv is not None else sys.argv[1:])]
        ),
        "fields": a.fields,
        "val_fields": a.val_fields,
        "train_fields": a.train_fields,
        "minutes": a.minutes,
        "preset": a.preset,
        "overrides": overrides,
    }
    print(json.dumps(info), flush=True)
    panel_field = test_fields[0]

    if not a.report_only:
        import models.model  # noqa: F401  (import the science core once, up front)
        import models.training  # noqa: F401

        test = load(a.data, test_fields)
        pmin = a.minutes if a.precision_minutes is None else a.precision_minutes
        ctx = {
            "test": test,
            "val": load(a.data, val_fields),
            "minutes": a.minutes,
            "precision_minutes": pmin,
            "out": a.out,
            "preset": a.preset,
            "overrides": overrides,
            "train_fields": train_fields,
        }
        np.save(os.path.join(panel_dir, "lq.npy"), test[0][0])
        np.save(os.path.join(panel_dir, "hq.npy"), test[1][0])
        for row in rows:
            if a.reuse and os.path.exists(os.path.join(rows_dir, f"{row}.json")):
                print(f"[{row}] kept from an earlier run", flush=True)
                continue
            if row in ("care", "gen", "gan", "precision") and "train" not in ctx:
                ctx["train"] = load(a.data, train_fields)
            if row == "precision":
                for sub in ("gen-f32", "gen-mixed"):
                    if sub == "gen-mixed" and pmin == a.minutes and "gen" in rows:
                        continue  # the gen row is the mixed run at this budget
                    run_row(
                        sub,
                        lambda c, sub=sub: run_ours(c, sub),
                        ctx,
                        test,
                        test_fields,
                        rows_dir,
                        panel_dir,
                        info,
                    )
                continue
            fn = {
                "identity": run_identity,
                "gaussian": run_gaussian,
                "rl": run_rl,
                "bm3d": run_bm3d,
                "care": run_care,
            }.get(row, lambda c, row=row: run_ours(c, row))
            run_row(row, fn, ctx, test, test_fields, rows_dir, panel_dir, info)

    results = {}
    for fn in sorted(os.listdir(rows_dir)):
        if fn.endswith(".json"):
            with open(os.path.join(rows_dir, fn), encoding="utf-8") as fh:
                rec = json.load(fh)
            results[rec["row"]] = rec
    if not results:
        print("no results")
        return 1
    table = write_tables(a.out, results, info)
    print()
    print(table)
    panel = {}
    for fn in os.listdir(panel_dir):
        if fn.endswith(".npy"):
            panel[fn[:-4]] = np.load(os.path.join(panel_dir, fn))
    files = plot(a.out, results, panel, panel_field if "hq" in panel else None)
    if a.docs:
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img")
        os.makedirs(docs, exist_ok=True)
        for f in files:
            shutil.copy(f, os.path.join(docs, f"quality_{os.path.basename(f)}"))
    print("wrote", ", ".join([os.path.join(a.out, "per_field.csv"), *files]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
