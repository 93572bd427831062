"""Table V: non-GEMM latency before (PyTorch eager) and after fusion (TorchInductor, TensorRT), the non-GEMM
fusion rate and the batch-norm tally, beside the paper's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench import names
from ngbench.analysis import fusion
from ngbench.figures import paper
from ngbench.figures import tables as table_files
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["table5"]
TITLE = "Table V: non-GEMM latency before/after fusion and the non-GEMM fusion rate"
NOTES = (
    "Before: PyTorch eager; after: the fused backend, same platform, model and batch; medians over measured "
    "iterations. fusion_rate = fused non-GEMM ops / the model's non-GEMM ops (ONNX export for TensorRT, "
    "post-grad graph for Inductor), chosen as the headline because its denominator does not depend on what a "
    "backend kept; the CSV holds all eight rates the original code printed, labelled, and the counts. "
    "fused_gemm_non_gemm_ms: time of kernels/layers that do GEMM and non-GEMM work together (not in "
    "non_gemm_ms_after). Batch norm: BN ops fused with a GEMM (Conv+BN+ReLU) / with non-GEMM ops / unfused. "
    "TensorRT's 'after' is the sum of per-layer times (layers synchronized one by one). The paper's columns: "
    "Table V, platform A (A100), PyTorch -> TensorRT; compare like with like."
)


def full(op_tables: Iterable[str | Path]) -> pd.DataFrame:
    """Every rate and count, one row per platform / model / batch / fused backend (``table5_all_rates.csv``)."""
    return fusion.table5(op_tables, SPEC.backends)


def table(everything: pd.DataFrame) -> pd.DataFrame:
    """The Markdown table's columns, from :func:`full`'s rows."""
    reference = paper.section("table5")["rows"]
    if everything.empty:
        return everything
    rows = []
    for r in everything.to_dict("records"):
        ref = reference.get(r["model"])
        row = {k: r.get(k) for k in ("platform", "model", "batch_size", "backend", "status")}
        if r["status"] != names.STATUS_OK:
            row["reason"] = r["reason"]
        else:
            row.update(
                fusion_rate_pct=round(r["fusion_rate"], 1),
                non_gemm_before=f"{r['non_gemm_ms_before']:.2f} ms ({r['non_gemm_pct_before']:.1f}%)",
                non_gemm_after=f"{r['non_gemm_ms_after']:.2f} ms ({r['non_gemm_pct_after']:.1f}%)",
                non_gemm_speedup=round(r["non_gemm_speedup"], 2),
                fused_gemm_non_gemm_ms=round(r["fused_gemm_non_gemm_ms_after"], 2),
                batch_norm_with_gemm_with_non_gemm_unfused=(
                    f"{int(r['batch_norm: fused_with_gemm'])}/{int(r['batch_norm: fused_with_non_gemm'])}/"
                    f"{int(r['batch_norm: not_fused'])}"
                ),
            )
        if ref:
            row["paper (rate; before -> after)"] = (
                f"{ref['fusion_rate_pct']}%; {ref['non_gemm_ms_before']} ms ({ref['non_gemm_pct_before']}%) -> "
                f"{ref['non_gemm_ms_after']} ms ({ref['non_gemm_pct_after']}%)"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: every rate (``full``) and the paper's table, from the runs' op tables."""
    everything = full(i["ops"])
    everything.to_csv(o["full"], index=False)
    table_files.write(table(everything), o["csv"], o["md"], TITLE, NOTES)
