"""Tables as CSV (the data) and Markdown (title, table, notes on how to read it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write(df: pd.DataFrame, csv: str | Path, md: str | Path, title: str, notes: str) -> None:
    df.to_csv(csv, index=False)
    body = df.to_markdown(index=False) if not df.empty else "(no data)"
    Path(md).write_text(f"# {title}\n\n{body}\n\n{notes}\n")


def read(csv: str | Path) -> pd.DataFrame:
    """A table this workflow wrote; one without rows or columns (a figure with nothing to draw) is empty."""
    try:
        return pd.read_csv(csv)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
