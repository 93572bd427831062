"""Does fusion remove the non-GEMM bottleneck? Table V and Fig 8 from the op tables of a fused backend
(TorchInductor, TensorRT) next to PyTorch eager on the same platform, model and batch.

Constituents: every op a fused row replaced (its ``fused_ops``); a row without ``fused_ops`` is one
constituent, itself. A constituent is GEMM when its op is a GEMM op. A non-GEMM constituent is *fused*
when its row holds at least one other constituent: *with GEMM* if one of them is GEMM (Conv+BN+ReLU),
else *with non-GEMM* (LayerNorm+Add). Time classes per iteration: GEMM rows without fused non-GEMM work,
``fused GEMM+non-GEMM`` (GEMM rows that also do non-GEMM work: epilogues, Myelin regions; never silently
pure GEMM), non-GEMM rows, and Idle (idle, session overhead, framework runtime).

The original study printed eight fusion rates without saying which Table V shows. All eight are here,
labelled; the headline is ``fused / original non-GEMM``: its denominator is the model's own non-GEMM op
count (the ONNX export for TensorRT, the post-grad graph for Inductor), which does not depend on what a
backend kept, so the rate compares across backends and models.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench import catalog
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.analysis.classes import class_times, constituent_kind, is_gemm_op
from ngbench.names import FUSED_MIXED, NON_GEMM

HEADLINE = "fused / original non-GEMM"
BATCH_NORM_OPS = {
    "BatchNormalization",
    "aten::_native_batch_norm_legit_no_training",
    "aten::native_batch_norm",
    "aten::batch_norm",
    "aten::_native_batch_norm_legit",
    "aten::cudnn_batch_norm",
}
BATCH_NORM_MODULES = {
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "FrozenBatchNorm2d",
    "DetrFrozenBatchNorm2d",
}


def constituents(df: pd.DataFrame, taxonomy: tax.Taxonomy | None = None) -> pd.DataFrame:
    """One row per constituent of the first iteration's rows: op, module class, gemm, row size, fused with."""
    taxonomy = taxonomy or tax.load()
    if df.empty:
        return pd.DataFrame(columns=["op", "module", "module_type", "gemm", "fused", "with_gemm"])
    kind = constituent_kind(str(df["backend"].iloc[0]))
    first = df[(df["iteration"] == df["iteration"].min()) & ~df["group"].map(taxonomy.is_overhead)]
    rows = []
    for r in first.itertuples():
        parts = [optable.parse_fused(f) for f in r.fused_ops] or [
            optable.FusedOp(r.op, r.node, r.module, r.module_type)
        ]
        # a GEMM op is GEMM work only in a row that is GEMM: in Inductor's layout-copy kernels
        # (cpp_fused_convolution_*) the convolution node names the copy, not a matmul
        gemm = [bool(r.is_gemm) and is_gemm_op(p.op, taxonomy, kind) for p in parts]
        for p, g in zip(parts, gemm):
            rows.append(
                {
                    "op": p.op,
                    "module": p.module,
                    "module_type": p.module_type,
                    "gemm": g,
                    "fused": len(parts) > 1,
                    "with_gemm": any(gemm) and not g,
                }
            )
    return pd.DataFrame(rows)


def fusion_rates(df: pd.DataFrame, original_ops: dict[str, int] | None, taxonomy: tax.Taxonomy | None = None) -> dict:
    """The eight fusion rates (labelled) and the counts behind them."""
    taxonomy = taxonomy or tax.load()
    kind = constituent_kind(str(df["backend"].iloc[0])) if len(df) else "torch"
    c = constituents(df, taxonomy)
    ng = c[~c["gemm"]] if len(c) else c
    fused = int(ng["fused"].sum()) if len(ng) else 0
    with_gemm = int((ng["fused"] & ng["with_gemm"]).sum()) if len(ng) else 0
    with_ng = fused - with_gemm
    kept_ng = len(ng)
    orig_ng = sum(n for op, n in original_ops.items() if not is_gemm_op(op, taxonomy, kind)) if original_ops else None

    def ratio(a, b):
        return 100.0 * a / b if b else float("nan")

    rates = {
        "fused / kept non-GEMM": ratio(fused, kept_ng),
        "fused with GEMM / kept non-GEMM": ratio(with_gemm, kept_ng),
        "fused with non-GEMM / kept non-GEMM": ratio(with_ng, kept_ng),
        HEADLINE: ratio(fused, orig_ng),
        "fused with GEMM / original non-GEMM": ratio(with_gemm, orig_ng),
        "fused with non-GEMM / original non-GEMM": ratio(with_ng, orig_ng),
        "with GEMM / fused": ratio(with_gemm, fused),
        "with non-GEMM / fused": ratio(with_ng, fused),
    }
    return {
        "rates": rates,
        "counts": {
            "non_gemm_kept": kept_ng,
            "non_gemm_original": orig_ng,
            "fused": fused,
            "fused_with_gemm": with_gemm,
            "fused_with_non_gemm": with_ng,
        },
        "batch_norm": batch_norm_tally(ng),
    }


def batch_norm_tally(non_gemm: pd.DataFrame) -> dict[str, int]:
    """Batch-norm operators (one per BN module where modules are known, else one per BN op) fused with a
    GEMM, fused with non-GEMM ops only, or not fused. A BN module that Inductor splits over several kernels
    counts as fused with GEMM if any piece is."""
    if non_gemm.empty:
        return {"ops": 0, "fused_with_gemm": 0, "fused_with_non_gemm": 0, "not_fused": 0}
    bn = non_gemm[non_gemm["op"].isin(BATCH_NORM_OPS) | non_gemm["module_type"].isin(BATCH_NORM_MODULES)]
    per_op = [(bool(r.fused), bool(r.with_gemm)) for r in bn[bn["module"] == ""].itertuples()]
    per_op += [(g["fused"].any(), g["with_gemm"].any()) for _, g in bn[bn["module"] != ""].groupby("module")]
    return {
        "ops": len(per_op),
        "fused_with_gemm": sum(1 for f, w in per_op if f and w),
        "fused_with_non_gemm": sum(1 for f, w in per_op if f and not w),
        "not_fused": sum(1 for f, _ in per_op if not f),
    }


def table5(op_tables: Iterable[str | Path], backends: Iterable[str]) -> pd.DataFrame:
    """Non-GEMM latency before (the catalog's baseline, PyTorch eager) and after fusion, the fusion rates and
    the batch-norm tally, one row per platform / model / batch / fusing backend of ``backends`` (a missing or
    failed side says why)."""
    taxonomy = tax.load()
    fused_backends = [b for b in backends if catalog.get(b).fused]
    runs = optable.read_runs(op_tables)
    # a batch size no fused backend ran is left out when another batch size of the model has a fused run
    fused_models = {(p, m) for (p, m, _), b in runs.items() if set(b) & set(fused_backends)}
    out = []
    for (platform, model, bs), backends in sorted(runs.items(), key=lambda kv: str(kv[0])):
        if not set(backends) & set(fused_backends) and (platform, model) in fused_models:
            continue
        before = backends.get(catalog.BASELINE)
        for backend in fused_backends:
            row = {"platform": platform, "model": model, "batch_size": bs, "backend": backend}
            after = backends.get(backend)
            problem = _problem(before, catalog.BASELINE) or _problem(after, backend)
            if problem:
                row["status"], row["reason"] = "missing", problem
                out.append(row)
                continue
            tb, ta = class_times(before[0], taxonomy).median(), class_times(after[0], taxonomy).median()
            nb, na = tb[NON_GEMM] + tb[FUSED_MIXED], ta[NON_GEMM]
            stats = fusion_rates(after[0], after[1].get("normalize", {}).get("original_ops"), taxonomy)
            row.update(
                status="ok",
                reason="",
                non_gemm_ms_before=nb,
                non_gemm_pct_before=100.0 * nb / tb.sum(),
                non_gemm_ms_after=na,
                non_gemm_pct_after=100.0 * na / ta.sum(),
                fused_gemm_non_gemm_ms_after=ta[FUSED_MIXED],
                total_ms_before=tb.sum(),
                total_ms_after=ta.sum(),
                non_gemm_speedup=nb / na if na else float("nan"),
                fusion_rate=stats["rates"][HEADLINE],
                **{f"rate: {k}": v for k, v in stats["rates"].items()},
                **{f"count: {k}": v for k, v in stats["counts"].items()},
                **{f"batch_norm: {k}": v for k, v in stats["batch_norm"].items()},
            )
            out.append(row)
    return pd.DataFrame(out)


def _problem(run, backend: str) -> str:
    if run is None:
        entry = catalog.get(backend)
        return f"no {backend} run" + ("" if entry.runs_on("cpu") else f" ({entry.label} needs a GPU platform)")
    df, meta = run
    if meta.get("status", "ok") != "ok":
        return f"{backend} failed: {meta.get('reason', '')}"
    return ""
