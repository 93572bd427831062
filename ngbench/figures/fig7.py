"""fig7: PyTorch eager vs ONNX Runtime group shares on the language models, ORT with graph optimizations
off (ort) and on (ort-opt)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench import taxonomy as tax
from ngbench.figures import comparison
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["fig7"]


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    taxonomy = tax.load()
    data = comparison.select(shares, models=models, backends=list(SPEC.backends), level="group")
    data.to_csv(csv, index=False)
    comparison.plot(
        data,
        png,
        order=taxonomy.order,
        palette=taxonomy.palette,
        title="fig7: PyTorch eager vs ONNX Runtime (ort: graph optimizations off; ort-opt: ORT_ENABLE_ALL)",
    )
    return data
