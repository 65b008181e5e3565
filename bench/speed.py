"""Speed benchmark of the science core (issue 8, "Speed benchmark").

Measures, in one run and for each precision (``float32`` and the hardware's mixed policy):

1. the dense-matmul ceiling: a compiled 2048 × 2048 matmul in that precision (GFLOP/s);
2. the bare model: the generator on the image's pixels as non-overlapping tiles, called four ways
   (``keras.Model.predict``, ``Model.__call__`` eagerly, a ``tf.function`` with a dynamic input
   signature, a ``tf.function`` traced per shape) – the fastest is the baseline and the one
   :mod:`models.predict` should use;
3. tiled inference through the public API, ``EnhancementModel.predict`` on a 2048 × 2048 × 3
   image (normalisation, overlapping tiles, blending, de-normalisation): MPix/s, achieved
   GFLOP/s (the network's FLOPs on the image's pixels / wall time) as a fraction of the matmul
   ceiling, and the ratio bare / tiled;
4. the training step: ``Trainer.fit`` (patch sampling, learning-rate schedule, the compiled
   step, loss bookkeeping) against a bare ``@tf.function`` generator + discriminator step on the
   same models and losses with pre-made tensors (ratio bare / ours).

Every ratio compares numbers measured in the same run; each timing is the best of ``--repeats``.

    .venv/bin/python -m bench.speed                 # the full table (a few minutes on 2 cores)
    .venv/bin/python -m bench.speed --quick         # a smoke test (512² image, 1 repeat)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.machine import machine  # noqa: E402


def _best(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_gflops(dtype: str, n: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of a compiled ``n × n`` matmul in ``float32`` or ``bfloat16``."""
    import tensorflow as tf

    tdt = tf.bfloat16 if "bfloat16" in dtype else (tf.float16 if "float16" in dtype else tf.float32)
    a = tf.cast(tf.random.stateless_uniform([n, n], seed=[1, 2]), tdt)
    b = tf.cast(tf.random.stateless_uniform([n, n], seed=[3, 4]), tdt)
    f = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32)))
    inner = 4

    def run():
        for _ in range(inner):
            f(a, b).numpy()

    dt = _best(run, repeats) / inner
    return 2 * n**3 / dt / 1e9


def _tiles(image_hwc: np.ndarray, tile: int) -> list[np.ndarray]:
    h, w, _ = image_hwc.shape
    return [
        image_hwc[None, y : y + tile, x : x + tile]
        for y in range(0, h, tile)
        for x in range(0, w, tile)
    ]


def bench_inference(
    config, policy: str, size: int, repeats: int, bare_tile: int, tile_sizes: list[int]
) -> dict:

    from models import EnhancementModel
    from models.call_paths import CALL_PATHS
    from models.networks import build_generator, conv_flops, receptive_field_margin
    from models.predict import count_tiles

    c = config.with_overrides(precision=policy)
    model = EnhancementModel(c, n_channels=3, name="speed")
    G = model.generator
    flops_px = conv_flops(build_generator(c, 3, "float32", input_hw=(256, 256))) / 256**2
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, size=(3, size, size)).astype(np.uint16)  # a 12-bit camera
    hwc = np.moveaxis(model.normalization(image), 0, -1)
    tiles = _tiles(hwc, bare_tile)
    calls = {name: build(G) for name, build in CALL_PATHS.items()}
    bare = {}
    for name, call in calls.items():
        bare[name] = _best(lambda call=call: [call(t) for t in tiles], repeats)
    best_call = min(bare, key=bare.get)
    pix = size * size
    tiled = {}
    for ts in tile_sizes:
        n = count_tiles((size, size), c.multiple, receptive_field_margin(c), ts)
        t = _best(lambda ts=ts: model.predict(image, tile_size=ts), repeats)
        tiled[ts] = {"s": t, "tiles": n}
    best_ts = min(tiled, key=lambda k: tiled[k]["s"])
    # the ratio: bare (fastest call) and tiled predict (default settings) interleaved
    call = calls[best_call]
    tb, td = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for tile in tiles:
            call(tile)
        tb.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict(image)
        td.append(time.perf_counter() - t)
    t_bare, t_default = min(tb + [bare[best_call]]), min(td)
    return {
        "policy": policy,
        "size": size,
        "flops_per_px": flops_px,
        "bare_tile": bare_tile,
        "bare_s": bare,
        "bare_call": best_call,
        "predict_call": model._ensure_built().call_path,
        "bare_best_s": t_bare,
        "tiled": tiled,
        "best_tile_size": best_ts,
        "default_tile_size": c.tile_size,
        "default_tiles": count_tiles(
            (size, size), c.multiple, receptive_field_margin(c), c.tile_size
        ),
        "default_s": t_default,
        "mpix_s": pix / t_default / 1e6,
        "gflops": flops_px * pix / t_default / 1e9,
        "bare_gflops": flops_px * pix / t_bare / 1e9,
        "ratio_bare": t_bare / t_default,
    }


def bench_training(config, policy: str, steps: int, repeats: int, adversarial: bool) -> dict:
    import tensorflow as tf

    from models import losses as L
    from models.data import PatchSampler
    from models.training import Trainer

    c = config.with_overrides(
        precision=policy, val_every=10**6, checkpoint_every=10**6, minutes=None
    )
    if adversarial and c.adv_weight == 0:
        c = c.with_overrides(adv_weight=1e-3)  # the G + D step of the GAN
    elif not adversarial:
        c = c.with_overrides(adv_weight=0.0)
    rng = np.random.default_rng(0)
    imgs = [rng.random((3, 256, 256)).astype(np.float32) for _ in range(4)]
    sampler = PatchSampler(imgs, imgs, c.patch_size, c.batch_size)
    tr = Trainer(c, 3, policy)
    tr.fit(sampler, steps=2)  # traces the step

    # the bare step: same models, same losses, plain Adam, pre-made tensors
    import keras

    G, D = tr.generator, tr.discriminator
    g_opt = keras.optimizers.Adam(1e-4, global_clipnorm=c.clipnorm)
    g_opt.build(G.trainable_variables)
    d_opt = None
    if D is not None:
        d_opt = keras.optimizers.Adam(1e-4, global_clipnorm=c.clipnorm)
        d_opt.build(D.trainable_variables)
    x, y = (tf.constant(a) for a in sampler.sample(rng))

    @tf.function
    def bare_step(x, y):
        with tf.GradientTape() as gt:
            fake = G(x, training=True)
            if D is not None:
                with tf.GradientTape() as dt:
                    dl = L.discriminator_loss(
                        D(y, training=True), D(tf.stop_gradient(fake), training=True)
                    )
                d_opt.apply(dt.gradient(dl, D.trainable_variables), D.trainable_variables)
                real = tf.stop_gradient(D(y, training=True))
                adv = L.generator_adversarial_loss(real, D(fake, training=True))
            else:
                adv = 0.0
            loss = (
                c.mse_weight * L.mse(y, fake)
                + c.ssim_weight * L.ssim_loss(y, fake)
                + c.l1_weight * L.mae(y, fake)
                + c.adv_weight * adv
            )
        g_opt.apply(gt.gradient(loss, G.trainable_variables), G.trainable_variables)
        return loss

    bare_step(x, y)

    def run_bare():
        for _ in range(steps):
            bare_step(x, y).numpy()

    # interleaved, best of each: the machine may be shared
    ours, bare = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        tr.fit(sampler, steps=steps)
        ours.append((time.perf_counter() - t) / steps)
        t = time.perf_counter()
        run_bare()
        bare.append((time.perf_counter() - t) / steps)
    t_ours, t_bare = min(ours), min(bare)
    px = c.batch_size * c.patch_size**2
    return {
        "policy": policy,
        "adversarial": D is not None,
        "batch": c.batch_size,
        "patch": c.patch_size,
        "ours_s": t_ours,
        "bare_s": t_bare,
        "ratio_bare": t_bare / t_ours,
        "kpix_s": px / t_ours / 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument("--size", type=int, default=2048, help="image side (default 2048)")
    ap.add_argument(
        "--precisions",
        default="float32,auto",
        help="comma-separated (auto = the hardware's mixed policy)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bare-tile", type=int, default=1024)
    ap.add_argument(
        "--tile-sizes",
        default="1024,1280,2048",
        help="tile sizes to time for predict (the default is always timed)",
    )
    ap.add_argument("--train-steps", type=int, default=8)
    ap.add_argument(
        "--train-modes",
        default="gan,gen",
        help="gan: generator + discriminator step; gen: generator alone",
    )
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--quick", action="store_true", help="512² image, 1 repeat, 3 steps")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    a = ap.parse_args(argv)
    if a.quick:
        a.size, a.repeats, a.train_steps, a.bare_tile = 512, 1, 3, 256
        a.tile_sizes = "256"

    import keras
    import tensorflow as tf

    from models import Config
    from models.precision import resolve_precision

    cfg = Config.preset(a.preset)
    policies = []
    for p in a.precisions.split(","):
        r = resolve_precision(p.strip())
        if r not in policies:
            policies.append(r)
    tile_sizes = [int(t) for t in a.tile_sizes.split(",") if t]
    info = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "preset": a.preset,
        "command": " ".join(
            [sys.executable.split("/")[-1], "-m", "bench.speed", *(argv or sys.argv[1:])]
        ),
    }
    print(json.dumps(info))
    res = {"info": info, "matmul": {}, "inference": {}, "training": {}}
    for p in policies:
        res["matmul"][p] = matmul_gflops(p, repeats=a.repeats)
        print(f"[{p}] matmul 2048²: {res['matmul'][p]:.0f} GFLOP/s", flush=True)
        r = bench_inference(cfg, p, a.size, a.repeats, a.bare_tile, tile_sizes)
        res["inference"][p] = r
        print(
            f"[{p}] bare calls on {a.bare_tile}² tiles: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in r["bare_s"].items()),
            flush=True,
        )
        print(
            f"[{p}] tiled predict by tile size: "
            + ", ".join(f"{k}: {v['s']:.2f} s ({v['tiles']} tiles)" for k, v in r["tiled"].items()),
            flush=True,
        )
        for mode in [] if a.skip_training else a.train_modes.split(","):
            t = bench_training(cfg, p, a.train_steps, a.repeats, mode == "gan")
            res["training"][f"{p} {mode}"] = t
            print(
                f"[{p} {mode}] train step: ours {t['ours_s']:.3f} s, bare {t['bare_s']:.3f} s",
                flush=True,
            )

    print()
    print(f"Inference, {a.size}×{a.size}×3, preset {a.preset}")
    print(
        f"(network: {next(iter(res['inference'].values()))['flops_per_px'] / 1e3:.0f} "
        "kFLOP per pixel; GFLOP/s = the network's FLOPs on the image's pixels / wall time)"
    )
    print(
        "| precision | matmul GFLOP/s | tiles (tile_size) | time s | MPix/s | GFLOP/s | "
        "% of matmul | bare s (GFLOP/s, % of matmul) | bare/tiled |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for p, r in res["inference"].items():
        mm = res["matmul"][p]
        print(
            f"| {p} | {mm:.0f} | {r['default_tiles']} ({r['default_tile_size']}) | "
            f"{r['default_s']:.2f} | {r['mpix_s']:.2f} | {r['gflops']:.0f} | "
            f"{100 * r['gflops'] / mm:.0f} % | {r['bare_best_s']:.2f} "
            f"({r['bare_gflops']:.0f}, {100 * r['bare_gflops'] / mm:.0f} %) | "
            f"{r['ratio_bare']:.2f} |"
        )
    print()
    print("Tiled predict by tile_size (s)")
    sizes = list(next(iter(res["inference"].values()))["tiled"])
    print(
        "| precision | "
        + " | ".join(
            f"{t} ({res['inference'][policies[0]]['tiled'][t]['tiles']} tiles)" for t in sizes
        )
        + " |"
    )
    print("|---|" + "---|" * len(sizes))
    for p, r in res["inference"].items():
        print(f"| {p} | " + " | ".join(f"{r['tiled'][t]['s']:.2f}" for t in sizes) + " |")
    print()
    print(f"Bare model on {a.bare_tile}² non-overlapping tiles, by call (s)")
    names = list(next(iter(res["inference"].values()))["bare_s"])
    print("| precision | " + " | ".join(names) + " | fastest | tiled predict chose |")
    print("|---|" + "---|" * (len(names) + 2))
    for p, r in res["inference"].items():
        times = " | ".join(f"{r['bare_s'][n]:.2f}" for n in names)
        print(f"| {p} | {times} | {r['bare_call']} | {r['predict_call']} |")
    if res["training"]:
        print()
        print("Training step")
        print(
            "| precision | G+D | batch × patch | ours s/step | bare s/step | bare/ours | kPix/s |"
        )
        print("|---|---|---|---|---|---|---|")
        for t in res["training"].values():
            print(
                f"| {t['policy']} | {'G + D' if t['adversarial'] else 'G only'} | "
                f"{t['batch']} × {t['patch']}² | {t['ours_s']:.3f} | {t['bare_s']:.3f} | "
                f"{t['ratio_bare']:.2f} | {t['kpix_s']:.0f} |"
            )
    if a.json:
        from models.files import write_json

        write_json(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
