"""The evaluation report's trust panel: one field's input, output, consistency error map and
(for a calibrated model) uncertainty half-width map, and what the model made of pure noise,
under the effective PSF and the test fields' numbers."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figures import channel_colors, composite

DPI = 100


def _normed(
    cyx: np.ndarray, lo: Sequence[float] | None = None, span: Sequence[float] | None = None
) -> np.ndarray:
    x = np.asarray(cyx, dtype=np.float64)
    if lo is None or span is None:
        lo = [float(np.percentile(c, 0.1)) for c in x]
        span = [max(float(np.percentile(c, 99.9)) - a, 1e-12) for c, a in zip(x, lo, strict=True)]
    return np.stack([(c - a) / s for c, a, s in zip(x, lo, span, strict=True)])


def trust_panel(
    lq: np.ndarray,
    output: np.ndarray,
    error_map: np.ndarray,
    noise_output: np.ndarray,
    noise_input: np.ndarray,
    training_range: Sequence[float],
    lines: Sequence[str],
    emission_nm: Sequence[float] | None = None,
    half_width: np.ndarray | None = None,
    half_width_title: str = "uncertainty half-width (max over channels)",
) -> bytes:
    """PNG: input | output | consistency error (max over channels) | [uncertainty half-width,
    ``CYX`` as a fraction of each channel's output range, max over channels] | pure noise →
    output, the noise pictures on the training range's scale so that invented structure would
    show."""
    n_ch = np.shape(lq)[0]
    colors = channel_colors(n_ch, emission_nm)
    noise_lo = [
        float(np.median(c)) - 0.05 * r for c, r in zip(noise_input, training_range, strict=True)
    ]
    pictures = [
        ("input (LQ)", composite(_normed(lq), colors), None),
        ("output", composite(_normed(output), colors), None),
        ("consistency error (max over channels)", np.max(error_map, axis=0), "magma"),
    ]
    if half_width is not None:
        pictures.append((half_width_title, np.max(half_width, axis=0), "viridis"))
    pictures += [
        (
            "pure noise → output (training range)",
            composite(_normed(noise_output, noise_lo, training_range), colors),
            None,
        ),
    ]
    text_h = 0.22 * (len(lines) + 1)
    step = 0.98 / len(pictures)
    fig = Figure(figsize=(3.25 * len(pictures), 3.4 + text_h), dpi=DPI)
    FigureCanvasAgg(fig)
    for i, line in enumerate(lines):
        fig.text(
            0.5,
            1.0 - (0.15 + 0.22 * i) / (3.4 + text_h),
            line,
            ha="center",
            va="top",
            fontsize=10 if i else 11,
            weight="bold" if i == 0 else "normal",
        )
    top = 1.0 - (text_h + 0.1) / (3.4 + text_h)
    for k, (title, picture, cmap) in enumerate(pictures):
        width = step * (0.94 if cmap is None else 0.78)  # room for the colour bar's labels
        ax = fig.add_axes((0.01 + k * step, 0.04, width, top - 0.1))
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
        if cmap is None:
            ax.imshow(np.clip(picture, 0, 1), interpolation="nearest")
        else:
            shown = ax.imshow(
                picture,
                cmap=cmap,
                vmin=0.0,
                vmax=max(float(np.percentile(picture, 99.9)), 1e-6),
                interpolation="nearest",
            )
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def trust_lines(trust: Mapping[str, Any]) -> list[str]:
    """The panel's text from the report's ``info["trust"]``."""
    ref, fields, null = trust["reference"], trust["fields"], trust["null_inputs"]
    flagged = sum(1 for f in fields.values() if f["flagged"])
    rsp = np.median([np.mean(f["rsp"]) for f in fields.values()]) if fields else float("nan")
    return [
        f"Trust — effective PSF (LQ vs HQ): {ref['effective_psf']}",
        f"consistency on {len(fields)} field(s): median RSP {rsp:.3f}; {flagged} flagged; "
        f"OOD threshold {ref['ood_threshold']:.2f} ({ref['ood_threshold_note']})",
        "pure noise → output std {:.3f} of the training range, {:.2f}× the noise; blank → {:.4f} "
        "(bounds {:g}, {:g}×, {:g}): {}".format(
            max(null["noise_output_std_of_range"]),
            max(null["noise_gain"]),
            max(null["blank_output_std_of_range"]),
            null["bounds"]["noise_std_of_range_max"],
            null["bounds"]["noise_gain_max"],
            null["bounds"]["blank_std_of_range_max"],
            "within bounds" if null["within_bounds"] else "BEYOND BOUNDS",
        ),
    ]
