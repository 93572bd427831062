"""How every figure looks: the palette (the taxonomy's groups and time classes), bar labels, hatched cells
with their reason, and the one panel grid (CPU-only | CPU+GPU columns, one row per platform)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ngbench import catalog, names

DEVICE_PANELS = {"cpu": "CPU-only", "cuda": "CPU+GPU"}
NO_GPU = "no GPU on this platform"
NO_CPU = "no CPU-only platform configured"
DISTURBED = "disturbed"  # a run judged disturbed after its retries (its shares' trust column says why)
HOST_TIMED = "host-timed"  # a GPU cell whose op times are host-side (see analysis.shares: host_timed)
REASON_CHARS = 40  # of a hatched bar's reason; the full reason is in the figure's note and its CSV


def bar_label(row) -> str:
    label = f"{row.model}\nbs{int(row.batch_size)}"
    if (
        row.layers is not None
        and row.full_depth is not None
        and row.layers == row.layers
        and row.layers != row.full_depth
    ):
        label += f"\n{int(row.layers)}/{int(row.full_depth)}L"
    if getattr(row, "trust", "") == DISTURBED:
        label += f"\n{DISTURBED}"
    host_timed = getattr(row, "host_timed", False)
    if isinstance(host_timed, bool | np.bool_) and host_timed:  # NaN for cells without a run
        label += f"\n{HOST_TIMED}"
    return label


def cpu_reason(backend: str) -> str | None:
    """Why a backend has no cell on a CPU-only platform (None: it runs there)."""
    entry = catalog.get(backend)
    return None if entry.runs_on("cpu") else f"{entry.label} needs a GPU"


def draw_bars(ax, bars: list[tuple[str, pd.DataFrame | None, str, str | None]], order, palette) -> list[str]:
    """Stacked 100% bars: (label, rows with ``group`` and ``pct_mean``, status, reason). A failed or missing
    bar is hatched and says why (shortened); returns the full reasons, for the figure's note."""
    notes = []
    for x, (label, cell, status, reason) in enumerate(bars):
        if status != names.STATUS_OK or cell is None:
            ax.bar(x, 100, color="white", edgecolor="#999999", hatch="//")
            shown = reason or "not run"
            if status in (names.STATUS_FAILED, names.STATUS_SKIPPED):
                shown = f"{status}: {shown}"
            short = shown if len(shown) <= REASON_CHARS else shown[: REASON_CHARS - 1] + "…"
            ax.text(x, 50, short.replace(": ", ":\n", 1), ha="center", va="center", rotation=90, fontsize=6)
            notes.append(f"{label.replace(chr(10), ' ')}: {shown}")
            continue
        cell = cell.set_index("group")
        bottom = 0.0
        for group in order:
            if group in cell.index:
                v = float(cell.loc[group, "pct_mean"])
                ax.bar(x, v, bottom=bottom, color=palette[group], edgecolor="white", linewidth=0.3)
                bottom += v
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of measured iteration time (%, mean)")
    return notes


def mark_missing(ax, reason: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#666666")
    for side in ax.spines.values():
        side.set_linestyle("--")


def empty_figure(png: str | Path, reason: str) -> None:
    """A figure with nothing to draw says why in one line."""
    fig, ax = plt.subplots(figsize=(6, 2))
    mark_missing(ax, reason)
    fig.savefig(png, dpi=130)
    plt.close(fig)


def panel_grid(
    data: pd.DataFrame,
    png: str | Path,
    draw: Callable[[object, pd.DataFrame, str], list[str]],
    *,
    bars_per_panel: Callable[[pd.DataFrame], int],
    title: str,
    legend: tuple[list, list[str]],
    bar_width: float = 0.7,
) -> None:
    """The paper's layout: a CPU-only and a CPU+GPU column, one row per platform of that kind. ``draw(ax,
    rows of one platform, device kind)`` fills a panel and returns notes (full reasons of hatched cells),
    printed under the figure. A column without platforms says why."""
    kinds = data["device"].map(names.device_kind) if len(data) else None
    platforms = {k: sorted(data.loc[kinds == k, "platform"].unique()) if len(data) else [] for k in DEVICE_PANELS}
    nrows = max(1, *(len(p) for p in platforms.values()))
    bars = [max([bars_per_panel(data[data["platform"] == p]) for p in platforms[k]] or [1]) for k in DEVICE_PANELS]
    # a panel's width follows its bars; a column without data stays narrow
    widths = [b if platforms[k] else max(3, 0.25 * sum(bars)) for b, k in zip(bars, DEVICE_PANELS)]
    sns.set_theme(style="whitegrid", font_scale=0.8)
    width_in, height_in = max(9, 2.0 + bar_width * sum(widths)), 4.7 * nrows
    fig, axes = plt.subplots(
        nrows,
        len(DEVICE_PANELS),
        figsize=(width_in, height_in),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    notes: list[str] = []
    for c, kind in enumerate(DEVICE_PANELS):
        for r in range(nrows):
            ax = axes[r][c]
            if r >= len(platforms[kind]):
                mark_missing(ax, NO_GPU if names.is_cuda(kind) else NO_CPU)
                ax.set_title(DEVICE_PANELS[kind])
                continue
            platform = platforms[kind][r]
            notes += [f"{platform}: {n}" for n in draw(ax, data[data["platform"] == platform], kind)]
            ax.set_title(f"{DEVICE_PANELS[kind]} - platform {platform}")
    handles, labels = legend
    # as many legend columns as the width holds (about 1.7 in each), the panels below the legend's rows
    ncol = max(1, min(len(handles), int(width_in // 1.7)))
    legend_rows = -(-len(handles) // ncol)
    top = 1.0 - (0.35 + 0.17 * legend_rows) / height_in
    fig.suptitle(title, y=1.0 - 0.05 / height_in, va="top", fontsize=10)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0 - 0.3 / height_in), ncol=ncol,
               frameon=False)  # fmt: skip
    bottom = 0.0
    if notes:  # the full reason of every hatched cell, under the panels
        text = "\n".join(dict.fromkeys(notes))
        fig.text(0.01, 0.005, text, ha="left", va="bottom", fontsize=6)
        bottom = min(0.5, (0.1 + 0.12 * len(dict.fromkeys(notes))) / height_in)
    fig.tight_layout(rect=(0, bottom, 1, top))
    fig.savefig(png, dpi=130)
    plt.close(fig)


def side_colors(n: int) -> list[str]:
    """Colours for n series that are no operator group (fig5's CPU and GPU sides): seaborn's colorblind set."""
    return list(sns.color_palette("colorblind", n).as_hex())


def legend_for(order: list[str], palette: dict[str, str]) -> tuple[list, list[str]]:
    return [plt.Rectangle((0, 0), 1, 1, color=palette[g]) for g in order], list(order)
