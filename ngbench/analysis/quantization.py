"""What the paper reports about LLM.int8, from our runs: the non-GEMM share fp vs int8 per sequence length,
GEMM and non-GEMM latency change, Quantization time, extra non-GEMM operator instances per forward."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench import catalog, names
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.analysis.classes import class_times


def summary(op_tables: Iterable[str | Path], compared: Iterable[str], paper_claim: str = "") -> pd.DataFrame:
    """One row per (platform, model, batch): the catalog's baseline (fp) vs the quantized backend among
    ``compared`` (int8), medians over iterations."""
    taxonomy = tax.load()
    fp_backend = catalog.BASELINE
    int8_backend = next(b for b in compared if catalog.get(b).quantized)
    rows = []
    for (platform, model, bs), backends in sorted(optable.read_runs(op_tables).items(), key=lambda kv: str(kv[0])):
        fp, q = backends.get(fp_backend), backends.get(int8_backend)
        row = {"platform": platform, "model": model, "batch_size": bs}
        problems = [
            f"{b}: {(r[1].get('reason') if r else 'not run')}"
            for b, r in ((fp_backend, fp), (int8_backend, q))
            if r is None or r[1].get("status") != names.STATUS_OK
        ]
        if problems:
            rows.append({**row, "status": names.STATUS_MISSING, "reason": "; ".join(problems)})
            continue
        row.update(seq_len=fp[1].get("seq_len"), status=names.STATUS_OK)
        for name, (df, _) in (("fp", fp), ("int8", q)):
            ms = class_times(df, taxonomy).median()
            gemm, non_gemm = ms[tax.GEMM] + ms[names.FUSED_MIXED], ms[names.NON_GEMM]
            ops = df[~df["group"].map(taxonomy.is_overhead)]
            per_iter = ops.groupby("iteration")
            row[f"{name}_gemm_ms"] = gemm
            row[f"{name}_non_gemm_ms"] = non_gemm
            row[f"{name}_quantization_ms"] = (
                ops[ops["group"] == tax.QUANTIZATION]
                .groupby("iteration")["time_us"]
                .sum()
                .reindex(per_iter.size().index, fill_value=0.0)
                .median()
                / 1e3
            )
            row[f"{name}_non_gemm_pct_of_ops"] = 100.0 * non_gemm / (gemm + non_gemm) if gemm + non_gemm else None
            row[f"{name}_non_gemm_instances"] = float((~ops["is_gemm"]).groupby(ops["iteration"]).sum().median())
        row["gemm_latency_change"] = row["int8_gemm_ms"] / row["fp_gemm_ms"]
        row["non_gemm_latency_change"] = row["int8_non_gemm_ms"] / row["fp_non_gemm_ms"]
        row["extra_non_gemm_instances_per_forward"] = row["int8_non_gemm_instances"] - row["fp_non_gemm_instances"]
        if paper_claim:
            row["paper"] = paper_claim
        rows.append(row)
    return pd.DataFrame(rows)
