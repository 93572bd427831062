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

    def slots(rows: pd.DataFrame, kind: str) -> list[style.Slot]:
        out = []
        for bar in rows.drop_duplicates(keys).sort_values(keys).itertuples():
            cell = rows[(rows["model"] == bar.model) & (rows["batch_size"] == bar.batch_size)]
            ok = bar.status == names.STATUS_OK
            out.append(style.Slot(style.bar_label(bar), None if ok else style.missing_reason(bar.status, bar.reason),
                                  payload=cell))  # fmt: skip
        return out

    style.panel_grid(
        table,
        png,
        slots=slots,
        draw_slot=style.stacked_shares(taxonomy.order, taxonomy.palette),
        title=f"fig6: operator-group share of the measured iteration, backend {backend}",
        legend=style.legend_for(taxonomy.order, taxonomy.palette),
        ylabel="share of measured iteration (%, mean)",
        xlabel="model / batch size",
    )
    return table


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the runs' shares files."""
    from ngbench.analysis import shares

    plot(shares.read(i["shares"]), o["png"], o["csv"])
