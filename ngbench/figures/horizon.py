"""The horizon across the study (``figures/horizon.md`` + ``.csv``): per run, the iteration if every op ran at
its roof; the op instances with the largest headroom; the fusion dividend (non-GEMM bytes under eager vs
each fusing backend, paired by platform, model and batch size). fig10 and fig11 draw from its outputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ngbench import catalog, names
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.analysis import horizon as hz
from ngbench.errors import InputError

log = logging.getLogger(__name__)
RUN_COLUMNS = ["platform", "device", "backend", "model", "batch_size", "limits", "dtype", "status", "iteration_ms",
               "gemm_ms", "non_gemm_ms", "idle_ms", "gemm_roof_ms", "non_gemm_roof_ms", "roof_iteration_ms",
               "non_gemm_share", "non_gemm_share_at_roof", "speedup_at_roof", "coverage", "gemm_coverage",
               "non_gemm_bytes", "headroom_ms_by_group", "bound_ms", "ops_without_work", "reason"]  # fmt: skip
TOP_COLUMNS = ["platform", "backend", "model", "batch_size", "op", "node", "module", "module_type", "group",
               "input_shapes", "layout", "bound", "work_source", "time_us", "attainable_us", "headroom_us",
               "efficiency", "bytes", "flops"]  # fmt: skip


def limits_by_platform(paths: Iterable[str | Path]) -> dict[str, hz.Limits]:
    """Platform -> measured limits, from ``results/platform/{platform}.json`` files (a skipped measurement,
    such as a CUDA platform on a machine without GPU, is left out with a warning)."""
    out = {}
    for path in paths:
        try:
            limits = hz.read_limits(path)
        except InputError as exc:
            log.warning("%s", exc)
            continue
        out[Path(path).stem] = limits
    return out


def _limits_for(meta: dict[str, Any], measured: dict[str, hz.Limits]) -> hz.Limits | None:
    platform = str(meta.get("platform"))
    if platform in measured:
        return measured[platform]
    gpu = ((meta.get("environment") or {}).get("torch") or {}).get("gpu")
    return hz.spec_sheet_limits(platform, gpu)


def collect(
    op_tables: Iterable[str | Path],
    measured: dict[str, hz.Limits],
    *,
    overhead_factor: float = hz.OVERHEAD_FACTOR,
    taxonomy: tax.Taxonomy | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one summary row per run, every op instance with work at its roof) over the op tables."""
    taxonomy = taxonomy or tax.load()
    runs, found = [], []
    for path in op_tables:
        meta = optable.read_run_metadata(path)
        base = {
            "platform": meta.get("platform"),
            "device": meta.get("device") or "",
            "backend": meta.get("backend"),
            "model": meta.get("model"),
            "batch_size": int(meta.get("batch_size") or 0),
        }
        if meta.get("status") != names.STATUS_OK:
            runs.append({**base, "status": meta.get("status"), "reason": meta.get("reason") or ""})
            continue
        limits = _limits_for(meta, measured)
        if limits is None:
            runs.append({**base, "status": names.STATUS_MISSING, "reason": f"no roofs for platform {base['platform']}"})
            continue
        df = optable.read(path)
        dtype = hz.run_dtype(meta)
        roof = hz.roofline(df, limits, dtype=dtype, overhead_factor=overhead_factor)
        summary = hz.run_summary(roof, taxonomy)
        runs.append({**base, "device": str(df["device"].iloc[0]), "limits": limits.source, "dtype": dtype,
                     "status": names.STATUS_OK, "reason": "", **summary})  # fmt: skip
        found.append(hz.instances(roof).assign(dtype=dtype))
    table = pd.DataFrame(runs).reindex(columns=RUN_COLUMNS)
    for column in ("headroom_ms_by_group", "bound_ms", "ops_without_work"):
        table[column] = table[column].map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else "")
    inst = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=TOP_COLUMNS)
    return table.sort_values(["platform", "model", "batch_size", "backend"]).reset_index(drop=True), inst


def fusion_dividend(runs: pd.DataFrame) -> pd.DataFrame:
    """Non-GEMM bytes and time per iteration under each fusing backend beside its unfused baseline
    (:func:`ngbench.catalog.unfused_baseline`), paired by platform, model and batch size."""
    ok = runs[runs["status"] == names.STATUS_OK].set_index(["platform", "backend", "model", "batch_size"])
    rows = []
    for (platform, backend, model, bs), r in ok.iterrows():
        if not catalog.get(backend).fused:
            continue
        base_name = catalog.unfused_baseline(backend)
        key = (platform, base_name, model, bs)
        if key not in ok.index:
            continue
        e = ok.loc[key]
        rows.append(
            {
                "platform": platform,
                "model": model,
                "batch_size": bs,
                "backend": backend,
                "baseline": base_name,
                "baseline_non_gemm_bytes": e["non_gemm_bytes"],
                "non_gemm_bytes": r["non_gemm_bytes"],
                "bytes_removed_pct": 100 * (1 - r["non_gemm_bytes"] / e["non_gemm_bytes"])
                if e["non_gemm_bytes"]
                else None,
                "baseline_non_gemm_ms": e["non_gemm_ms"],
                "non_gemm_ms": r["non_gemm_ms"],
                "baseline_non_gemm_roof_ms": e["non_gemm_roof_ms"],
                "non_gemm_roof_ms": r["non_gemm_roof_ms"],
            }
        )
    return pd.DataFrame(rows)


def _fmt(value, spec: str = ".2f") -> str:
    return "n/a" if value is None or pd.isna(value) else format(value, spec)


def _pct(value, spec: str = ".1f") -> str:
    return "n/a" if value is None or pd.isna(value) else f"{100 * value:{spec}}%"


def _md_row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write(
    runs: pd.DataFrame, inst: pd.DataFrame, *, md: str | Path, csv: str | Path, runs_csv: str | Path,
    fusion_csv: str | Path, instances_out: str | Path, top: int = 25,
) -> None:  # fmt: skip
    runs.to_csv(runs_csv, index=False)
    fusion = fusion_dividend(runs)
    fusion.to_csv(fusion_csv, index=False)
    Path(instances_out).parent.mkdir(parents=True, exist_ok=True)
    inst.to_parquet(instances_out, index=False)
    ng = inst[~inst["group"].isin([tax.GEMM, tax.IDLE])] if len(inst) else inst
    top_rows = ng.sort_values("headroom_us", ascending=False).head(top).reindex(columns=TOP_COLUMNS)
    top_rows.to_csv(csv, index=False)
    lines = [
        "# The horizon: how far each op is from what the platform allows",
        "",
        "Time basis: each run's op table (`time_us`: host time on CPU runs, device busy time on GPU runs, ORT node "
        "time, TensorRT per-layer averages); medians over profiled iterations. At the roof, every op with a work "
        "model takes max(bytes / bandwidth at its working set, FLOPs / peak of the run's dtype); ops without one "
        "keep their measured time (coverage says how much of the non-GEMM time has a work model); idle time is "
        "left out. Roofs: `results/platform/<platform>.json` (measured) or a vendor spec sheet (marked).",
        "",
        "## Per run",
        "",
        "| platform | backend | model | bs | iteration ms | non-GEMM ms | at roof: GEMM ms | at roof: non-GEMM ms "
        "| non-GEMM share | at roof | speed-up at roof | coverage | roofs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs.itertuples():
        if r.status != names.STATUS_OK:
            lines.append(_md_row([r.platform, r.backend, r.model, r.batch_size, f"{r.status}: {r.reason}"] + [""] * 8))
            continue
        lines.append(
            _md_row(
                [
                    r.platform,
                    r.backend,
                    r.model,
                    r.batch_size,
                    _fmt(r.iteration_ms),
                    _fmt(r.non_gemm_ms),
                    _fmt(r.gemm_roof_ms, ".3f"),
                    _fmt(r.non_gemm_roof_ms, ".3f"),
                    _pct(r.non_gemm_share),
                    _pct(r.non_gemm_share_at_roof),
                    f"{_fmt(r.speedup_at_roof, '.1f')}x",
                    _pct(r.coverage, ".0f"),
                    r.limits,
                ]  # fmt: skip
            )
        )
    lines += ["", f"## The {top} non-GEMM op instances with the largest headroom", "",
              "| platform | backend | model | op | module | shapes | layout | bound | ms | roof ms | efficiency |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in top_rows.itertuples():
        lines.append(
            _md_row(
                [
                    r.platform,
                    r.backend,
                    f"{r.model} bs{r.batch_size}",
                    r.op,
                    f"{r.module or '-'} ({r.module_type or '-'})",
                    f"`{str(r.input_shapes)[:60]}`",
                    r.layout or "?",
                    r.bound,
                    _fmt(r.time_us / 1e3, ".3f"),
                    _fmt(r.attainable_us / 1e3, ".4f"),
                    _pct(r.efficiency),
                ]  # fmt: skip
            )
        )
    lines += ["", "## The fusion dividend: non-GEMM bytes per iteration, unfused vs fusing backend", "",
              "Each fusing backend beside the unfused run of the same runtime (ort-opt vs ort, Inductor vs PyTorch "
              "eager; TensorRT vs PyTorch eager): ideal bytes of the non-GEMM rows (a non-GEMM op fused into a GEMM "
              "kernel moves no bytes of its own).", ""]  # fmt: skip
    if fusion.empty:
        lines.append(
            "No fusing backend's run is paired with an unfused run of the same platform, model and batch size."
        )
    else:
        lines += ["| platform | model | bs | backend (vs) | unfused non-GEMM MB | fused non-GEMM MB | bytes removed "
                  "| unfused non-GEMM ms | fused non-GEMM ms |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in fusion.itertuples():
            cells = [r.platform, r.model, r.batch_size, f"{r.backend} ({r.baseline})",
                     _fmt(r.baseline_non_gemm_bytes / 1e6, ".1f"), _fmt(r.non_gemm_bytes / 1e6, ".1f"),
                     f"{_fmt(r.bytes_removed_pct, '.0f')}%", _fmt(r.baseline_non_gemm_ms),
                     _fmt(r.non_gemm_ms)]  # fmt: skip
            lines.append(_md_row(cells))
    Path(md).write_text("\n".join(lines) + "\n")


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: every run drawn against its platform's roofs."""
    runs, instances = collect(i["ops"], limits_by_platform(i["limits"]), overhead_factor=p["overhead_factor"])
    write(runs, instances, md=o["md"], csv=o["csv"], runs_csv=o["runs"], fusion_csv=o["fusion"],
          instances_out=o["instances"], top=p["top"])  # fmt: skip
