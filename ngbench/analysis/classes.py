"""GEMM / non-GEMM time per iteration: the one function every figure and table uses for it.

Classes: ``GEMM`` (rows whose group multiplies matrices and that carry no fused non-GEMM work),
``fused GEMM+non-GEMM`` (GEMM rows that also do non-GEMM work: epilogues, Myelin regions; never silently
pure GEMM), ``non-GEMM`` and ``Idle`` (the Idle row and framework work that is no operator, such as
TorchDynamo guards or ORT's session overhead). Per iteration they add up to the measured iteration.
"""

from __future__ import annotations

import pandas as pd

from ngbench import catalog, names
from ngbench import table as optable
from ngbench import taxonomy as tax

CLASSES = [tax.GEMM, names.FUSED_MIXED, names.NON_GEMM, tax.IDLE]


def constituent_kind(backend: str) -> str:
    """Name table for the ops inside fused rows: aten ops (Kineto traces) or ONNX op types (ORT, TensorRT)."""
    return catalog.get(backend).constituent_kind


def is_gemm_op(op: str, taxonomy: tax.Taxonomy, kind: str) -> bool:
    return taxonomy.op_group(op, kind) == tax.GEMM  # type: ignore[arg-type]


def row_classes(df: pd.DataFrame, taxonomy: tax.Taxonomy) -> pd.Series:
    """Each row's class (see the module docstring)."""
    kind = constituent_kind(str(df["backend"].iloc[0])) if len(df) else "torch"

    def mixed(fused) -> bool:
        return len(fused) > 0 and any(not is_gemm_op(optable.parse_fused(f).op, taxonomy, kind) for f in fused)

    cls = pd.Series(names.NON_GEMM, index=df.index)
    overhead = df["group"].map(taxonomy.is_overhead).astype(bool)
    cls[overhead] = tax.IDLE
    gemm = df["is_gemm"].astype(bool) & ~overhead
    cls[gemm] = tax.GEMM
    if gemm.any():
        cls[gemm & df["fused_ops"].map(mixed)] = names.FUSED_MIXED
    return cls


def class_times(df: pd.DataFrame, taxonomy: tax.Taxonomy | None = None) -> pd.DataFrame:
    """Per iteration (index), ms in each of :data:`CLASSES` (columns); rows add up to the iteration."""
    taxonomy = taxonomy or tax.load()
    out = df.assign(cls=row_classes(df, taxonomy)).groupby(["iteration", "cls"])["time_us"].sum()
    return out.unstack(fill_value=0.0).reindex(columns=CLASSES, fill_value=0.0) / 1e3
