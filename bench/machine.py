"""The machine a benchmark ran on, written beside its figures.

bfloat16 speed-ups (and so how many training steps fit a wall-clock budget) differ by CPU, so
every table of measured figures names the CPU model and whether it has AVX512-BF16 and AMX.
"""

from __future__ import annotations

import os
import platform

from models.precision import cpu_flags, cpu_model


def machine() -> dict:
    """CPU model, core count and the bfloat16 instruction sets it has."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "machine": platform.machine(),
    }


def short(info: dict) -> str:
    """A few words for a table: 'Intel Xeon, AMX' or 'AMD EPYC, AVX512-BF16'."""
    cpu = info.get("cpu", "?").replace("(R)", "").replace(" Processor", "")
    cpu = " ".join(w for w in cpu.split() if not w.endswith("-Core"))
    isa = "AMX" if info.get("amx_bf16") else "AVX512-BF16" if info.get("avx512_bf16") else "no bf16"
    return f"{cpu}, {isa}"
