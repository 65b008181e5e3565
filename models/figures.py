"""The paper's figures as PNG bytes: Fig. 5 box plots, the Figs. 3–4 image panel with a line
profile, a version's one-picture report, and training curves for the dashboard.

Drawn with matplotlib's object API on the Agg canvas (``matplotlib.figure.Figure``, never
``pyplot``): no global backend switch and no shared pyplot state, so workers can draw from
threads and importing this module neither imports TensorFlow nor changes the caller's
matplotlib backend. matplotlib is imported lazily, inside the functions.

A version's report is **one** PNG (:func:`report_png`): the title and medians table, the box
plots and, below them, the image panel, stacked pixel for pixel (no resampling).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .evaluation import HIGHER_IS_BETTER, EvaluationReport
from .metrics import METRICS, score_image

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

METRIC_LABELS = {"mse": "MSE", "nrmse": "NRMSE", "ssim": "SSIM", "psnr": "PSNR (dB)"}
DISPLAY_LOW, DISPLAY_HIGH = 0.1, 99.9  # the protocol's GT percentiles, used for display too
DPI = 100
PROFILE_MAX = 256  # longest profile drawn (the paper draws 128–130 px); wider rows get a window
_METHOD_COLORS = (
    "#7f7f7f",
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
)


# ---------------------------------------------------------------------------------- Fig. 5
def box_plots(report: EvaluationReport) -> bytes:
    """Fig. 5: one panel per metric (MSE, NRMSE, SSIM, PSNR), one box per method.

    Boxes span the quartiles with the median line, whiskers reach 1.5 × IQR and points beyond
    are drawn as outliers, as in the paper; each field's value is overlaid as a dot (test sets
    are small) and each median is printed above its box. Non-finite values (the infinite PSNR
    of a perfect prediction) cannot be drawn; they are left out and counted in the panel title.
    """
    methods = list(report.methods)
    n = max(len(methods), 1)
    fig = _figure(max(9.0, 2.2 + 2.2 * n), 4.4)
    axes = fig.subplots(1, len(METRICS))
    for ax, metric in zip(axes, METRICS, strict=True):
        data, dropped = [], 0
        for m in methods:
            vals = np.asarray(report.values(m, metric), dtype=np.float64)
            dropped += int(np.sum(~np.isfinite(vals)))
            data.append(vals[np.isfinite(vals)])
        pos = np.arange(1, len(methods) + 1)
        drawable = [i for i, d in enumerate(data) if d.size]
        if drawable:
            bp = ax.boxplot(
                [data[i] for i in drawable],
                positions=pos[drawable],
                widths=0.6,
                whis=1.5,
                patch_artist=True,
                showfliers=True,
                medianprops={"color": "black", "linewidth": 1.5},
                flierprops={"marker": "o", "markersize": 3, "alpha": 0.6},
            )
            for patch, i in zip(bp["boxes"], drawable, strict=True):
                patch.set_facecolor(_method_color(i))
                patch.set_alpha(0.45)
            rng = np.random.default_rng(0)  # fixed jitter: identical reports draw identically
            for i in drawable:
                x = pos[i] + rng.uniform(-0.12, 0.12, data[i].size)
                ax.plot(x, data[i], ".", color=_method_color(i), markersize=4, alpha=0.8)
        for i, m in enumerate(methods):
            med = report.medians[m][metric]
            if math.isfinite(med):
                ax.annotate(
                    _fmt(metric, med),
                    (pos[i], 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        arrow = "↑" if HIGHER_IS_BETTER[metric] else "↓"
        title = f"{METRIC_LABELS[metric]} {arrow}"
        if dropped:
            title += f"\n({dropped} non-finite left out)"
        ax.set_title(title, fontsize=10, pad=14)
        ax.set_xticks(pos)
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(0.4, len(methods) + 0.6)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    n_fields = len(report.field_ids)
    fig.suptitle(
        f"Test-field metrics ({n_fields} field{'s' if n_fields != 1 else ''}; "
        "protocol: HQ percentile-normalised, output fitted by scale + offset)",
        fontsize=10,
    )
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------------- Figs. 3–4
def comparison_panel(
    lq: np.ndarray,
    hq: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    emission_nm: Sequence[float] | None = None,
    profile_row: int | None = None,
    profile_span: tuple[int, int] | None = None,
    show_scores: bool = True,
) -> bytes:
    """Figs. 3–4: LQ | each output (e.g. RL, generated) | HQ for one field, with a line profile.

    Images are ``(C)YX`` (``ZCYX``: the plane with the most HQ structure is shown), all of one
    shape. Each image's channels are percentile-normalised (0.1, 99.9) on their own and shown
    as a colour composite, channels coloured by ascending emission wavelength (``emission_nm``;
    channel order when None) — blue, green, red for three channels as in the paper. A dashed
    white line marks the profile row (``profile_row``; default: the HQ row with the most
    structure) over ``profile_span`` = ``(x0, x1)`` (default: the whole row up to 256 px, else
    the 256-px window with the most HQ structure). Below, one axis per channel shows the
    normalised intensity of every image along that line. ``show_scores`` puts each image's
    protocol PSNR / SSIM against the HQ in its title.
    """
    hq_a = np.asarray(hq, dtype=np.float64)
    lq_a = np.asarray(lq, dtype=np.float64)
    outs = {str(k): np.asarray(v, dtype=np.float64) for k, v in outputs.items()}
    for name, arr in [("LQ", lq_a), *outs.items()]:
        if arr.shape != hq_a.shape:
            raise ValueError(f"comparison_panel: {name} shape {arr.shape} != HQ {hq_a.shape}")
    if hq_a.ndim == 4:
        z = int(np.argmax([_structure(_norm_channels(p)).sum() for p in hq_a]))
        lq_a, hq_a = lq_a[z], hq_a[z]
        outs = {k: v[z] for k, v in outs.items()}
    if hq_a.ndim == 2:
        lq_a, hq_a = lq_a[None], hq_a[None]
        outs = {k: v[None] for k, v in outs.items()}
    if hq_a.ndim != 3:
        raise ValueError(f"comparison_panel: expected (C)YX or ZCYX images, got {np.shape(hq)}")
    n_ch, h, w = hq_a.shape
    if emission_nm is not None and len(emission_nm) != n_ch:
        raise ValueError(
            f"comparison_panel: {len(emission_nm)} emission wavelength(s) for {n_ch} channel(s)"
        )
    images = [("LQ", lq_a), *outs.items(), ("HQ", hq_a)]
    normed = [(name, _norm_channels(a)) for name, a in images]
    hq_n = normed[-1][1]
    row = choose_profile_row(hq_n) if profile_row is None else int(profile_row)
    if not 0 <= row < h:
        raise ValueError(f"profile_row {row} is outside the image (height {h})")
    x0, x1 = _profile_span(hq_n, row) if profile_span is None else map(int, profile_span)
    if not 0 <= x0 < x1 <= w:
        raise ValueError(f"profile_span ({x0}, {x1}) is outside the image (width {w})")
    colors = channel_colors(n_ch, emission_nm)
    scores = {name: score_image(a, hq_a) for name, a in images[:-1]} if show_scores else {}

    n_img = len(images)
    panel_w = 3.0
    fig = _figure(max(panel_w * n_img, 8.0), panel_w * h / w + 0.6 + 2.2 * n_ch)
    gs = fig.add_gridspec(1 + n_ch, n_img, height_ratios=[panel_w * h / w + 0.4, *([2.0] * n_ch)])
    for j, (name, nrm) in enumerate(normed):
        ax = fig.add_subplot(gs[0, j])
        ax.imshow(composite(nrm, colors), interpolation="nearest")
        ax.plot([x0, x1 - 1], [row, row], "--", color="white", linewidth=1.0)
        title = name
        if name in scores:
            title += f"\nPSNR {scores[name]['psnr']:.2f} dB · SSIM {scores[name]['ssim']:.3f}"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    xs = np.arange(x0, x1)
    for c in range(n_ch):
        ax = fig.add_subplot(gs[1 + c, :])
        for j, (name, nrm) in enumerate(normed):
            style = _profile_style(j, n_img)
            ax.plot(xs, nrm[c, row, x0:x1], label=name, **style)
        label = f"channel {c}" if emission_nm is None else f"channel {c} ({emission_nm[c]:g} nm)"
        ax.set_ylabel("normalised\nintensity", fontsize=8)
        ax.set_title(
            f"Line profile, row {row}, x {x0}–{x1 - 1}: {label}",
            fontsize=9,
            color=_darken(colors[c]),
        )
        ax.tick_params(labelsize=7)
        ax.set_xlim(x0, x1 - 1)
        ax.grid(alpha=0.3)
        if c == 0:
            ax.legend(fontsize=7, ncol=min(n_img, 6), loc="upper right")
        if c == n_ch - 1:
            ax.set_xlabel("x (pixel)", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def choose_profile_row(normed_cyx: np.ndarray, margin: float = 0.05) -> int:
    """The row with the most structure: the largest summed |∂/∂x| over channels of the
    (normalised) image, smoothed over 3 rows so one noisy row does not win; rows within
    ``margin`` of the top and bottom edges are skipped."""
    s = _structure(normed_cyx)
    h = s.size
    s = np.convolve(s, np.ones(3) / 3, mode="same")
    lo = min(int(h * margin), max(h // 2 - 1, 0))
    hi = max(h - lo, lo + 1)
    return lo + int(np.argmax(s[lo:hi]))


def channel_colors(
    n_channels: int, emission_nm: Sequence[float] | None = None
) -> list[tuple[float, float, float]]:
    """RGB per channel by ascending emission wavelength: grey for one channel, green / magenta
    for two, blue / green / red for three (the paper's nucleus / actin / microtubules), hues
    from blue to red for more."""
    order = (
        list(range(n_channels))
        if emission_nm is None
        else [int(i) for i in np.argsort(np.asarray(emission_nm, dtype=float), kind="stable")]
    )
    if n_channels == 1:
        palette = [(1.0, 1.0, 1.0)]
    elif n_channels == 2:
        palette = [(0.0, 1.0, 0.0), (1.0, 0.0, 1.0)]
    elif n_channels == 3:
        palette = [(0.0, 0.35, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]
    else:
        from matplotlib.colors import hsv_to_rgb

        hues = np.linspace(0.66, 0.0, n_channels)
        palette = [tuple(float(v) for v in hsv_to_rgb((hh, 1.0, 1.0))) for hh in hues]
    colors: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * n_channels
    for rank, ch in enumerate(order):
        colors[ch] = palette[rank]
    return colors


def composite(normed_cyx: np.ndarray, colors: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """Additive colour composite (H, W, 3) in [0, 1] of channels already scaled to ~[0, 1]."""
    x = np.clip(np.asarray(normed_cyx, dtype=np.float64), 0.0, 1.0)
    rgb = np.tensordot(x, np.asarray(colors, dtype=np.float64), axes=([0], [0]))
    return np.clip(rgb, 0.0, 1.0)


# ---------------------------------------------------------------------------------- one report
def report_png(
    report: EvaluationReport,
    panel_png: bytes | None = None,
    title: str | None = None,
    extra_panels: Sequence[bytes] = (),
) -> bytes:
    """A version's single report picture: ``title`` and the medians table on top, then the
    :func:`box_plots`, then ``panel_png`` (e.g. from :func:`comparison_panel`) when given, then
    ``extra_panels`` (e.g. the trust panel) — stacked pixel for pixel on white, centred, so
    nothing is resampled."""
    from PIL import Image

    parts = [_header_png(report, title), box_plots(report)]
    if panel_png is not None:
        parts.append(panel_png)
    parts += list(extra_panels)
    imgs = [Image.open(io.BytesIO(p)).convert("RGB") for p in parts]
    width = max(im.width for im in imgs)
    height = sum(im.height for im in imgs)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    for im in imgs:
        canvas.paste(im, ((width - im.width) // 2, y))
        y += im.height
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _header_png(report: EvaluationReport, title: str | None) -> bytes:
    rows = [[m, *(_fmt(k, report.medians[m][k]) for k in METRICS)] for m in report.methods]
    n = len(report.field_ids)
    top, row_h, bottom = 0.75, 0.24, 0.15  # inches: title block, table row, margin
    height = top + row_h * (len(rows) + 1) + bottom
    fig = _figure(9.0, height)
    fig.text(
        0.5,
        1.0 - 0.12 / height,
        title or "Evaluation report",
        ha="center",
        va="top",
        fontsize=12,
        weight="bold",
    )
    fig.text(
        0.5,
        1.0 - 0.45 / height,
        f"medians over {n} test field{'s' if n != 1 else ''}",
        ha="center",
        va="top",
        fontsize=9,
    )
    ax = fig.add_axes((0.12, bottom / height, 0.76, row_h * (len(rows) + 1) / height))
    ax.axis("off")
    if rows:
        table = ax.table(
            cellText=rows,
            colLabels=["method", *(METRIC_LABELS[k] for k in METRICS)],
            colWidths=[0.32, 0.17, 0.17, 0.17, 0.17],
            cellLoc="center",
            bbox=(0.0, 0.0, 1.0, 1.0),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
    return _png(fig)


# ---------------------------------------------------------------------------------- curves
_NOT_LOSSES = {"step", "total", "percent", "eta_s", "elapsed_s", "lr", "best_step", "losses"}


def curves_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """Training curves for the dashboard: losses (left, log scale when all positive) and the
    validation PSNR and SSIM (middle, right) against the step, best PSNR step marked.

    ``history`` entries need ``step``; losses come from a nested ``losses`` dict (the progress
    callback's form) or from flat numeric keys (``g_total``, ``d_loss``, ``mse`` …);
    ``val_psnr`` / ``val_ssim`` may be missing or None on steps without validation. An empty
    history gives a picture that says so.
    """
    losses: dict[str, tuple[list[float], list[float]]] = {}
    val: dict[str, tuple[list[float], list[float]]] = {"val_psnr": ([], []), "val_ssim": ([], [])}
    for entry in history:
        if entry.get("step") is None:
            continue
        step = float(entry["step"])
        items = dict(entry.get("losses") or {})
        items.update(
            {k: v for k, v in entry.items() if k not in _NOT_LOSSES and not k.startswith("val_")}
        )
        for k, v in items.items():
            if _is_number(v):
                xs, ys = losses.setdefault(str(k), ([], []))
                xs.append(step)
                ys.append(float(v))
        for k in val:
            if _is_number(entry.get(k)):
                val[k][0].append(step)
                val[k][1].append(float(entry[k]))

    fig = _figure(13.0, 3.8)
    axes = fig.subplots(1, 3)
    ax = axes[0]
    all_pos = True
    for i, (name, (xs, ys)) in enumerate(sorted(losses.items())):
        ax.plot(
            xs,
            ys,
            label=name,
            color=_method_color(i + 1),
            linewidth=1.0,
            marker="." if len(xs) < 30 else None,
        )
        all_pos = all_pos and all(y > 0 for y in ys)
    if losses:
        if all_pos:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no losses yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Training losses", fontsize=10)
    best_step = None
    if val["val_psnr"][1]:
        best_step = val["val_psnr"][0][int(np.argmax(val["val_psnr"][1]))]
    for ax, key, label, color in (
        (axes[1], "val_psnr", "Validation PSNR (dB)", "#d62728"),
        (axes[2], "val_ssim", "Validation SSIM", "#1f77b4"),
    ):
        xs, ys = val[key]
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, color=color, linewidth=1.2)
            if best_step is not None:
                ax.axvline(
                    best_step,
                    color="black",
                    linestyle=":",
                    linewidth=1.0,
                    label=f"best PSNR, step {best_step:g}",
                )
                ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(label, fontsize=10)
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------------- helpers
def _figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI)


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _norm_channels(cyx: np.ndarray) -> np.ndarray:
    """Each channel ``(x − p0.1) / (p99.9 − p0.1)`` (unclipped; the display clips)."""
    x = np.asarray(cyx, dtype=np.float64)
    lo = np.percentile(x, DISPLAY_LOW, axis=(-2, -1), keepdims=True)
    hi = np.percentile(x, DISPLAY_HIGH, axis=(-2, -1), keepdims=True)
    return (x - lo) / np.maximum(hi - lo, 1e-20)


def _structure(normed_cyx: np.ndarray) -> np.ndarray:
    """Per-row structure: summed |∂/∂x| over channels and columns."""
    x = np.clip(np.asarray(normed_cyx, dtype=np.float64), 0.0, 1.0)
    if x.ndim == 2:
        x = x[None]
    return np.abs(np.diff(x, axis=-1)).sum(axis=(0, 2))


def _profile_span(normed_cyx: np.ndarray, row: int) -> tuple[int, int]:
    w = normed_cyx.shape[-1]
    if w <= PROFILE_MAX:
        return 0, w
    line = np.clip(normed_cyx[:, row, :], 0.0, 1.0)
    g = np.abs(np.diff(line, axis=-1)).sum(axis=0)
    window = np.convolve(g, np.ones(PROFILE_MAX - 1), mode="valid")
    x0 = int(np.argmax(window))
    return x0, x0 + PROFILE_MAX


def _profile_style(j: int, n_img: int) -> dict[str, Any]:
    if j == 0:
        return {"color": "#7f7f7f", "linestyle": "--", "linewidth": 1.0}
    if j == n_img - 1:
        return {"color": "black", "linestyle": "-", "linewidth": 1.4}
    return {"color": _method_color(j), "linestyle": "-", "linewidth": 1.0}


def _method_color(i: int) -> str:
    return _METHOD_COLORS[i % len(_METHOD_COLORS)]


def _darken(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    # pure green / white titles are unreadable on white: scale towards black
    r, g, b = rgb
    f = 0.6 if max(rgb) > 0 else 1.0
    return (r * f, g * f, b * f) if (r, g, b) != (1.0, 1.0, 1.0) else (0.2, 0.2, 0.2)


def _fmt(metric: str, v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if metric == "mse":
        return f"{v:.3g}"
    if metric == "psnr":
        return f"{v:.2f}"
    return f"{v:.4f}"


def _is_number(v: Any) -> bool:
    return (
        isinstance(v, int | float | np.number)
        and not isinstance(v, bool)
        and math.isfinite(float(v))
    )
