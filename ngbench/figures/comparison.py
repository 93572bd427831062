"""Backend comparisons (fig1, fig7, fig8, fig9): one stacked bar per (model, batch, backend) per platform,
drawn from the runs' shares; every (platform, model, batch) lacking a backend gets a cell that says why."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench import names
from ngbench.figures import style

COLUMNS = [
    "platform",
    "device",
    "backend",
    "model",
    "batch_size",
    "seq_len",
    "layers",
    "full_depth",
    "weights",
    "status",
    "reason",
    "group",
    "ms_median",
    "pct_mean",
    "pct_median",
    "pct_p10",
    "pct_p90",
    "latency_ms_median",
    "iteration_ms_median",
    "profiler_overhead_ratio",
    "time_basis",
    "host_timed",
    "trust",
    "trust_reasons",
]


def select(shares: pd.DataFrame, *, models: list[str], backends: list[str], level: str) -> pd.DataFrame:
    """The rows of one level (group / class / fusion) of the given models and backends, failed runs kept,
    with a ``missing`` cell for each backend a (platform, model, batch) lacks."""
    df = shares[shares["model"].isin(models) & shares["backend"].isin(backends)]
    return complete_cells(df[(df["level"] == level) | (df["status"] != names.STATUS_OK)], backends)


def complete_cells(df: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """Add a ``missing`` row for every (platform, model, batch) that lacks one of ``backends`` (the reason
    says a GPU is needed where the backend cannot run on the platform), and order the bars by backend."""
    df = df.reindex(columns=COLUMNS)
    present = df.drop_duplicates(["platform", "device", "model", "batch_size"])
    have = set(zip(df["platform"], df["model"], df["batch_size"], df["backend"]))
    missing = [
        {
            "platform": c.platform,
            "device": c.device,
            "backend": b,
            "model": c.model,
            "batch_size": c.batch_size,
            "seq_len": c.seq_len,
            "layers": c.layers,
            "full_depth": c.full_depth,
            "status": names.STATUS_MISSING,
            "reason": (style.cpu_reason(b) if names.device_kind(c.device) == "cpu" else None) or f"{b} not run",
        }
        for c in present.itertuples()
        for b in backends
        if (c.platform, c.model, c.batch_size, b) not in have
    ]
    if missing:
        df = pd.concat([df, pd.DataFrame(missing)], ignore_index=True)
    df["backend"] = pd.Categorical(df["backend"], categories=backends, ordered=True)
    return df.sort_values(["device", "platform", "model", "batch_size", "backend"]).reset_index(drop=True)


def figure(
    figure: str, shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str], level: str, title: str
) -> pd.DataFrame:
    """A comparison figure from its spec: the rows of ``level`` (group: the taxonomy's groups; class: GEMM /
    non-GEMM / Idle; fusion: the four time classes) for the spec's backends and batch sizes."""
    from ngbench import taxonomy as tax
    from ngbench.analysis.classes import CLASSES
    from ngbench.figures.specs import FIGURES

    spec = FIGURES[figure]
    if spec.batch_sizes:
        shares = shares[shares["batch_size"].isin(spec.batch_sizes)]
    data = select(shares, models=models, backends=list(spec.backends), level=level)
    data.to_csv(csv, index=False)
    taxonomy = tax.load()
    order = {
        "group": taxonomy.order,
        "class": [tax.GEMM, names.NON_GEMM, tax.IDLE],
        "fusion": CLASSES,
    }[level]
    palette = taxonomy.palette if level == "group" else taxonomy.class_palette
    plot(data, png, order=order, palette=palette, title=title)
    return data


KEYS = ["model", "batch_size", "backend"]


def slots(rows: pd.DataFrame, kind: str) -> list[style.Slot]:
    """One bar per (model, batch, backend) of a platform's rows; a backend is the bar's series."""
    out = []
    for key, cell in rows.groupby(KEYS, observed=True):
        first = cell.iloc[0]
        ok = first["status"] == names.STATUS_OK
        reason = None if ok else style.missing_reason(first["status"], first["reason"])
        out.append(style.Slot(f"{style.bar_label(first)}\n{key[2]}", reason, str(key[2]), cell if ok else None))
    return out


def plot(data: pd.DataFrame, png: str | Path, *, order: list[str], palette: dict[str, str], title: str) -> None:
    """Draw :func:`select`'s table."""
    style.panel_grid(
        data,
        png,
        slots=slots,
        draw_slot=style.stacked_shares(order, palette),
        title=title,
        legend=style.legend_for(order, palette),
        ylabel="share of measured iteration (%, mean)",
        xlabel="model / batch size / backend",
    )
