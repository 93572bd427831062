"""Group shares of one run (``results/shares/{platform}/{backend}/{model}/bs{bs}.parquet``), and the union
of runs (``results/shares.parquet``, a convenience for users; figures read only the runs they draw).

Per measured iteration, each group's time is summed; shares are per-iteration fractions of the measured
iteration time (``pct``, Idle included, so the groups of an iteration add to 100) and of the attributed op
time (``pct_of_ops``, Idle excluded: the paper's view). Spread over iterations: median, p10, p90; the mean
share is kept too because means, unlike medians, add up to 100 across groups (stacked bars use it).
Rows with ``level == "class"`` hold GEMM / non-GEMM / Idle totals (class Idle: the Idle group plus groups
of framework work that is no operator, such as Runtime: TorchDynamo guard checks); rows with
``level == "fusion"`` split GEMM into pure GEMM and fused GEMM+non-GEMM work (:mod:`ngbench.analysis.classes`).
Failed runs appear as one row with ``status == "failed"`` and the reason, so figures can mark the cell.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench import names
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.analysis.classes import class_times

KEYS = ["platform", "device", "backend", "model", "batch_size", "seq_len"]
UNKNOWN_COLUMNS = ["backend", "op", "module_type", "instances", "time_us", "models"]


def _q(s: pd.Series, q: float) -> float:
    return float(s.quantile(q)) if len(s) else float("nan")


def _run_info(meta: dict) -> dict:
    run = meta.get("run") or {}
    prov = meta.get("model_provenance") or {}
    return {
        "status": meta.get("status", "ok"),
        "reason": meta.get("reason") or "",
        "layers": prov.get("layers"),
        "full_depth": prov.get("full_depth"),
        "weights": prov.get("weights", ""),
        "latency_ms_median": (run.get("latency") or {}).get("median_ms"),
        "profiler_overhead_ratio": run.get("profiler_overhead_ratio"),
        # what each cell's times are; host_timed: a GPU run whose op times are host-side (ORT's stock CUDA
        # provider profiles no kernels), so never to be read as device busy time beside other backends
        "time_basis": (meta.get("normalize") or {}).get("time_basis", ""),
        # judged against config trust: bounds (ngbench.jobs.trust); disturbed runs are kept and marked
        "trust": (meta.get("trust") or {}).get("status", ""),
        "trust_reasons": "; ".join((meta.get("trust") or {}).get("reasons", [])),
        "host_timed": bool((meta.get("normalize") or {}).get("host_timed_on_device", False)),
    }


def shares_of(df: pd.DataFrame, meta: dict, taxonomy: tax.Taxonomy | None = None) -> pd.DataFrame:
    taxonomy = taxonomy or tax.load()
    info = _run_info(meta)
    if df.empty:
        row = {k: meta.get(k) for k in KEYS}
        row["device"] = row.get("device") or meta.get("device", "")
        row.update(info, level="group", group=None, iterations=0)
        return pd.DataFrame([row])
    per_iter = df.groupby(KEYS + ["iteration", "group"], dropna=False)["time_us"].sum().unstack("group", fill_value=0.0)
    iter_time = df.groupby(KEYS + ["iteration"], dropna=False)["iteration_time_us"].first()
    overhead_cols = [g for g in per_iter.columns if taxonomy.is_overhead(g)]
    # class times per iteration (us), aligned to the group table's index (one run: KEYS are constant)
    fusion = class_times(df, taxonomy).mul(1e3).reindex(per_iter.index.get_level_values("iteration"))
    fusion.index = per_iter.index
    classes = pd.DataFrame(
        {
            tax.GEMM: fusion[tax.GEMM] + fusion[names.FUSED_MIXED],
            names.NON_GEMM: fusion[names.NON_GEMM],
            tax.IDLE: fusion[tax.IDLE],  # idle + framework runtime: no operator work
        }
    )
    out = []
    for level, frame in (("group", per_iter), ("class", classes), ("fusion", fusion)):
        total = iter_time.reindex(frame.index)
        ops_total = total - per_iter[overhead_cols].sum(axis=1)
        for name in frame.columns:
            t = frame[name]
            pct = t / total * 100.0
            no_op = taxonomy.is_overhead(name)
            pct_ops = pd.Series(float("nan"), index=t.index) if no_op else t / ops_total * 100.0
            for key, sub in t.groupby(level=KEYS, dropna=False):
                idx = sub.index
                row = dict(zip(KEYS, key))
                row.update(info)
                row.update(
                    level=level,
                    group=name,
                    is_gemm=taxonomy.is_gemm(name) if level == "group" else name == tax.GEMM,
                    iterations=len(sub),
                    ms_median=_q(sub, 0.5) / 1e3,
                    ms_p10=_q(sub, 0.1) / 1e3,
                    ms_p90=_q(sub, 0.9) / 1e3,
                    pct_mean=float(pct.loc[idx].mean()),  # means of per-iteration shares add to 100
                    pct_median=_q(pct.loc[idx], 0.5),
                    pct_p10=_q(pct.loc[idx], 0.1),
                    pct_p90=_q(pct.loc[idx], 0.9),
                    pct_of_ops_median=_q(pct_ops.loc[idx], 0.5),
                    iteration_ms_median=_q(total.loc[idx], 0.5) / 1e3,
                )
                out.append(row)
    return pd.DataFrame(out)


def unknown_of(df: pd.DataFrame) -> pd.DataFrame:
    """Operators of one op table that the taxonomy does not know (group Other), with their time."""
    other = df[df["group"] == tax.OTHER]
    if other.empty:
        return pd.DataFrame(columns=UNKNOWN_COLUMNS)
    return (
        other.groupby(["backend", "op", "module_type"], dropna=False)
        .agg(instances=("op", "size"), time_us=("time_us", "sum"), models=("model", lambda s: ",".join(sorted(set(s)))))
        .reset_index()
    )


def of_run(op_table: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(shares, unknown ops) of one run's op table."""
    df = optable.read(op_table)
    return shares_of(df, optable.read_run_metadata(op_table)), unknown_of(df)


def write_run(op_table: str | Path, shares_out: str | Path, unknown_out: str | Path) -> None:
    """The per-run files: ``shares_out`` (parquet) and ``unknown_out`` (CSV)."""
    shares_df, unknown_df = of_run(op_table)
    Path(shares_out).parent.mkdir(parents=True, exist_ok=True)
    shares_df.to_parquet(shares_out, index=False)
    unknown_df.to_csv(unknown_out, index=False)


def read(shares_files: Iterable[str | Path]) -> pd.DataFrame:
    """The shares of the given runs, one frame."""
    return read_frames([pd.read_parquet(p) for p in shares_files])


def merge_unknown(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Unknown ops of several runs: instances and time summed per (backend, op, module), models joined."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=UNKNOWN_COLUMNS)
    return (
        pd.concat(frames, ignore_index=True)
        .fillna({"module_type": ""})
        .groupby(["backend", "op", "module_type"], dropna=False)
        .agg(
            instances=("instances", "sum"),
            time_us=("time_us", "sum"),
            models=("models", lambda s: ",".join(sorted(set(",".join(s).split(","))))),
        )
        .reset_index()
        .sort_values("time_us", ascending=False)
    )


def aggregate(op_tables: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(shares, unknown ops) over every op table given (``ngbench shares``)."""
    runs = [of_run(p) for p in op_tables]
    return read_frames([r[0] for r in runs]), merge_unknown(r[1] for r in runs)


def read_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*KEYS, "status", "reason", "level", "group"])
    )


def write_union(
    shares_files: Iterable[str | Path],
    unknown_files: Iterable[str | Path],
    shares_out: str | Path,
    unknown_out: str | Path,
    failures_out: str | Path,
    trust_out: str | Path,
) -> None:
    """``results/shares.parquet``, ``results/unknown_ops.csv``, ``results/failures.csv`` and
    ``results/trust.csv`` from the per-run files."""
    from ngbench.analysis import failures

    Path(shares_out).parent.mkdir(parents=True, exist_ok=True)
    union = read(shares_files)
    union.to_parquet(shares_out, index=False)
    merge_unknown(pd.read_csv(p, keep_default_na=False) for p in unknown_files).to_csv(unknown_out, index=False)
    failures.from_shares(union).to_csv(failures_out, index=False)
    failures.untrusted(union).to_csv(trust_out, index=False)


def format_table(shares_df: pd.DataFrame) -> str:
    """Human-readable group shares (for ``python -m ngbench shares``)."""
    taxonomy = tax.load()
    df = shares_df[shares_df["level"] == "group"].copy()
    if df.empty:
        return "(no data)"
    order = {g: i for i, g in enumerate(taxonomy.order)}
    df["_o"] = df["group"].map(order)
    lines = []
    for key, sub in df.sort_values("_o").groupby(["platform", "backend", "model", "batch_size"], sort=True):
        lat = sub["latency_ms_median"].iloc[0]
        head = f"{key[0]} / {key[1]} / {key[2]} / bs{key[3]}"
        head += f"  (iteration {sub['iteration_ms_median'].iloc[0]:.2f} ms profiled"
        head += f", {lat:.2f} ms unprofiled)" if lat == lat and lat is not None else ")"
        lines.append(head)
        lines.append(f"  {'group':<14}{'ms':>10}{'%':>8}{'p10-p90 %':>16}")
        for r in sub.itertuples():
            lines.append(f"  {r.group:<14}{r.ms_median:>10.3f}{r.pct_median:>8.1f}{r.pct_p10:>8.1f}-{r.pct_p90:<7.1f}")
        cls = shares_df[(shares_df["level"] == "class")]
        for col, val in zip(["platform", "backend", "model", "batch_size"], key):
            cls = cls[cls[col] == val]
        lines.append("  " + ", ".join(f"{r.group} {r.pct_median:.1f}%" for r in cls.itertuples()))
    return "\n".join(lines)
