"""fig1, the motivating figure: GEMM vs non-GEMM share of the measured iteration at batch 1 under PyTorch
eager, CPU-only and CPU+GPU."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench.figures import comparison

TITLE = "fig1: GEMM vs non-GEMM share of the measured iteration, batch 1, PyTorch eager"


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    return comparison.figure("fig1", shares, png, csv, models=models, level="class", title=TITLE)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the runs' shares files."""
    from ngbench.analysis import shares

    plot(shares.read(i["shares"]), o["png"], o["csv"], models=p["models"])
