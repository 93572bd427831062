"""The performance horizon: each op's measured time against what the platform allows for its work.

Per row (an op of the unified table with ``bytes``/``flops``):

* attainable time = max(bytes / bandwidth at the op's working set, flops / peak FLOP/s of the run's dtype);
  the working set is the op's own bytes, and the bandwidth there is read off the platform's measured curve
  (log-linear between measured sizes; the smallest size's below it, the largest's above). An op whose data
  fit a cache is held to that cache's bandwidth: the horizon assumes the producer left them there.
* ``bound``: ``overhead`` when the measured time is within ``overhead_factor`` of the backend's dispatch
  floor (a one-element op's time), or when the op's roof time is below that floor (its data could move in
  less time than one dispatch takes: whatever its time is made of, it is not its data); else ``memory`` or
  ``compute``, whichever term of the maximum is larger;
* efficiency = attainable / measured; headroom = measured - attainable.

Rows without work (``work_source`` none) keep their measured time in every "at the roof" figure and are
counted (coverage). The time basis is the op table's ``time_us``: host time on CPU runs, device busy time on
GPU runs, ORT's node time, TensorRT's per-layer average; the roofs are measured on the same kind of unit.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ngbench import names
from ngbench import taxonomy as tax
from ngbench.analysis.classes import row_classes
from ngbench.errors import InputError

SPEC_SHEETS_PATH = Path(__file__).with_name("spec_sheets.yaml")
OVERHEAD_FACTOR = 2.0
ROW_COLUMNS = ["intensity", "attainable_us", "bound", "efficiency", "headroom_us", "achieved_gb_per_s",
               "achieved_gflop_per_s"]  # fmt: skip


@dataclass
class Limits:
    """A platform's roofs in the units the op table uses: bytes/us, FLOP/us, us."""

    platform: str
    source: str  # "measured (results/platform/X.json)" | "spec-sheet: <GPU>"
    bandwidth: list[tuple[float, float]]  # (working set bytes, bytes per us), sorted by working set
    peaks: dict[str, float]  # dtype -> FLOP per us
    floors: dict[str, float] = field(default_factory=dict)  # backend -> us
    raw: dict[str, Any] = field(default_factory=dict)

    def bytes_per_us(self, working_set: float) -> float:
        sizes = [w for w, _ in self.bandwidth]
        if working_set <= sizes[0]:
            return self.bandwidth[0][1]
        if working_set >= sizes[-1]:
            return self.bandwidth[-1][1]
        i = bisect.bisect_left(sizes, working_set)
        (w0, b0), (w1, b1) = self.bandwidth[i - 1], self.bandwidth[i]
        t = (math.log(working_set) - math.log(w0)) / (math.log(w1) - math.log(w0))
        return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))

    def flops_per_us(self, dtype: str) -> float | None:
        return self.peaks.get(dtype) or self.peaks.get("float32")

    def floor_us(self, backend: str) -> float | None:
        return self.floors.get(backend) or self.floors.get("*")

    @property
    def dram_gb_per_s(self) -> float:
        return self.bandwidth[-1][1] / 1e3


def read_limits(path: str | Path) -> Limits:
    """A platform limits file (:mod:`ngbench.jobs.platform_limits`), checked: one-line errors name the key."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a readable platform limits file: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a JSON object (ngbench.platform-limits/1)")
    if data.get("status") != names.STATUS_OK:
        raise InputError(f"{p}: platform limits not measured ({data.get('reason') or data.get('status')})")
    best: dict[int, float] = {}
    for i, rec in enumerate(data.get("memory_bandwidth") or []):
        try:
            ws, gbps = int(rec["working_set_bytes"]), float(rec["gb_per_s"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{p}: memory_bandwidth[{i}]: expected working_set_bytes and gb_per_s ({exc})") from None
        if not (ws > 0 and math.isfinite(gbps) and gbps > 0):
            raise InputError(f"{p}: memory_bandwidth[{i}]: gb_per_s {gbps!r} at {ws} bytes: expected a positive number")
        if rec.get("resolved", True):
            best[ws] = max(best.get(ws, 0.0), gbps)
    if not best:
        raise InputError(f"{p}: no resolved memory_bandwidth record: expected the bandwidth curve")
    peaks = {}
    for dtype, rec in (data.get("peak_flops") or {}).items():
        rate = rec.get("flops_per_s") if isinstance(rec, dict) else None
        if rate is not None:
            if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
                raise InputError(f"{p}: peak_flops.{dtype}: {rate!r}, expected a positive number")
            peaks[dtype] = float(rate) / 1e6
    if not peaks:
        raise InputError(f"{p}: no peak_flops: expected the peak FLOP/s of at least one dtype")
    floors = {
        b: float(rec["us"])
        for b, rec in (data.get("dispatch_floor_us") or {}).items()
        if isinstance(rec, dict) and isinstance(rec.get("us"), int | float)
    }
    curve = sorted((float(ws), gbps * 1e3) for ws, gbps in best.items())
    return Limits(str(data.get("platform") or p.stem), f"measured ({p.name})", curve, peaks, floors, data)


@lru_cache(maxsize=1)
def _spec_sheets() -> dict[str, dict]:
    return yaml.safe_load(SPEC_SHEETS_PATH.read_text())["gpus"]


def spec_sheet_limits(platform: str, gpu_name: str | None) -> Limits | None:
    """Vendor spec-sheet roofs for a GPU by name (``spec_sheets.yaml``), or None for an unknown GPU."""
    if not gpu_name:
        return None
    sheets = _spec_sheets()
    match = max((k for k in sheets if k.lower() in gpu_name.lower()), key=len, default=None)
    if match is None:
        return None
    sheet = sheets[match]
    bandwidth = [(1.0, sheet["memory_gb_per_s"] * 1e3)]
    peaks = {d: t * 1e6 for d, t in sheet["peak_tflops"].items()}
    floors = {"*": float(sheet["min_kernel_us"])}
    return Limits(platform, f"spec-sheet: {match}", bandwidth, peaks, floors, {"gpu_name": gpu_name, **sheet})


def roofline(df: pd.DataFrame, limits: Limits, *, dtype: str = "float32", overhead_factor: float = OVERHEAD_FACTOR):
    """``df`` (one run's op table) with the roofline columns (:data:`ROW_COLUMNS`) added."""
    out = df.copy()
    nbytes = pd.to_numeric(out["bytes"], errors="coerce")
    flops = pd.to_numeric(out["flops"], errors="coerce").fillna(0.0)
    has_work = nbytes.notna() & (out["group"] != tax.IDLE)
    bw = nbytes.where(has_work).map(lambda b: limits.bytes_per_us(b) if pd.notna(b) and b > 0 else np.nan)
    peak = limits.flops_per_us(dtype)
    t_mem = (nbytes / bw).where(nbytes > 0, 0.0)
    t_cpu = flops / peak if peak else pd.Series(0.0, index=out.index)
    attainable = np.maximum(t_mem.fillna(0.0), t_cpu).where(has_work)
    time = out["time_us"].astype(float)
    floor = limits.floor_us(str(out["backend"].iloc[0])) if len(out) else None
    bound = pd.Series(np.where(t_cpu > t_mem.fillna(0.0), "compute", "memory"), index=out.index)
    if floor is not None:
        bound[(time <= overhead_factor * floor) | (attainable < floor)] = "overhead"
    out["bound"] = bound.where(has_work, "")
    out["attainable_us"] = attainable
    out["intensity"] = (flops / nbytes).where(has_work & (nbytes > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["efficiency"] = (attainable / time).where(has_work & (time > 0))
        out["achieved_gb_per_s"] = (nbytes / time / 1e3).where(has_work & (time > 0))
        out["achieved_gflop_per_s"] = (flops / time / 1e3).where(has_work & (time > 0))
    out["headroom_us"] = (time - attainable).where(has_work)
    return out


def run_dtype(meta: dict[str, Any]) -> str:
    """The dtype a run computed in (its roof), from the run record."""
    run = meta.get("run") or {}
    precision = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16", "int8": "int8"}
    value = run.get("dtype") or precision.get(str(run.get("precision") or meta.get("precision") or ""), None)
    return str(value or "float32")


def run_summary(roof: pd.DataFrame, taxonomy: tax.Taxonomy | None = None) -> dict[str, Any]:
    """One run at its roof: per iteration, medians over iterations (ms). GEMM includes fused GEMM+non-GEMM
    rows; Idle includes framework overhead; "at roof" keeps rows without work at their measured time and
    drops Idle (the roof has no idle time)."""
    taxonomy = taxonomy or tax.load()
    cls = row_classes(roof, taxonomy).replace({names.FUSED_MIXED: tax.GEMM})
    has_work = roof["attainable_us"].notna()
    at_roof = roof["attainable_us"].where(has_work, roof["time_us"])
    frame = pd.DataFrame(
        {"iteration": roof["iteration"], "cls": cls, "time": roof["time_us"], "roof": at_roof, "worked": has_work}
    )
    per = []
    for _, it in frame.groupby("iteration"):
        g, ng, idle = (it["cls"] == tax.GEMM), (it["cls"] == names.NON_GEMM), (it["cls"] == tax.IDLE)
        ng_time = it.loc[ng, "time"].sum()
        per.append(
            {
                "iteration_ms": it["time"].sum() / 1e3,
                "gemm_ms": it.loc[g, "time"].sum() / 1e3,
                "non_gemm_ms": ng_time / 1e3,
                "idle_ms": it.loc[idle, "time"].sum() / 1e3,
                "gemm_roof_ms": it.loc[g, "roof"].sum() / 1e3,
                "non_gemm_roof_ms": it.loc[ng, "roof"].sum() / 1e3,
                "coverage": it.loc[ng & it["worked"], "time"].sum() / ng_time if ng_time > 0 else np.nan,
                "gemm_coverage": (
                    it.loc[g & it["worked"], "time"].sum() / it.loc[g, "time"].sum()
                    if it.loc[g, "time"].sum()
                    else np.nan
                ),
            }
        )
    med = pd.DataFrame(per).median()
    out = {k: float(v) for k, v in med.items()}
    ops = out["gemm_ms"] + out["non_gemm_ms"]
    roof_ops = out["gemm_roof_ms"] + out["non_gemm_roof_ms"]
    out["roof_iteration_ms"] = roof_ops
    out["non_gemm_share"] = out["non_gemm_ms"] / ops if ops else np.nan
    out["non_gemm_share_at_roof"] = out["non_gemm_roof_ms"] / roof_ops if roof_ops else np.nan
    out["speedup_at_roof"] = out["iteration_ms"] / roof_ops if roof_ops else np.nan
    first = roof["iteration"] == roof["iteration"].min()
    ng_first = first & (cls == names.NON_GEMM)
    head = roof.loc[ng_first].groupby("group")["headroom_us"].sum(min_count=1) / 1e3
    out["headroom_ms_by_group"] = {g: float(v) for g, v in head.dropna().items()}
    missing = roof.loc[ng_first & ~has_work]
    out["ops_without_work"] = {
        str(k): float(v) for k, v in (missing.groupby("op")["time_us"].sum() / 1e3).nlargest(10).items()
    }
    out["bound_ms"] = {
        str(k): float(v) for k, v in (roof.loc[first].groupby("bound")["time_us"].sum() / 1e3).items() if k
    }
    out["non_gemm_bytes"] = float(pd.to_numeric(roof.loc[ng_first, "bytes"], errors="coerce").sum())
    return out


def instances(roof: pd.DataFrame) -> pd.DataFrame:
    """One row per op instance (its position in the iteration, with the same op, shapes and work): median time
    and headroom over iterations."""
    keyed = roof[roof["attainable_us"].notna()].copy()
    if keyed.empty:
        return keyed
    keyed["input_shapes"] = keyed["input_shapes"].astype(str)
    keys = ["platform", "backend", "model", "batch_size", "seq", "op", "node", "module", "module_type", "group",
            "input_shapes", "layout", "work_source", "bytes", "flops"]  # fmt: skip
    agg = keyed.groupby(keys, dropna=False).agg(
        time_us=("time_us", "median"),
        attainable_us=("attainable_us", "median"),
        headroom_us=("headroom_us", "median"),
        bound=("bound", lambda b: b.mode().iloc[0]),
    )
    agg = agg.reset_index()
    agg["efficiency"] = agg["attainable_us"] / agg["time_us"].where(agg["time_us"] > 0)
    return agg
