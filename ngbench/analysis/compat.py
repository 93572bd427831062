"""One run's shares under the original study's metric (``compat``), beside ours: written by the normalize job
next to the run's shares (``results/shares/.../bs{bs}.compat.parquet``); empty for runs whose traces are not
PyTorch profiler traces (the original's ORT and TensorRT flows measured differently)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench import catalog, names
from ngbench import taxonomy as tax

COLUMNS = ["platform", "device", "backend", "model", "batch_size", "status", "level", "group", "name", "pct",
           "latency_us"]  # fmt: skip
TOP_OPS = 5  # per group, the op names with the most latency (for the scorecard's drill-down)


def run_frame(trace_dir: str | Path, meta: dict) -> pd.DataFrame:
    """Level ``class`` (GEMM, non-GEMM of the original's Fig 6 denominator), ``group`` (its group names) and
    ``op`` (each group's largest op names) rows of one run."""
    from ngbench.traces import compat

    backend = meta.get("backend")
    traces = sorted(Path(trace_dir).glob(names.KINETO_TRACE_GLOB))
    usable = meta.get("status") == names.STATUS_OK and backend in catalog.BACKENDS and traces
    if not usable or catalog.get(backend).trace_format != "kineto":
        return pd.DataFrame(columns=COLUMNS)
    ops, view = compat.shares(traces)
    pct = view[(view["view"] == "pct") & view["pct"].notna()]
    total = float(pct["latency_us"].sum())
    gemm = float(pct.loc[pct["group"] == "gemm", "pct"].sum())
    base = {k: meta.get(k) for k in ("platform", "device", "backend", "model", "batch_size")}
    base["status"] = names.STATUS_OK
    rows = [{**base, "level": "class", "group": tax.GEMM, "pct": gemm},
            {**base, "level": "class", "group": names.NON_GEMM, "pct": 100.0 - gemm}]  # fmt: skip
    rows += [{**base, "level": "group", "group": r.group, "pct": r.pct, "latency_us": r.latency_us}
             for r in pct.itertuples() if r.group != "gemm"]  # fmt: skip
    grouped = ops[ops["group"].notna() & (ops["class"] == compat.NON_GEMM)]
    for group, sub in grouped.groupby("group"):
        for r in sub.nlargest(TOP_OPS, "latency_us").itertuples():
            rows.append({**base, "level": "op", "group": group, "name": r.name, "latency_us": r.latency_us,
                         "pct": 100.0 * r.latency_us / total if total else None})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def write_run(trace_dir: str | Path, meta: dict, out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    run_frame(trace_dir, meta).to_parquet(out, index=False)


def read(paths) -> pd.DataFrame:
    """The compat rows of several runs (runs without any, e.g. ORT's, add nothing)."""
    frames = [f for f in (pd.read_parquet(p) for p in paths) if len(f)]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    return df.astype({"pct": "float64", "latency_us": "float64", "batch_size": "int64"})
