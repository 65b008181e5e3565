"""How the generator is called on a tile, chosen by measurement on the machine it runs on.

Four ways of calling a Keras generator on a numpy tile give the same numbers at different
speeds, and which wins can differ between CPUs and TensorFlow builds (issue 16 reported another
winner on an Intel CPU with AMX; measured here, a graph traced for the exact tile shape won on
both AVX512-BF16 without AMX and on AMX, by 10-30 % over the next). So the path is measured,
not assumed: each candidate runs on a probe tile of the model's tile size (capped at
:data:`PROBE_MAX` pixels a side), best of :data:`REPEATS` after a warm-up call, and the fastest
is kept if it beats the per-shape graph by a clear :data:`MARGIN`. The measurement costs a few
seconds, so its result is cached on disk per CPU model, TensorFlow version, dtype policy,
network and probe shape (``$PAIRSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/pairscope``, else
``~/.cache/pairscope``): a machine measures once, then every process reads the choice.

``PAIRSCOPE_CALL_PATH`` names a path to skip the measurement (one of :data:`CALL_PATHS`).
``bench/speed.py`` times the same candidates.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data import ALIGN
from .files import write_json
from .precision import cpu_model

TileCall = Callable[[np.ndarray], np.ndarray]

DEFAULT_PATH = "graph per shape"
PROBE_MAX = 1024
REPEATS = 3
MARGIN = 0.9  # another path replaces the default only when it takes under 90 % of its time
GRAPHS_PER_SHAPE = 8  # traced graphs kept per path (one per input shape), oldest evicted


def to_tensor(tile: np.ndarray) -> tf.Tensor:
    """``tile`` as a tensor: shared through DLPack when it is aligned, contiguous and writeable
    (``tf.constant`` always copies: 14 ms for a 2048² × 3 tile on the AMX Xeon, 3 % of the
    network call), else copied. Sharing an unaligned array would abort TensorFlow, hence the
    checks."""
    if (
        tile.dtype == np.float32
        and tile.flags.c_contiguous
        and tile.flags.writeable
        and tile.ctypes.data % ALIGN == 0
        and tile.size
    ):
        return tf.experimental.dlpack.from_dlpack(tile.__dlpack__())
    return tf.constant(tile)


def _graph_per_shape(generator: keras.Model) -> TileCall:
    """One concrete graph per input shape in a small LRU cache."""
    cache: OrderedDict = OrderedDict()

    def call(tile: np.ndarray) -> np.ndarray:
        key = tile.shape
        graph = cache.pop(key, None)
        if graph is None:  # a fresh tf.function per shape, so eviction frees it
            graph = tf.function(lambda x: generator(x, training=False)).get_concrete_function(
                tf.TensorSpec(key, tf.float32)
            )
        cache[key] = graph
        while len(cache) > GRAPHS_PER_SHAPE:
            cache.popitem(last=False)
        return graph(to_tensor(tile)).numpy()

    return call


def _graph_dynamic(generator: keras.Model) -> TileCall:
    """One graph traced for any tile shape."""
    spec = tf.TensorSpec([None, None, None, generator.input_shape[-1]], tf.float32)
    graph = tf.function(lambda x: generator(x, training=False), input_signature=[spec])
    return lambda tile: graph(to_tensor(tile)).numpy()


def _eager(generator: keras.Model) -> TileCall:
    return lambda tile: generator(tile, training=False).numpy()


def _keras_predict(generator: keras.Model) -> TileCall:
    return lambda tile: generator.predict(tile, verbose=0, batch_size=len(tile))


CALL_PATHS: dict[str, Callable[[keras.Model], TileCall]] = {
    DEFAULT_PATH: _graph_per_shape,
    "graph, dynamic shape": _graph_dynamic,
    "eager call": _eager,
    "keras predict": _keras_predict,
}


def tile_call(
    generator: keras.Model, probe_shape: tuple[int, ...], policy: str
) -> tuple[str, TileCall]:
    """The chosen path's name and a float32 NHWC numpy → numpy call of ``generator``, which
    computes in the dtype ``policy`` (a mixed policy leaves the model's own policy float32)."""
    name = chosen_path(generator, probe_shape, policy)
    call = CALL_PATHS[name](generator)
    return name, lambda tile: call(np.ascontiguousarray(tile, dtype=np.float32))


def probe_shape_for(tile_size: int, multiple: int, channels: int) -> tuple[int, int, int, int]:
    """The tile the paths are timed on: the model's tile size, at most :data:`PROBE_MAX`."""
    side = max(multiple, min(tile_size, PROBE_MAX) // multiple * multiple)
    return (1, side, side, channels)


def chosen_path(generator: keras.Model, probe_shape: tuple[int, ...], policy: str) -> str:
    """The path named by ``PAIRSCOPE_CALL_PATH``, else the cached or freshly measured fastest
    (the default unless another is clearly faster: timings of near-equal paths swap by noise)."""
    forced = os.environ.get("PAIRSCOPE_CALL_PATH", "").strip()
    if forced:
        if forced not in CALL_PATHS:
            raise ValueError(f"PAIRSCOPE_CALL_PATH={forced!r}: choose one of {sorted(CALL_PATHS)}")
        return forced
    key = _cache_key(generator, probe_shape, policy)
    cached = _read_cache().get(key)
    if cached in CALL_PATHS:
        return cached
    timings = measure(generator, probe_shape)
    fastest = min(timings, key=timings.__getitem__)
    if timings[fastest] > MARGIN * timings[DEFAULT_PATH]:
        fastest = DEFAULT_PATH
    _write_cache(key, fastest)
    return fastest


def measure(
    generator: keras.Model, probe_shape: tuple[int, ...], repeats: int = REPEATS
) -> dict[str, float]:
    """Seconds per call of each path on a random tile of ``probe_shape`` (best of ``repeats``)."""
    tile = np.random.default_rng(0).random(probe_shape, dtype=np.float32)
    timings = {}
    for name, build in CALL_PATHS.items():
        call = build(generator)
        call(tile)  # trace / warm up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            call(tile)
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    return timings


def _cache_key(generator: keras.Model, probe_shape: tuple[int, ...], policy: str) -> str:
    devices = ",".join(d.name for d in tf.config.list_physical_devices("GPU")) or cpu_model()
    layers = ";".join(f"{type(layer).__name__}{layer.output.shape}" for layer in generator.layers)
    network = hashlib.sha256(layers.encode()).hexdigest()[:16]
    shape = "x".join(map(str, probe_shape))
    return f"{devices} | tf {tf.__version__} | {policy} | {network} | {shape}"


def cache_path() -> Path:
    """Where measured choices are kept (see the module docstring)."""
    root = os.environ.get("PAIRSCOPE_CACHE_DIR")
    if root:
        return Path(root) / "call_paths.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "pairscope" / "call_paths.json"


def _read_cache() -> dict[str, str]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, name: str) -> None:
    """Best effort: a read-only home only means measuring again next time."""
    data = _read_cache()
    data[key] = name
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        write_json(cache_path(), data)
    except OSError:
        pass
