"""Which device a worker computes on: GPUs (with memory growth, one training per GPU) or CPU."""

from __future__ import annotations

import os
import shutil
import subprocess

from models.precision import CPU_BF16_FLAGS, cpu_flags


def count_gpus() -> int:
    """GPUs visible to this machine, counted without importing TensorFlow."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def pin_gpu(child_index: int, gpus: int) -> None:
    """Give each pool process its own GPU, before TensorFlow is imported there."""
    if gpus > 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(child_index % gpus)


def prepare_tensorflow() -> str:
    """Enable GPU memory growth and describe the device this process will train on."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process: growth was set then
            pass
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU {details.get('device_name', gpus[0].name)}"
    flags = cpu_flags()
    extras = [f for f in CPU_BF16_FLAGS if f in flags]
    return f"CPU ({os.cpu_count()} cores{', ' + ', '.join(extras) if extras else ''})"
