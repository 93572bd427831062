"""fig10: the roofline of every op instance with a work model: arithmetic intensity (FLOP/byte) against the
bandwidth it achieved (GB/s), one panel per platform x backend, points coloured by operator group, the
platform's roofs drawn: the measured bandwidth curve's range (largest cache to DRAM) and the compute roof
(peak FLOP/s of the run's dtype divided by the intensity). Ops that compute nothing (views, copies,
gathers) have intensity 0 and sit at the left edge."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ngbench import taxonomy as tax
from ngbench.analysis import horizon as hz
from ngbench.figures import style

MIN_INTENSITY = 1e-3  # where intensity-0 ops are drawn
COLUMNS = ["platform", "backend", "model", "batch_size", "op", "group", "bound", "intensity", "achieved_gb_per_s",
           "time_us", "attainable_us", "efficiency", "bytes", "flops", "work_source", "dtype"]  # fmt: skip


def data(inst: pd.DataFrame) -> pd.DataFrame:
    df = inst.copy()
    df = df[(df["group"] != tax.IDLE) & df["bytes"].notna() & (df["time_us"] > 0)]
    df["intensity"] = (df["flops"].fillna(0) / df["bytes"]).where(df["bytes"] > 0, 0.0)
    df["achieved_gb_per_s"] = df["bytes"] / df["time_us"] / 1e3
    return df.reindex(columns=COLUMNS).sort_values(["platform", "backend", "model", "batch_size"])


TITLE = "fig10: roofline of every op instance (median over iterations)"


def plot(inst: pd.DataFrame, limits: dict[str, hz.Limits], png: str | Path, csv: str | Path) -> pd.DataFrame:
    taxonomy = tax.load()
    table = data(inst)
    table.to_csv(csv, index=False)
    sns.set_theme(style="whitegrid", font_scale=0.9)
    panels = sorted(table.groupby(["platform", "backend"]).groups) if len(table) else []
    if not panels:
        style.empty_figure(png, TITLE, ["no op with a work model in the runs drawn"])
        return table
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    height = 3.9 * nrow + 1.1
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, height), squeeze=False)
    palette = taxonomy.palette
    for ax, (platform, backend) in zip(axes.flat, panels):
        rows = table[(table["platform"] == platform) & (table["backend"] == backend)]
        x = rows["intensity"].clip(lower=MIN_INTENSITY)
        ax.scatter(x, rows["achieved_gb_per_s"], s=9, c=rows["group"].map(palette).fillna("#999999"), alpha=0.7,
                   linewidths=0)  # fmt: skip
        lim = limits.get(platform)
        if lim is not None:
            xs = np.logspace(-3, 4, 200)
            peak = lim.flops_per_us(str(rows["dtype"].mode().iloc[0])) or 0
            for gbps, label, ls in ((lim.bandwidth[-1][1] / 1e3, "DRAM", "-"),
                                    (max(b for _, b in lim.bandwidth) / 1e3, "best cache", ":")):  # fmt: skip
                roof = np.minimum(gbps, peak / xs / 1e3) if peak else np.full_like(xs, gbps)
                ax.plot(xs, roof, color="black", linestyle=ls, linewidth=1)
                ax.text(xs[0], gbps, f" {label} {gbps:.0f} GB/s", va="bottom", fontsize=7)
            ax.set_title(f"{platform} / {backend} ({lim.source.split(' (')[0]})", fontsize=9)
        else:
            ax.set_title(f"{platform} / {backend} (no roofs)", fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP/byte; 0 drawn at 1e-3)")
        ax.set_ylabel("achieved GB/s (bytes / measured time)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    present = [g for g in taxonomy.order if g in set(table["group"])]
    handles, labels = style.legend_for(present, palette)
    fig.suptitle(TITLE, y=1 - 0.05 / height, va="top",
                 fontsize=10)  # fmt: skip
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.3 / height),
               ncol=min(len(handles), 4 * ncol), frameon=False, fontsize=7)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / height))
    fig.savefig(png, dpi=style.DPI)
    plt.close(fig)
    return table


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw the horizon's op instances against the platforms' roofs."""
    from ngbench.figures import horizon

    plot(pd.read_parquet(i["instances"]), horizon.limits_by_platform(i["limits"]), o["png"], o["csv"])
