"""fig8, fusion: GEMM / fused GEMM+non-GEMM / non-GEMM / Idle under PyTorch eager, TorchInductor and
TensorRT (kernels that do GEMM and non-GEMM work together are their own class, never pure GEMM)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench import taxonomy as tax
from ngbench.analysis.classes import CLASSES
from ngbench.figures import comparison
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["fig8"]


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    taxonomy = tax.load()
    data = comparison.select(shares, models=models, backends=list(SPEC.backends), level="fusion")
    data.to_csv(csv, index=False)
    comparison.plot(
        data,
        png,
        order=CLASSES,
        palette=taxonomy.class_palette,
        title="fig8: operator fusion - PyTorch eager vs TorchInductor vs TensorRT (share of the measured iteration)",
    )
    return data
