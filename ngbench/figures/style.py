"""How every figure looks: the palette (the taxonomy's groups and time classes), bar labels, hatched cells
with their reason, and the one panel grid (CPU-only | CPU+GPU columns, one row per platform)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ngbench import catalog, names

DEVICE_PANELS = {"cpu": "CPU-only", "cuda": "CPU+GPU"}
NO_GPU = "no CUDA platform in this study"
NO_CPU = "no CPU-only platform in this study"
DISTURBED = "disturbed"  # a run judged disturbed after its retries (its shares' trust column says why)
HOST_TIMED = "host-timed"  # a GPU cell whose op times are host-side (see analysis.shares: host_timed)


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


@dataclass
class Slot:
    """One bar position of a panel: drawn from ``payload``, or missing for ``reason``. ``series`` (a backend,
    a counter side) lets a reason that holds for a whole series be said once instead of on each bar."""

    label: str
    reason: str | None = None  # None: drawn
    series: str | None = None
    payload: Any = None
    footnote: int = 0  # set by the layout: the number of its reason under the figure


@dataclass
class Panel:
    title: str
    slots: list[Slot]


@dataclass
class Layout:
    """What a figure shows: its panels (one row each, at most :data:`MAX_SLOTS` bars wide) and the lines under
    it: facts said once (a panel or series with nothing to draw, a column without platforms) and the
    numbered reasons of the hatched slots."""

    panels: list[Panel]
    said_once: list[str]
    footnotes: list[str]


MAX_SLOTS = 18  # bars per row: a wider panel wraps into more rows
MIN_SLOTS = 6
MISSING_WIDTH = 0.35  # a hatched slot, relative to a drawn bar


def _count(n: int) -> str:
    return f"{n} cell{'s' if n != 1 else ''}"


def _say_once(slots: list[Slot]) -> tuple[list[Slot], list[str]]:
    """Drop the missing slots whose reason holds for the whole panel or for a whole series, and say each such
    fact in one line."""
    missing = [s for s in slots if s.reason is not None]
    if missing and len(missing) == len(slots) and len({s.reason for s in missing}) == 1:
        return [], [f"{missing[0].reason} (all {_count(len(missing))})"]
    lines, dropped = [], set()
    for series in dict.fromkeys(s.series for s in slots if s.series is not None):
        mine = [s for s in slots if s.series == series]
        reasons = {s.reason for s in mine}
        if len(mine) > 1 and len(reasons) == 1 and None not in reasons:
            lines.append(f"{series}: {mine[0].reason} ({_count(len(mine))}, not drawn)")
            dropped |= {id(s) for s in mine}
    return [s for s in slots if id(s) not in dropped], lines


def layout(
    data: pd.DataFrame, slots: Callable[[pd.DataFrame, str], list[Slot]], *, max_slots: int = MAX_SLOTS
) -> Layout:
    """The panels of a figure: per device column (CPU-only, CPU+GPU) and platform, the slots ``slots(rows of
    the platform, device kind)`` gives, after the facts said once; wide panels wrap into rows."""
    kinds = data["device"].map(names.device_kind) if len(data) else pd.Series(dtype=str)
    platforms = {k: sorted(data.loc[kinds == k, "platform"].unique()) if len(data) else [] for k in DEVICE_PANELS}
    panels: list[Panel] = []
    said: list[str] = []
    for kind, column in DEVICE_PANELS.items():
        if not platforms[kind]:
            said.append(f"{column}: {NO_GPU if names.is_cuda(kind) else NO_CPU}")
            continue
        for platform in platforms[kind]:
            header = f"{column} - platform {platform}"
            kept, lines = _say_once(slots(data[data["platform"] == platform], kind))
            said += [f"{header}: {line}" for line in lines]
            rows = -(-len(kept) // max_slots)  # as few rows as fit, the bars shared out evenly among them
            size = -(-len(kept) // rows) if rows else 0
            chunks = [kept[i : i + size] for i in range(0, len(kept), size)] if size else []
            for n, chunk in enumerate(chunks, 1):
                panels.append(Panel(header + (f" ({n}/{len(chunks)})" if len(chunks) > 1 else ""), chunk))
    reasons: dict[str, list[str]] = {}
    for panel in panels:
        for s in panel.slots:
            if s.reason is not None:
                reasons.setdefault(s.reason, []).append(s.label.replace("\n", " "))
                s.footnote = list(reasons).index(s.reason) + 1
    footnotes = [
        f"[{n}] {', '.join(cells[:6])}{f' and {len(cells) - 6} more' if len(cells) > 6 else ''}: {reason}"
        for n, (reason, cells) in enumerate(reasons.items(), 1)
    ]
    return Layout(panels, said, footnotes)


def panel_grid(
    data: pd.DataFrame,
    png: str | Path,
    *,
    slots: Callable[[pd.DataFrame, str], list[Slot]],
    draw_slot: Callable[[Any, float, float, Slot], None],
    title: str,
    legend: tuple[list, list[str]],
    ylabel: str,
    xlabel: str,
    ylim: Callable[[list[Slot]], tuple[float, float]] = lambda slots: (0.0, 100.0),
) -> Layout:
    """Draw a figure's :func:`layout`: one panel per row, bars left-aligned at one width in every row (so rows
    compare), hatched narrow slots for missing cells with the number of their reason, and under the panels
    each fact said once and each numbered reason. A figure with no panel at all is one line of why."""
    plan = layout(data, slots)
    if not plan.panels:
        empty_figure(png, title, plan.said_once)
        return plan
    sns.set_theme(style="whitegrid", font_scale=0.9)
    widest = max(sum(1.0 if s.reason is None else MISSING_WIDTH for s in p.slots) for p in plan.panels)
    width_in = max(8.0, 1.6 + SLOT_INCHES * widest)
    notes = wrap(plan.said_once + plan.footnotes, width_in, NOTE_POINTS)
    title = "\n".join(wrap([title], width_in, TITLE_POINTS))
    notes_in = 0.19 * len(notes) + (0.12 if notes else 0.0)
    title_in = 0.25 * title.count("\n")
    handles, labels = legend
    ncol = max(1, min(len(handles), int(width_in // 1.6)))
    legend_in = 0.23 * -(-len(handles) // ncol)
    height_in = 0.55 + title_in + legend_in + PANEL_INCHES * len(plan.panels) + notes_in
    fig, axes = plt.subplots(len(plan.panels), 1, figsize=(width_in, height_in), squeeze=False)
    for ax, panel in zip(axes[:, 0], plan.panels):
        _draw_panel(ax, panel, draw_slot, ylim(panel.slots), widest)
        ax.set_ylabel(ylabel)
    axes[-1, 0].set_xlabel(xlabel)
    top = 1.0 - (0.35 + title_in + legend_in) / height_in
    fig.suptitle(title, y=1.0 - 0.06 / height_in, va="top", fontsize=TITLE_POINTS)
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0 - (0.36 + title_in) / height_in),
                   ncol=ncol, frameon=False, fontsize=9)  # fmt: skip
    if notes:
        fig.text(0.01, 0.01, "\n".join(notes), ha="left", va="bottom", fontsize=NOTE_POINTS)
    fig.tight_layout(rect=(0, notes_in / height_in, 1, top))
    fig.savefig(png, dpi=DPI)
    plt.close(fig)
    return plan


SLOT_INCHES = 0.72  # a drawn bar's slot: room for its label at 8 pt
TITLE_POINTS, NOTE_POINTS = 11.0, 8.5


def wrap(lines: list[str], width_in: float, points: float) -> list[str]:
    """``lines`` wrapped to a figure ``width_in`` wide at ``points`` (a character is about 0.55 em wide),
    continuation lines indented."""
    chars = max(40, int((width_in - 0.3) * 72 / (0.55 * points)))
    return [part for line in lines for part in textwrap.wrap(line, chars, subsequent_indent="    ") or [""]]


PANEL_INCHES = 3.4
DPI = 110  # text of 8 pt is 12 px high at 100%


def _draw_panel(ax, panel: Panel, draw_slot, ylim: tuple[float, float], widest: float) -> None:
    x, ticks, labels = 0.0, [], []
    for s in panel.slots:
        width = 1.0 if s.reason is None else MISSING_WIDTH
        center = x + width / 2
        if s.reason is None:
            draw_slot(ax, center, 0.8 * width, s)
            labels.append(s.label)
        else:
            ax.bar(center, ylim[1] - ylim[0], bottom=ylim[0], width=0.8 * width, color="white", edgecolor="#999999",
                   hatch="//", linewidth=0.6)  # fmt: skip
            labels.append(f"[{s.footnote}]")
        ticks.append(center)
        x += width
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_xlim(-0.1, max(widest, x, MIN_SLOTS) + 0.1)  # a bar is never wider than in a panel of MIN_SLOTS
    ax.set_ylim(*ylim)
    ax.set_title(panel.title, fontsize=10)


def stacked_shares(order: list[str], palette: dict[str, str]) -> Callable[[Any, float, float, Slot], None]:
    """A drawer of 100% stacked bars: a slot's payload holds ``group`` and ``pct_mean`` rows."""

    def draw(ax, x: float, width: float, slot: Slot) -> None:
        cell = slot.payload.set_index("group")
        bottom = 0.0
        for group in order:
            if group in cell.index:
                v = float(cell.loc[group, "pct_mean"])
                ax.bar(x, v, bottom=bottom, width=width, color=palette[group], edgecolor="white", linewidth=0.3)
                bottom += v

    return draw


def missing_reason(status: str, reason: str | None) -> str:
    shown = reason or "not run"
    return f"{status}: {shown}" if status in (names.STATUS_FAILED, names.STATUS_SKIPPED) else shown


def empty_figure(png: str | Path, title: str, lines: list[str] | None = None) -> None:
    """A figure with nothing to draw: its title and why, one line per fact."""
    width_in = 9.0
    text = wrap(lines or ["no data"], width_in, NOTE_POINTS + 0.5)
    heading = wrap([f"{title}: nothing to draw"], width_in, TITLE_POINTS)
    height_in = 0.45 + 0.25 * len(heading) + 0.2 * len(text)
    fig = plt.figure(figsize=(width_in, height_in))
    fig.text(0.02, 1 - 0.15 / height_in, "\n".join(heading), fontsize=TITLE_POINTS, va="top")
    fig.text(0.02, 0.12 / height_in, "\n".join(text), fontsize=NOTE_POINTS + 0.5, va="bottom", color="#444444")
    fig.savefig(png, dpi=DPI)
    plt.close(fig)


def side_colors(n: int) -> list[str]:
    """Colours for n series that are no operator group (fig5's CPU and GPU sides): seaborn's colorblind set."""
    return list(sns.color_palette("colorblind", n).as_hex())


def legend_for(order: list[str], palette: dict[str, str]) -> tuple[list, list[str]]:
    return [plt.Rectangle((0, 0), 1, 1, color=palette[g]) for g in order], list(order)
