"""fig9: fp (torch) vs LLM.int8 (torch-int8) on the same checkpoint, per sequence length; and the summary
of what the paper reports about it (``fig9_summary.csv``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench import taxonomy as tax
from ngbench.analysis import quantization
from ngbench.figures import comparison, paper
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["fig9"]


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    taxonomy = tax.load()
    data = comparison.select(shares, models=models, backends=list(SPEC.backends), level="group")
    data.to_csv(csv, index=False)
    comparison.plot(
        data,
        png,
        order=taxonomy.order,
        palette=taxonomy.palette,
        title="fig9: fp (torch) vs LLM.int8 (torch-int8), same checkpoint, per sequence length",
    )
    return data


def summary(op_tables: Iterable[str | Path]) -> pd.DataFrame:
    ref = paper.section("fig9")
    return quantization.summary(op_tables, paper_claim=f"{ref['claim']} ({ref['source']})")
