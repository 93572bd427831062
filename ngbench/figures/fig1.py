"""fig1, the motivating figure: GEMM vs non-GEMM share of the measured iteration at batch 1 under PyTorch
eager, CPU-only and CPU+GPU."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench import names
from ngbench import taxonomy as tax
from ngbench.figures import comparison
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["fig1"]


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    taxonomy = tax.load()
    batch = shares["batch_size"].isin(SPEC.batch_sizes) if SPEC.batch_sizes else True
    data = comparison.select(shares[batch], models=models, backends=list(SPEC.backends), level="class")
    data.to_csv(csv, index=False)
    order = [tax.GEMM, names.NON_GEMM, tax.IDLE]
    comparison.plot(
        data,
        png,
        order=order,
        palette=taxonomy.class_palette,
        title="fig1: GEMM vs non-GEMM share of the measured iteration, batch 1, PyTorch eager",
    )
    return data
