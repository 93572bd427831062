"""fig9: fp (torch) vs LLM.int8 (torch-int8) on the same checkpoint, per sequence length; and the summary
of what the paper reports about it (``fig9_summary.csv``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench.analysis import quantization
from ngbench.figures import comparison, paper
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["fig9"]

TITLE = "fig9: fp (torch) vs LLM.int8 (torch-int8), same checkpoint, per sequence length"


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    return comparison.figure("fig9", shares, png, csv, models=models, level="group", title=TITLE)


def summary(op_tables: Iterable[str | Path]) -> pd.DataFrame:
    ref = paper.section("fig9")
    return quantization.summary(op_tables, SPEC.backends, paper_claim=f"{ref['claim']} ({ref['source']})")


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the runs' shares files; the summary from their op tables."""
    from ngbench.analysis import shares

    plot(shares.read(i["shares"]), o["png"], o["csv"], models=p["models"])
    summary(i["ops"]).to_csv(o["summary"], index=False)
