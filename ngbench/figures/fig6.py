"""fig6: per-model stacked group shares under PyTorch eager, CPU-only vs CPU+GPU panels, one row per
platform, one bar per model and batch size."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench import names
from ngbench import taxonomy as tax
from ngbench.figures import comparison, paper, style
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["fig6"]
# comparison's columns without backend (one backend) and with the share of op time (Table IV's denominator)
COLUMNS = [c for c in comparison.COLUMNS if c != "backend"] + ["pct_of_ops_median"]


def data(shares: pd.DataFrame, backend: str = SPEC.backends[0]) -> pd.DataFrame:
    """Long table behind fig6: one row per platform/model/batch/group, share of the measured iteration, with
    the paper's name of each group (``paper.yaml`` ``group_names``)."""
    df = shares[(shares["backend"] == backend) & ((shares["level"] == "group") | (shares["status"] != names.STATUS_OK))]
    df = df.reindex(columns=COLUMNS).sort_values(["device", "platform", "model", "batch_size"]).reset_index(drop=True)
    df.insert(df.columns.get_loc("group") + 1, "paper_group", df["group"].map(paper.section("group_names")))
    return df


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, backend: str = SPEC.backends[0]) -> pd.DataFrame:
    taxonomy = tax.load()
    table = data(shares, backend)
    table.to_csv(csv, index=False)
    keys = ["model", "batch_size"]

    def draw(ax, rows: pd.DataFrame, kind: str) -> list[str]:
        bars = []
        for bar in rows.drop_duplicates(keys).sort_values(keys).itertuples():
            cell = rows[(rows["model"] == bar.model) & (rows["batch_size"] == bar.batch_size)]
            bars.append((style.bar_label(bar), cell, bar.status, bar.reason))
        notes = style.draw_bars(ax, bars, taxonomy.order, taxonomy.palette)
        ax.set_xlabel("model / batch size")
        return notes

    style.panel_grid(
        table,
        png,
        draw,
        bars_per_panel=lambda rows: rows.drop_duplicates(keys).shape[0],
        title=f"fig6: operator-group share of the measured iteration, backend {backend}",
        legend=style.legend_for(taxonomy.order, taxonomy.palette),
        bar_width=0.62,
    )
    return table


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the runs' shares files."""
    from ngbench.analysis import shares

    plot(shares.read(i["shares"]), o["png"], o["csv"])
