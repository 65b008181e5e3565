"""OME-Zarr benchmark: an image larger than memory through `pairscope enhance`, block by block.

Measures, in one run, each part in its own process (so each peak RSS is its own):

1. ``zarr``: a ``--size``² × 3 uint16 OME-Zarr, synthesised chunk by chunk (never whole in
   memory, in a process of its own), enhanced to OME-Zarr by
   :func:`models.cli_science.enhance` (percentile pass, blocks with halo, pyramid, metadata,
   rename): MPix/s and peak RSS;
2. ``memory``: the in-memory path on a ``--memory-size``² × 3 uint16 image, the same model:
   file to file (TIFF → :func:`enhance` → OME-TIFF) and ``EnhancementModel.predict`` alone;
3. ``onnx``: the model's ONNX export (tf2onnx, as ``pairscope export`` writes it) under
   onnxruntime against TensorFlow's compiled call, both float32, on one ``--onnx-size``² tile.

The model is ``cpu-small`` with random weights (weights do not change the speed). Ratios compare
numbers of the same run.

    .venv/bin/python -m bench.zarr                      # 16384² (minutes on 2 cores)
    .venv/bin/python -m bench.zarr --size 2048 --memory-size 1024 --onnx-size 512   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.machine import machine  # noqa: E402


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(root: str, precision: str):
    from models import Config, EnhancementModel

    model = EnhancementModel(
        Config.preset("cpu-small", precision=precision), n_channels=3, name="bench"
    )
    path = os.path.join(root, f"model-{precision}")
    model.save(path)
    return model, path


def _synthesise_zarr(path: str, size: int) -> None:
    """A 12-bit-camera-like image (smooth structure + noise), generated chunk by chunk."""
    import dask
    import dask.array as da
    import ngff_zarr as nz

    chunk = 1024

    def block(block_info=None):
        (c0, c1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        rng = np.random.default_rng([c0, y0, x0])
        rows = np.sin(np.arange(y0, y1) / 37.0 + c0).astype(np.float32)
        cols = np.cos(np.arange(x0, x1) / 53.0).astype(np.float32)
        base = 800 + 600 * np.outer(rows, cols)
        noise = rng.integers(-100, 100, base.shape, dtype=np.int16)
        return (base + noise).clip(0, 4095).astype(np.uint16)[None]

    chunks = (
        (1,) * 3,
        (chunk,) * (size // chunk) or (size,),
        (chunk,) * (size // chunk) or (size,),
    )
    data = da.map_blocks(block, dtype=np.uint16, chunks=chunks, meta=np.empty((0, 0, 0), np.uint16))
    image = nz.to_ngff_image(
        data,
        dims=["c", "y", "x"],
        scale={"y": 0.1, "x": 0.1},
        translation={"y": 0.0, "x": 0.0},
        axes_units={"y": "micrometer", "x": "micrometer"},
    )
    with dask.config.set(scheduler="synchronous"):
        nz.to_ome_zarr(path, nz.to_multiscales(image, scale_factors=[], cache=False), version="0.4")


def child_zarr(a) -> dict:
    from models.cli_science import enhance

    root = tempfile.mkdtemp(prefix="bench-zarr-", dir=a.workdir)
    source = os.path.join(root, "in.ome.zarr")
    try:
        t = time.perf_counter()
        # in a process of its own, so that the peak RSS measured here is the enhancement's
        code = f"from bench.zarr import _synthesise_zarr; _synthesise_zarr({source!r}, {a.size})"
        subprocess.run([sys.executable, "-c", code], check=True)
        synth_s = time.perf_counter() - t
        model, path = _model(root, a.precision)
        rss_model = _peak_rss_mb()
        t = time.perf_counter()
        enhance(
            path,
            source,
            os.path.join(root, "out.ome.zarr"),
            model=model,
            block=a.block,
        )
        s = time.perf_counter() - t
        return {
            "size": a.size,
            "s": s,
            "mpix_s": a.size**2 / s / 1e6,
            "synth_s": synth_s,
            "peak_rss_mb": _peak_rss_mb(),
            "rss_after_model_mb": rss_model,
            "policy": model.policy,
            "block": a.block or "default",
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def child_memory(a) -> dict:
    import tifffile

    from models.cli_science import enhance

    root = tempfile.mkdtemp(prefix="bench-mem-", dir=a.workdir)
    try:
        size = a.memory_size
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        image = np.stack(
            [
                (
                    800
                    + 600 * np.sin(yy / 37.0 + c) * np.cos(xx / 53.0)
                    + rng.normal(0, 60, yy.shape)
                )
                .clip(0, 4095)
                .astype(np.uint16)
                for c in range(3)
            ]
        )
        del yy, xx
        tifffile.imwrite(
            os.path.join(root, "in.tif"), image, photometric="minisblack", metadata={"axes": "CYX"}
        )
        model, path = _model(root, a.precision)
        model.predict(image[:, :512, :512])  # traces a graph, loads oneDNN
        t = time.perf_counter()
        model.predict(image)
        predict_s = time.perf_counter() - t
        t = time.perf_counter()
        enhance(path, os.path.join(root, "in.tif"), os.path.join(root, "out.ome.tif"), model=model)
        file_s = time.perf_counter() - t
        pix = size * size
        return {
            "size": size,
            "predict_s": predict_s,
            "file_s": file_s,
            "predict_mpix_s": pix / predict_s / 1e6,
            "file_mpix_s": pix / file_s / 1e6,
            "peak_rss_mb": _peak_rss_mb(),
            "policy": model.policy,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def child_onnx(a) -> dict:
    import onnxruntime as ort
    import tensorflow as tf

    from models.bioimageio_export import _export_onnx

    root = tempfile.mkdtemp(prefix="bench-onnx-", dir=a.workdir)
    try:
        model, _ = _model(root, "float32")
        onnx_path = os.path.join(root, "model.onnx")
        from pathlib import Path

        _export_onnx(model.generator, 3, Path(onnx_path))
        x = np.random.default_rng(0).random((1, a.onnx_size, a.onnx_size, 3), np.float32)
        tf_fn = model._ensure_built().predict_fn
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_ort():
            return session.run(None, {name: x})[0]

        def best(fn):
            fn()
            times = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return min(times)

        t_tf, t_ort = best(lambda: tf_fn(x)), best(run_ort)
        diff = float(np.abs(np.asarray(tf_fn(x)) - run_ort()).max())
        pix = a.onnx_size**2
        return {
            "size": a.onnx_size,
            "tf_s": t_tf,
            "ort_s": t_ort,
            "tf_mpix_s": pix / t_tf / 1e6,
            "ort_mpix_s": pix / t_ort / 1e6,
            "max_abs_diff": diff,
            "tf_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "onnxruntime": ort.__version__,
            "peak_rss_mb": _peak_rss_mb(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


CHILDREN = {"zarr": child_zarr, "memory": child_memory, "onnx": child_onnx}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=16384, help="OME-Zarr image side")
    ap.add_argument("--memory-size", type=int, default=4096, help="in-memory image side")
    ap.add_argument("--onnx-size", type=int, default=2048, help="ONNX/TF tile side")
    ap.add_argument("--precision", default="auto", help="of the zarr and memory runs")
    ap.add_argument("--block", type=int, default=None, help="block side (default 1280)")
    ap.add_argument("--repeats", type=int, default=2, help="ONNX/TF timings: best of")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: the system's)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(CHILDREN[a.child](a)))
        return 0
    info = {
        "machine": machine(),
        "load_before": os.getloadavg(),
        "command": " ".join(["python -m bench.zarr", *(argv or sys.argv[1:])]),
    }
    print(json.dumps(info), flush=True)
    res = {"info": info}
    for name in ("memory", "zarr", "onnx"):
        cmd = [sys.executable, "-m", "bench.zarr", "--child", name, *(argv or sys.argv[1:])]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        res[name] = json.loads(done.stdout.strip().splitlines()[-1])
        res[name]["load_after"] = os.getloadavg()
        print(name, json.dumps(res[name]), flush=True)
    z, m, o = res["zarr"], res["memory"], res["onnx"]
    print()
    print(
        f"OME-Zarr vs in-memory, cpu-small (random weights), {z['policy']}; "
        f"{info['machine']['cpu']}, {info['machine']['cores']} cores"
    )
    print(
        "| path | image | time s | MPix/s | peak RSS MB | ratio to in-memory file→file "
        "| ratio to in-memory predict | load avg (1 min) after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| OME-Zarr → OME-Zarr (block {z['block']}) | {z['size']}² × 3 uint16 | {z['s']:.1f} | "
        f"{z['mpix_s']:.2f} | {z['peak_rss_mb']:.0f} | "
        f"{z['mpix_s'] / m['file_mpix_s']:.2f} | {z['mpix_s'] / m['predict_mpix_s']:.2f} | "
        f"{z['load_after'][0]:.1f} |"
    )
    print(
        f"| TIFF → OME-TIFF (in memory) | {m['size']}² × 3 uint16 | {m['file_s']:.1f} | "
        f"{m['file_mpix_s']:.2f} | {m['peak_rss_mb']:.0f} | 1 | | {m['load_after'][0]:.1f} |"
    )
    print(
        f"| EnhancementModel.predict (in memory) | {m['size']}² × 3 uint16 | "
        f"{m['predict_s']:.1f} | {m['predict_mpix_s']:.2f} | | | 1 | |"
    )
    print()
    print(
        f"ONNX (onnxruntime {o['onnxruntime']}) vs TensorFlow, float32, one "
        f"{o['size']}² × 3 tile, best of {a.repeats}"
    )
    print("| runtime | s | MPix/s | ratio to TF | max abs diff |")
    print("|---|---|---|---|---|")
    print(f"| TensorFlow (compiled per shape) | {o['tf_s']:.2f} | {o['tf_mpix_s']:.2f} | 1 | |")
    print(
        f"| onnxruntime (CPU) | {o['ort_s']:.2f} | {o['ort_mpix_s']:.2f} | "
        f"{o['ort_mpix_s'] / o['tf_mpix_s']:.2f} | {o['max_abs_diff']:.2g} |"
    )
    if a.json:
        from models.files import write_json

        write_json(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
