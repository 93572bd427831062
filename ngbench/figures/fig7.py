"""fig7: PyTorch eager vs ONNX Runtime group shares on the language models, ORT with graph optimizations
off (ort) and on (ort-opt)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench.figures import comparison

TITLE = "fig7: PyTorch eager vs ONNX Runtime (ort: graph optimizations off; ort-opt: ORT_ENABLE_ALL)"


def plot(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    return comparison.figure("fig7", shares, png, csv, models=models, level="group", title=TITLE)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the runs' shares files."""
    from ngbench.analysis import shares

    plot(shares.read(i["shares"]), o["png"], o["csv"], models=p["models"])
