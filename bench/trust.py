"""Trust checks on the real W2S pairs (issue "Trust every enhanced pixel", items 2 and 3).

Everything here is numpy / scipy; nothing trains. Splits as elsewhere: fields 001–060 train
(the blur fit and the OOD reference), 061–064 validation (every threshold), 065–080 test
(only measured).

1. **Blur** — :func:`models.consistency.fit_blur` on the training pairs: the pairing's effective
   PSF (Gaussian FWHM per channel, px and µm at the data README's 0.1 µm estimate).
2. **Consistency thresholds** — on the validation fields, the HQ (a perfect enhancement's
   stand-in) and deliberately inconsistent outputs made from it: shifted by 1/2/4 px, channels
   rotated, six invented blobs, an 80 × 80 region deleted, and a Gaussian-smoothed HQ (less
   resolved but not contradicting its input). The table shows each check statistic's worst
   HQ value next to the corrupted outputs' best, and whether the flag fires.
3. **Consistency of methods** on the test fields — the HQ, Gaussian smoothing (σ 2.5, chosen on
   the validation fields in ``bench.quality``), Richardson–Lucy (10 iterations, Born–Wolf NA
   1.49) and BM3D as ``bench.quality`` runs it (σ_psd 3 × estimate_sigma, chosen there on the
   validation fields; skipped without the ``bench`` extra's ``bm3d``): median RSP,
   noise-corrected RSP, RSE, and how many fields are flagged.
4. **OOD** — :class:`models.ood.OodReference` fitted on the training LQs, threshold chosen on
   the validation LQs; rank AUROC of the test LQs against inputs not from this microscope:
   simulator fields (other NA / pixel size / photon budget; raw 16-bit and stretched to 8 bit
   as W2S was), wrong channel orders of the test LQs, blank and saturated images, and the W2S
   HQs used as input.
5. **Uncertainty** (item 1) — a real ``cpu-small`` generator (trained ``--minutes`` on the
   training fields, or loaded from ``--generator``); candidate uncertainty maps of
   :mod:`models.uncertainty` calibrated on the validation fields, scored on the test fields in
   the protocol's units (ground truth normalised 0.1 / 99.9, the point fitted to it by least
   squares): coverage of the nominal 90 % interval, median over fields of the Spearman
   correlation between half-width and |error| over 16 × 16 blocks, and the enhancement time
   with the map over the time without it.
6. **Cost** — enhancement with every trust map as the worker makes it
   (:func:`models.trust.check_output`: consistency + OOD + the calibrated uncertainty) against
   plain enhancement, in turns on the same test fields (the generator of section 5; its weights
   do not change the cost), and ``trust_maps.png``: one test field's error | uncertainty |
   consistency maps.

Outputs under ``bench/out/trust/``: ``results.json``, ``consistency_field.png`` (LQ | HQ |
error map of the HQ | error map of an output with invented structure) and ``trust_maps.png``.

    PAIRSCOPE_TEST_DATA=../shared/data .venv/bin/python -m bench.trust
    PAIRSCOPE_TEST_DATA=../shared/data .venv/bin/python -m bench.trust --sections uncertainty \
        --minutes 8
    PAIRSCOPE_TEST_DATA=../shared/data .venv/bin/python -m bench.trust --sections cost \
        --minutes 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections.abc import Callable

import numpy as np

from models.baselines import Optics, gaussian_smooth, richardson_lucy
from models.consistency import Blur, consistency, fit_blur
from models.ood import OodReference, auroc
from models.synthetic import make_pair

#: ``$PAIRSCOPE_TEST_DATA/w2s-widefield-denoise`` (worktrees), else ``../shared/data/…`` of the
#: checkout (as ``bench.quality``); ``--data`` overrides both.
DATA = os.path.join(
    os.environ.get("PAIRSCOPE_TEST_DATA")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"),
    "w2s-widefield-denoise",
)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "trust")
PIXEL_UM = 0.1  # the data README's estimate
W2S_OPTICS = Optics(
    na=1.49, immersion_index=1.515, pixel_size_um=PIXEL_UM, wavelengths_nm=(461.0, 520.0, 600.0)
)
GAUSS_SIGMA = 2.5  # chosen on the validation fields by bench.quality
#: BM3D's σ_psd = 3 × estimate_sigma, chosen on the validation fields by bench.quality
BM3D_SIGMA_FACTOR = 3.0
TRAIN, VAL, TEST = range(1, 61), range(61, 65), range(65, 81)
#: Simulated microscopes that are not W2S's (make_pair keywords, the pixel size passed along).
SIM_OPTICS = {
    "sim NA 1.3 (default)": {},
    "sim NA 0.8": {"wf_na": 0.8},
    "sim 0.2 µm pixels": {"pixel_size_um": 0.2},
    "sim 1000 photons, low haze": {"wf_photons": 1000.0, "haze": 0.3},
}


def load(data: str, fields: range) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import tifffile

    lq = [
        np.asarray(tifffile.imread(os.path.join(data, "lq", f"field_{i:03d}.tif"))) for i in fields
    ]
    hq = [
        np.asarray(tifffile.imread(os.path.join(data, "hq", f"field_{i:03d}.tif"))) for i in fields
    ]
    return lq, hq


def stretch_uint8(img: np.ndarray) -> np.ndarray:
    """Per channel, min–max to 0–255 uint8 (how the W2S 8-bit release was made)."""
    x = img.astype(np.float64)
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    return np.rint((x - lo) / np.maximum(hi - lo, 1e-12) * 255).astype(np.uint8)


# ---------------------------------------------------------------- corrupted "enhancements"
def invent(hq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Six Gaussian blobs (σ 3 px, half the channel's 99th percentile) added to every channel."""
    out = hq.astype(np.float64)
    yy, xx = np.mgrid[0 : out.shape[1], 0 : out.shape[2]]
    add = np.zeros(out.shape[1:])
    for _ in range(6):
        y, x = rng.integers(50, min(out.shape[1:]) - 50, 2)
        add += np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 3.0**2))
    return out + add[None] * 0.5 * np.percentile(out, 99, axis=(1, 2))[:, None, None]


def remove(hq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 80 × 80 region per channel replaced by the channel's median (a deleted structure)."""
    out = hq.astype(np.float64)
    for c in range(out.shape[0]):
        y, x = rng.integers(50, min(out.shape[1:]) - 130, 2)
        out[c, y : y + 80, x : x + 80] = np.median(out[c])
    return out


def corruptions(hq: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "HQ (perfect)": hq,
        "HQ smoothed σ 2.5": gaussian_smooth(hq, 2.5),
        "shifted 1 px": np.roll(hq, 1, axis=2),
        "shifted 2 px": np.roll(hq, 2, axis=2),
        "shifted 4 px": np.roll(hq, 4, axis=2),
        "channels rotated": hq[[1, 2, 0]],
        "invented blobs": invent(hq, rng),
        "region deleted": remove(hq, rng),
    }


# -------------------------------------------------------------------------------- sections
def section_blur(train: tuple[list, list]) -> Blur:
    t = time.perf_counter()
    blur = fit_blur(train[1], train[0], pixel_size_um=PIXEL_UM)
    print(f"\n## Blur fitted on training fields 001–060 ({time.perf_counter() - t:.1f} s)\n")
    print("| channel | σ px | FWHM px | FWHM µm | unexplained LQ power |")
    print("|---|---|---|---|---|")
    for c in range(blur.channels):
        print(
            f"| {c} | {blur.sigma_px[c]:.3f} | {blur.fwhm_px[c]:.3f} | "
            f"{blur.fwhm_um[c]:.4f} | {blur.fit_residual[c]:.3f} |"
        )  # type: ignore[index]
    return blur


def section_thresholds(val: tuple[list, list], blur: Blur) -> dict:
    rng = np.random.default_rng(0)
    rows: dict[str, list] = {}
    for lq, hq in zip(*val, strict=True):
        for name, out in corruptions(hq, rng).items():
            rows.setdefault(name, []).append(consistency(out, lq, blur))
    print("\n## Consistency thresholds on validation fields 061–064\n")
    print(
        "| output | flagged fields | largest region px (min–max over channels·fields) | "
        "inconsistent fraction % (min–max) | RSP median | noise-corrected RSP median |"
    )
    print("|---|---|---|---|---|---|")
    table = {}
    for name, reps in rows.items():
        regs = [c.largest_region_px for r in reps for c in r.channels]
        fracs = [100 * c.inconsistent_fraction for r in reps for c in r.channels]
        # a corrupted output is caught when any channel's statistic fires: its best case is
        # the per-field max over channels, minimised over fields
        reg_caught = min(max(c.largest_region_px for c in r.channels) for r in reps)
        rsp = float(np.median([c.rsp for r in reps for c in r.channels]))
        rspc = float(np.median([c.rsp_corrected for r in reps for c in r.channels]))
        n_flag = sum(r.flag for r in reps)
        table[name] = {
            "flagged": n_flag,
            "fields": len(reps),
            "region_min": min(regs),
            "region_max": max(regs),
            "region_caught_min": reg_caught,
            "fraction_min_pct": min(fracs),
            "fraction_max_pct": max(fracs),
            "rsp_median": rsp,
            "rsp_corrected_median": rspc,
        }
        print(
            f"| {name} | {n_flag}/{len(reps)} | {min(regs)}–{max(regs)} | "
            f"{min(fracs):.3f}–{max(fracs):.3f} | {rsp:.3f} | {rspc:.3f} |"
        )
    thr = rows["HQ (perfect)"][0].thresholds
    print(f"\nthresholds: {thr}")
    return {"table": table, "thresholds": thr}


def _bm3d_outputs(lqs: list[np.ndarray]) -> list[np.ndarray] | None:
    """BM3D as ``bench.quality`` runs it (its σ factor, chosen there on the validation fields);
    ``None`` without the ``bm3d`` package (the ``bench`` extra)."""
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return None
    from bench.quality import bm3d_denoise

    return [bm3d_denoise(lq, BM3D_SIGMA_FACTOR) for lq in lqs]


def section_methods(test: tuple[list, list], blur: Blur) -> dict:
    lqs, hqs = test
    methods: dict[str, list[np.ndarray] | None] = {
        "HQ": [h.astype(np.float64) for h in hqs],
        "Gaussian σ 2.5": [gaussian_smooth(x.astype(np.float32), GAUSS_SIGMA) for x in lqs],
        "Richardson–Lucy (10 it.)": [richardson_lucy(x, W2S_OPTICS, iterations=10) for x in lqs],
        "BM3D": _bm3d_outputs(lqs),
    }
    print("\n## Consistency with the LQ on test fields 065–080 (medians over 48 field·channels)\n")
    print("| output | RSP | noise-corrected RSP | RSE | flagged fields |")
    print("|---|---|---|---|---|")
    table = {}
    for name, outs in methods.items():
        if outs is None:
            print(f"| {name} | – | – | – | skipped: `bm3d` not importable |")
            table[name] = None
            continue
        reps = [consistency(o, lq, blur) for o, lq in zip(outs, lqs, strict=True)]
        chans = [c for r in reps for c in r.channels]
        row = {
            "rsp": float(np.median([c.rsp for c in chans])),
            "rsp_corrected": float(np.median([c.rsp_corrected for c in chans])),
            "rse": float(np.median([c.rse for c in chans])),
            "flagged": sum(r.flag for r in reps),
            "fields": len(reps),
        }
        table[name] = row
        print(
            f"| {name} | {row['rsp']:.3f} | {row['rsp_corrected']:.3f} | {row['rse']:.4f} | "
            f"{row['flagged']}/{row['fields']} |"
        )
    return table


def ood_shifted(test: tuple[list, list]) -> dict[str, list[tuple[np.ndarray, float]]]:
    """Inputs not from the W2S microscope, by kind: ``(image, pixel size given)`` pairs."""
    lqs, hqs = test
    kinds: dict[str, list[tuple[np.ndarray, float]]] = {}
    for name, kw in SIM_OPTICS.items():
        px = kw.get("pixel_size_um", 0.1)
        raw = [make_pair((256, 256), seed=100 + s, **kw)[0] for s in range(4)]
        kinds[f"{name}, 16 bit"] = [(r, px) for r in raw]
        kinds[f"{name}, stretched to 8 bit"] = [(stretch_uint8(r), px) for r in raw]
    perms = [p for p in itertools.permutations(range(3)) if p != (0, 1, 2)]
    kinds["wrong channel order"] = [(lq[list(p)], PIXEL_UM) for lq in lqs for p in perms]
    shape = lqs[0].shape
    rng = np.random.default_rng(1)
    kinds["blank"] = [
        (np.zeros(shape, np.uint8), PIXEL_UM),
        (np.full(shape, 128, np.uint8), PIXEL_UM),
    ] + [(rng.poisson(3.0, shape).astype(np.uint8), PIXEL_UM) for _ in range(4)]
    kinds["saturated (LQ × 4, clipped)"] = [
        (np.clip(lq.astype(np.int32) * 4, 0, 255).astype(np.uint8), PIXEL_UM) for lq in lqs
    ]
    kinds["W2S HQ as input"] = [(hq, PIXEL_UM) for hq in hqs]
    kinds["W2S LQ at a wrong pixel size (0.065 µm)"] = [(lq, 0.065) for lq in lqs]
    return kinds


def section_ood(train: tuple[list, list], val: tuple[list, list], test: tuple[list, list]) -> dict:
    t = time.perf_counter()
    ref = OodReference.fit(train[0], PIXEL_UM).with_threshold(val[0])
    fit_s = time.perf_counter() - t
    ind = [ref.score(lq, PIXEL_UM).score for lq in test[0]]
    print(
        f"\n## OOD score (reference: 60 training LQs, {fit_s:.1f} s; "
        f"{len(ref.to_json())} bytes of JSON)\n"
    )
    print(
        f"threshold {ref.threshold:.2f} = {ref.threshold_note}; in-distribution test fields "
        f"065–080: scores {min(ind):.2f}–{max(ind):.2f}, warned "
        f"{sum(s > ref.threshold for s in ind)}/{len(ind)}\n"
    )  # type: ignore[operator]
    print("| shifted inputs | n | AUROC vs test LQs | warned | median score | top group |")
    print("|---|---|---|---|---|---|")
    table, pooled = {}, []
    for kind, items in ood_shifted(test).items():
        res = [ref.score(img, px) for img, px in items]
        sc = [r.score for r in res]
        pooled += sc
        top = max(res[0].groups, key=res[0].groups.get) if res[0].groups else "channels"
        a = auroc(ind, sc)
        n_warn = sum(r.warn for r in res)
        table[kind] = {
            "n": len(sc),
            "auroc": a,
            "warned": n_warn,
            "median_score": float(np.median(sc)),
            "top_group": top,
        }
        print(
            f"| {kind} | {len(sc)} | {a:.3f} | {n_warn}/{len(sc)} | {np.median(sc):.1f} | {top} |"
        )
    overall = auroc(ind, pooled)
    print(
        f"| **all shifted inputs** | {len(pooled)} | **{overall:.3f}** | "
        f"{sum(s > ref.threshold for s in pooled)}/{len(pooled)} | "  # type: ignore[operator]
        f"{np.median(pooled):.1f} | |"
    )
    return {
        "threshold": ref.threshold,
        "threshold_note": ref.threshold_note,
        "in_distribution_scores": ind,
        "kinds": table,
        "auroc_overall": overall,
        "reference": ref.to_dict(),
    }


def figure(
    test: tuple[list, list], blur: Blur, path: str, field: int = 0, channel: int = 1
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lq, hq = test[0][field], test[1][field]
    ok = consistency(hq, lq, blur)
    bad_img = invent(hq, np.random.default_rng(3))
    bad = consistency(bad_img, lq, blur)
    vmax = float(np.percentile(bad.error_map[channel], 99.9))
    panels = [
        (lq[channel], "LQ (one wide-field frame)", "gray", None),
        (hq[channel], "HQ (mean of 400)", "gray", None),
        (
            ok.error_map[channel],
            f"error map, HQ: RSP {ok.rsp[channel]:.3f}, {'flagged' if ok.flag else 'consistent'}",
            "magma",
            vmax,
        ),
        (
            bad.error_map[channel],
            f"error map, invented blobs: {'flagged' if bad.flag else 'consistent'}",
            "magma",
            vmax,
        ),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    for ax, (img, title, cmap, vm) in zip(axes, panels, strict=True):
        im = ax.imshow(img, cmap=cmap, vmin=0 if vm else None, vmax=vm)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        if vm:
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(
        f"W2S test field {TEST[field]:03d}, channel {channel}: the output blurred "
        f"with the fitted PSF vs its own input (smoothed |residual|, LQ units)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: Candidate uncertainty maps: (members predicted, features of the scale model; None: the
#: raw ensemble spread as a Gaussian σ, uncalibrated).
UNCERTAINTY_CANDIDATES = {
    "ensemble spread (8), uncalibrated ±1.645 σ": (8, None),
    "ensemble spread (2), conformal": (2, ["spread"]),
    "ensemble spread (8), conformal": (8, ["spread"]),
    "local features (1), conformal": (1, ["level", "input_residual", "gradient"]),
    "local features + spread (2), conformal": (2, None),
    "local features + spread (8), conformal": (8, None),
}
COVERAGE = 0.9
TIMED_FIELDS = 8
SECTIONS = ("blur", "thresholds", "methods", "ood", "uncertainty", "cost")
COST_FIELDS = 16  # test fields timed by the cost section (all of them: a stable median)
COST_REFERENCE_FIELDS = 8  # training fields the cost section's trust reference is fitted on
MAX_COST = 1.5


def _generator(path: str, minutes: float, train: tuple[list, list], val: tuple[list, list]):
    from models import Config, EnhancementModel

    if os.path.exists(path):
        print(f"\n(generator loaded from {path})")
        return EnhancementModel.load(path)
    model = EnhancementModel(Config.preset("cpu-small"), name="trust-uncertainty")
    t = time.perf_counter()
    res = model.train(
        train[0],
        train[1],
        [f"{i:03d}" for i in TRAIN],
        val_lq=val[0],
        val_hq=val[1],
        minutes=minutes,
        seed=0,
    )
    print(
        f"\n(cpu-small trained {time.perf_counter() - t:.0f} s, {res.steps} steps, best val "
        f"PSNR {res.best_val_psnr:.2f} dB; saved to {path})"
    )
    model.save(path)
    return model


def _uncalibrated_spread(members: list[np.ndarray], lq: np.ndarray):
    from models.uncertainty import UncertaintyResult, plane_features

    planes = [m.reshape(-1, *m.shape[-2:]) for m in members]
    half, ranges = [], []
    for i, x in enumerate(lq.reshape(-1, *lq.shape[-2:])):
        feats, _, rng = plane_features(planes[0][i], x, [p[i] for p in planes])
        half.append(1.645 * feats["spread"] * rng)
        ranges.append(rng)
    return UncertaintyResult(
        members[0], np.stack(half).reshape(members[0].shape), COVERAGE, np.asarray(ranges)
    )


def section_uncertainty(
    train: tuple[list, list],
    val: tuple[list, list],
    test: tuple[list, list],
    minutes: float,
    generator: str,
) -> dict:
    from models.metrics import score_image
    from models.uncertainty import (
        Calibration,
        evaluate,
        fit_calibration,
        model_members,
        uncertainty,
    )

    model = _generator(generator, minutes, train, val)
    eight = model_members(model, 8)
    cache: dict[int, list[np.ndarray]] = {}
    for lq in val[0] + test[0]:
        cache[id(lq)] = eight(lq)
    for lq in test[0]:  # today's output is the first member, unchanged
        assert np.array_equal(cache[id(lq)][0], model.predict(lq))
    psnr = float(
        np.median(
            [
                c["psnr"]
                for lq, hq in zip(*test, strict=True)
                for c in score_image(cache[id(lq)][0], hq)["per_channel"]
            ]
        )
    )

    print(
        f"\n## Uncertainty maps: calibrated on validation fields 061–064, scored on test fields "
        f"065–080 (nominal {COVERAGE:.0%}; units: the protocol's — GT normalised 0.1/99.9, the "
        f"point fitted to it by least squares)\n"
    )
    print(f"point prediction: the plain prediction, unchanged (median PSNR {psnr:.2f} dB)\n")
    print(
        "| map | members | coverage % (test, pooled) | per-field coverage % (min–max) | "
        "Spearman, median over fields | (min–max) | median half-width (of range) |"
    )
    print("|---|---|---|---|---|---|---|")
    table = {}
    for name, (n, feats) in UNCERTAINTY_CANDIDATES.items():

        def members(img, n=n):
            return cache[id(img)][:n]

        cal = None
        if feats is not None or "uncalibrated" not in name:
            cal = fit_calibration(members, val[0], val[1], COVERAGE, features=feats)
        evs, inside, total, halfs = [], 0.0, 0, []
        for lq, hq in zip(*test, strict=True):
            res = uncertainty(members, lq, cal) if cal else _uncalibrated_spread(members(lq), lq)
            ev = evaluate(res, hq)
            evs.append(ev)
            inside += ev["coverage"] * hq.size
            total += hq.size
            halfs.append(res.summary()["median_relative_half_width"])
        cov = [e["coverage"] for e in evs]
        rho = [e["spearman"] for e in evs]
        row = {
            "members": n,
            "features": feats,
            "coverage": inside / total,
            "coverage_min": min(cov),
            "coverage_max": max(cov),
            "spearman_median": float(np.median(rho)),
            "spearman_min": min(rho),
            "spearman_max": max(rho),
            "median_relative_half_width": float(np.median(halfs)),
            "calibration": cal.to_dict() if cal else None,
        }
        table[name] = row
        print(
            f"| {name} | {n} | {100 * row['coverage']:.1f} | {100 * min(cov):.1f}–"
            f"{100 * max(cov):.1f} | {row['spearman_median']:.3f} | {min(rho):.3f}–"
            f"{max(rho):.3f} | {row['median_relative_half_width']:.4f} |"
        )

    # the cost: enhancement with the map against without it, on the same fields. The
    # variants take turns on each field (the machine is shared: load drifts), and each
    # variant's median over the fields is compared.
    runs: dict[int | str, Callable[[np.ndarray], object]] = {"plain": model.predict}
    for n in sorted({n for n, _ in UNCERTAINTY_CANDIDATES.values()}):
        key = next(
            k
            for k, (m, f) in UNCERTAINTY_CANDIDATES.items()
            if m == n and f != ["spread"] and "uncalibrated" not in k
        )
        cal = Calibration.from_dict(table[key]["calibration"])
        runs[n] = lambda lq, fn=model_members(model, n), cal=cal: uncertainty(fn, lq, cal)
    sample = test[0][:TIMED_FIELDS]
    model_members(model, 2)(sample[0])  # warm the graphs (both orientations)
    times: dict[int | str, list[float]] = {k: [] for k in runs}
    for lq in sample:
        for k, fn in runs.items():
            t = time.perf_counter()
            fn(lq)
            times[k].append(time.perf_counter() - t)
    plain = float(np.median(times.pop("plain")))
    timing = {n: float(np.median(v)) for n, v in times.items()}
    print(
        f"\ncost (median of {len(sample)} test fields, 512² × 3; load average "
        f"{os.getloadavg()[0]:.1f}): plain enhancement {plain:.3f} s"
        + "".join(
            f"; with the map from {n} member(s) {s:.3f} s (×{s / plain:.2f})"
            for n, s in timing.items()
        )
    )
    for row in table.values():
        row["cost_ratio"] = timing[row["members"]] / plain
    ok = {
        k: r
        for k, r in table.items()
        if r["calibration"]
        and 0.85 <= r["coverage"] <= 0.95
        and r["spearman_median"] >= 0.5
        and r["cost_ratio"] <= MAX_COST
    }
    chosen = max(ok, key=lambda k: ok[k]["spearman_median"]) if ok else None
    print(
        f"\nmeeting every target (coverage 85–95 %, Spearman ≥ 0.5, cost ≤ ×{MAX_COST}): "
        f"{', '.join(ok) or 'none'}; chosen: {chosen}"
    )
    return {
        "point_psnr_median": psnr,
        "plain_s": plain,
        "with_map_s": timing,
        "candidates": table,
        "chosen": chosen,
        "load_average": os.getloadavg(),
    }


def section_cost(
    train: tuple[list, list],
    val: tuple[list, list],
    test: tuple[list, list],
    minutes: float,
    generator: str,
    figure_path: str,
) -> dict:
    """Enhancement with every trust map, as the worker makes it (``models.trust.check_output``:
    consistency + OOD + calibrated uncertainty) against plain enhancement, on the same test
    fields in turns; and the figure of one field's error | uncertainty | consistency maps.

    The generator only needs to be a ``cpu-small`` one for the timing (the weights do not
    change the cost); it is trained ``minutes`` (or loaded) so that the figure means something.
    """
    from models.trust import METADATA_KEY, UNCERTAINTY_KEY, check_output, fit_trust_reference
    from models.uncertainty_evaluation import calibrate

    model = _generator(generator, minutes, train, val)
    k = COST_REFERENCE_FIELDS
    reference = fit_trust_reference(train[0][:k], train[1][:k], val[0], PIXEL_UM)
    calibration = calibrate(model, val[0], val[1], [], [])
    model.metadata[METADATA_KEY] = reference.to_dict()
    model.metadata[UNCERTAINTY_KEY] = calibration.to_dict()

    def plain(lq: np.ndarray) -> object:
        return model.predict(lq, "CYX")

    def with_trust(lq: np.ndarray) -> object:
        out = model.predict(lq, "CYX")
        return out, check_output(model, lq, out, "CYX", PIXEL_UM)

    sample = test[0][:COST_FIELDS]
    with_trust(sample[0])  # warm the graph and the caches
    times: dict[str, list[float]] = {"plain": [], "with trust": []}
    # CPU seconds of the process (all its threads) too: on a shared, overloaded machine the
    # wall time of single-threaded numpy suffers more than that of TensorFlow's thread pool
    cpu: dict[str, list[float]] = {"plain": [], "with trust": []}
    for lq in sample:  # turns on each field: the shared machine's load drifts
        for name, fn in (("plain", plain), ("with trust", with_trust)):
            t, c = time.perf_counter(), time.process_time()
            fn(lq)
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    plain_s = float(np.median(times["plain"]))
    trust_s = float(np.median(times["with trust"]))
    plain_cpu, trust_cpu = (float(np.median(cpu[k])) for k in ("plain", "with trust"))
    load = os.getloadavg()
    ratio = trust_s / plain_s
    print(
        f"\n## Cost of the trust maps (median of {len(sample)} test fields, 512² × 3, load "
        f"average {load[0]:.2f})\n\nplain enhancement {plain_s:.3f} s; with consistency + OOD "
        f"+ uncertainty maps {trust_s:.3f} s: ×{ratio:.2f} (target ≤ ×{MAX_COST}: "
        f"{'met' if ratio <= MAX_COST else 'NOT met'}); CPU seconds {plain_cpu:.3f} / "
        f"{trust_cpu:.3f}: ×{trust_cpu / plain_cpu:.2f}"
    )
    field = 0
    lq, hq = test[0][field], test[1][field]
    out, assessment = with_trust(lq)
    trust_maps_figure(out, hq, assessment, TEST[field], figure_path)
    return {
        "plain_s": plain_s,
        "with_trust_s": trust_s,
        "ratio": ratio,
        "fields": len(sample),
        "times": times,
        "cpu_times": cpu,
        "cpu_ratio": trust_cpu / plain_cpu,
        "load_average": load,
        "calibration_coverage_validation": calibration.validation_coverage,
    }


def trust_maps_figure(
    output: np.ndarray, hq: np.ndarray, assessment, field: int, path: str, channel: int = 1
) -> None:
    """error (|output − HQ|, protocol units) | uncertainty half-width | consistency error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.uncertainty import plane_errors

    names = assessment.map_names
    n_ch = len(names) // 3
    error = np.abs(plane_errors(output[channel].astype(np.float32), hq[channel]))
    half = assessment.maps[0, 2 * n_ch + channel]
    rng = float(np.percentile(output[channel], 99.9) - np.percentile(output[channel], 0.1))
    half_u = half / max(rng, 1e-12)  # the half-width in the same units as the error
    cons = assessment.maps[0, channel]
    vmax = float(np.nanpercentile(np.concatenate([error.ravel(), half_u.ravel()]), 99.5))
    panels = [
        (error, "|output − HQ| (GT normalised 0.1/99.9)", vmax),
        (half_u, "90 % interval half-width (same units)", vmax),
        (cons, "consistency error (input's dynamic range)", float(np.percentile(cons, 99.9))),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax, (img, title, vm) in zip(axes, panels, strict=True):
        im = ax.imshow(img, cmap="magma", vmin=0, vmax=max(vm, 1e-6))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(
        f"W2S test field {field:03d}, channel {channel}: error | uncertainty | consistency"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    from PIL import Image

    with Image.open(path) as img:  # a 256-colour palette: small enough for docs/img
        small = img.convert("RGB").quantize(256)
    small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", default=OUT)
    ap.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    ap.add_argument("--minutes", type=float, default=8.0, help="generator training budget")
    ap.add_argument(
        "--generator",
        default=None,
        help="model directory: loaded if present, else trained "
        "and saved there (default OUT/generator)",
    )
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if unknown := sorted(set(sections) - set(SECTIONS)):
        ap.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    train, val, test = (load(args.data, f) for f in (TRAIN, VAL, TEST))
    results: dict = {}
    if {"blur", "thresholds", "methods"} & set(sections):
        blur = section_blur(train)
        results["blur"] = blur.to_dict()
        if "thresholds" in sections:
            results["thresholds"] = section_thresholds(val, blur)
        if "methods" in sections:
            results["methods"] = section_methods(test, blur)
            figure(test, blur, os.path.join(args.out, "consistency_field.png"))
    if "ood" in sections:
        results["ood"] = section_ood(train, val, test)
    if "uncertainty" in sections:
        gen = args.generator or os.path.join(args.out, "generator")
        results["uncertainty"] = section_uncertainty(train, val, test, args.minutes, gen)
    if "cost" in sections:
        gen = args.generator or os.path.join(args.out, "generator")
        fig = os.path.join(args.out, "trust_maps.png")
        results["cost"] = section_cost(train, val, test, args.minutes, gen, fig)
    path = os.path.join(args.out, "results.json")
    if os.path.exists(path):  # a run of some sections keeps the others' last results
        with open(path) as fh:
            results = {**json.load(fh), **results}
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1, default=float)
    print(f"\nwrote {args.out}/results.json ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
