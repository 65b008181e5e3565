"""Choosing the compute precision from the hardware.

``auto`` resolves to

* ``mixed_bfloat16`` on a CPU whose flags (``/proc/cpuinfo``) list ``amx_bf16`` or
  ``avx512_bf16`` – the flags are read, never assumed – and on GPUs of compute capability ≥ 8.0
  (Ampere and later), which have bfloat16 tensor cores;
* ``mixed_float16`` (with dynamic loss scaling in training) on older GPUs with compute
  capability ≥ 7.0;
* ``float32`` otherwise.

Under a mixed policy variables stay float32 and the layers compute in 16 bits; the networks keep
their last convolution and the residual output in float32 and the losses and metrics are always
computed in float32 (see :mod:`models.networks`, :mod:`models.losses`).

:func:`cpu_flags` and :func:`cpu_has_bf16` do not import TensorFlow.
"""

from __future__ import annotations

import functools
import platform

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags") or line.startswith("Features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; ``platform.processor()`` elsewhere):
    call paths are measured per CPU, and benchmarks name the CPU beside their figures."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU has native bfloat16 arithmetic (AMX-BF16 or AVX512-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in CPU_BF16_FLAGS)


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the visible GPUs (imports TensorFlow)."""
    import tensorflow as tf

    caps = []
    for dev in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(dev)
        except Exception:  # noqa: BLE001 - details are optional
            details = {}
        cc = details.get("compute_capability")
        caps.append(tuple(cc) if cc else (0, 0))
    return caps


def choose_precision(
    gpu_caps: list[tuple[int, int]] | None = None, flags: frozenset[str] | None = None
) -> str:
    """The policy ``auto`` stands for on this machine (or on the hardware described)."""
    caps = gpu_compute_capabilities() if gpu_caps is None else gpu_caps
    if caps:
        best = max(caps)
        if best >= (8, 0):
            return "mixed_bfloat16"
        if best >= (7, 0):
            return "mixed_float16"
        return "float32"
    if cpu_has_bf16(flags):
        return "mixed_bfloat16"
    return "float32"


def resolve_precision(name: str) -> str:
    """Map a ``Config.precision`` value to a concrete Keras dtype-policy name."""
    if name == "auto":
        return choose_precision()
    if name not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise ValueError(f"unknown precision {name!r}")
    return name


def describe_hardware() -> dict:
    """A small dict for training metadata (CPU model, bf16 flags, GPUs)."""
    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_bf16": cpu_has_bf16(),
        "cpu_bf16_flags": sorted(f for f in CPU_BF16_FLAGS if f in cpu_flags()),
    }
