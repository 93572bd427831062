"""fig8, fusion: GEMM / fused GEMM+non-GEMM / non-GEMM / Idle under PyTorch eager, TorchInductor and
TensorRT (kernels that do GEMM and non-GEMM work together are their own class, never pure GEMM)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench.figures import comparison

TITLE = "fig8: operator fusion - PyTorch eager vs TorchInductor vs TensorRT (share of the measured iteration)"


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    return comparison.figure("fig8", shares, png, csv, models=models, level="fusion", title=TITLE)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the runs' shares files."""
    from ngbench.analysis import shares

    plot(shares.read(i["shares"]), o["png"], o["csv"], models=p["models"])
