"""The paper's numeric claims (``figures/paper.yaml`` ``claims:``) measured the same way on our results, under
our metric and, where the claim is about PyTorch eager group shares, under the original's (``compat``).

The verdict rule, stated once (it heads the scorecard too):
- *not measurable here*: the runs the claim needs (its device, backends, models) are not in the results;
  the reason names what is missing (a CUDA platform, TensorRT, a model). Imported platforms count.
- *reproduced*: shares (%) within ``SHARE_TOLERANCE_PP`` percentage points of the paper's value, each end of
  a range or change within it and a change in the same direction; ratios and counts within
  ``RATIO_TOLERANCE`` relative; a table (I, II, IV) when at least ``TABLE_MATCH`` of its rows match.
- *differs*: measured, outside that; the gap is printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ngbench import catalog, names
from ngbench import taxonomy as tax

SHARE_TOLERANCE_PP = 5.0
RATIO_TOLERANCE = 0.2
TABLE_MATCH = 0.9
REPRODUCED, DIFFERS, NOT_HERE = "reproduced", "differs", "not measurable here"
TABLE_KINDS = ("table1", "table2", "table4", "table5")  # claims about whole tables: rows that match
# claims about group or class shares of runs (ours and compat can be set side by side)
SHARE_KINDS = ("class_range", "group_mean", "class_mean", "device_change", "backend_change", "group_change_over_models")
VERDICT_RULE = (
    f"reproduced: shares within {SHARE_TOLERANCE_PP:g} percentage points of the paper's value (each end of a "
    f"range or change, a change in the same direction); ratios and counts within {RATIO_TOLERANCE:.0%} "
    f"relative; tables when at least {TABLE_MATCH:.0%} of rows match. differs: measured, outside that. not "
    "measurable here: the runs the claim needs (device, backend, models) are not in these results; imported "
    "platforms count."
)


@dataclass
class Evidence:
    """What the claims are measured on: every run's shares (ours), the compat shares of PyTorch eager runs
    (paper group names, level group and class), and the tables the workflow made."""

    shares: pd.DataFrame
    compat: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    group_names: dict[str, str | None] = field(default_factory=dict)
    # the models each figure draws in this configuration; a claim about a figure's results ("all results" of
    # the characterization is fig6's) reads only those, not the debug-size or sequence-length variants
    figure_models: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cuda_platforms(self) -> set[str]:
        if self.shares.empty:
            return set()
        return set(self.shares.loc[self.shares["device"].map(names.is_cuda), "platform"])


@dataclass
class Result:
    ours: Any = None
    compat: Any = None
    verdict: str = NOT_HERE
    reason: str = ""
    runs: int = 0
    gap: float = 0.0  # largest distance to the paper's value (pp for shares, relative for ratios)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def resolved(claim: dict, evidence: Evidence) -> dict:
    """The claim with ``needs: {figure: fig6}`` turned into the models that figure draws here."""
    figure = claim["needs"].get("figure")
    if figure is None:
        return claim
    if figure not in evidence.figure_models:
        raise ValueError(f"claim {claim['id']}: needs the models of {figure!r}, which the evidence does not list")
    needs = {k: v for k, v in claim["needs"].items() if k != "figure"}
    return {**claim, "needs": {**needs, "models": list(evidence.figure_models[figure])}}


def select(df: pd.DataFrame, needs: dict, *, device: str | None = None) -> pd.DataFrame:
    """Rows of successful runs matching a claim's needs (backends, models; device kind unless ``any``)."""
    if df.empty:
        return df
    out = df[df["status"] == names.STATUS_OK] if "status" in df else df
    if needs.get("backend") is not None and "backend" in out:
        out = out[out["backend"].isin(_as_list(needs["backend"]))]
    if needs.get("models") is not None:  # an empty list (a figure that draws nothing) selects nothing
        out = out[out["model"].isin(needs["models"])]
    want = device or needs.get("device", "any")
    if want != "any" and not isinstance(want, list):
        out = out[out["device"].map(names.device_kind) == want]
    return out


def _paper_group(group: str, evidence: Evidence) -> str:
    return evidence.group_names.get(group) or group.lower()


def run_shares(df: pd.DataFrame, group: str, evidence: Evidence, *, compat: bool) -> pd.Series:
    """One share (%) per run of ``group`` (GEMM / non-GEMM classes, or an operator group: ours summed over
    the groups that map to the same paper group, so Elementwise + Reduction = its arithmetic)."""
    keys = ["platform", "device", "backend", "model", "batch_size"]
    if df.empty:
        return pd.Series(dtype=float)
    if group in (tax.GEMM, names.NON_GEMM):
        rows = df[(df["level"] == "class") & (df["group"] == group)]
    elif compat:
        rows = df[(df["level"] == "group") & (df["group"] == _paper_group(group, evidence))]
    else:
        paper = _paper_group(group, evidence)
        ours = [g for g, p in evidence.group_names.items() if p == paper] or [group]
        rows = df[(df["level"] == "group") & (df["group"].isin(ours))]
    column = "pct" if compat else "pct_mean"
    per_run = rows.groupby(keys, dropna=False)[column].sum()
    present = df.drop_duplicates(keys).set_index(keys).index
    return per_run.reindex(present, fill_value=0.0)


def _mean(s: pd.Series) -> float | None:
    return float(s.mean()) if len(s) else None


def _measure_shares(claim: dict, df: pd.DataFrame, evidence: Evidence, compat: bool) -> tuple[Any, int]:
    m, needs = claim["measure"], claim["needs"]
    kind, group = m["kind"], m.get("group")
    if kind in ("class_range", "group_mean", "class_mean", "group_change_over_models"):
        s = run_shares(select(df, needs), group, evidence, compat=compat)
        if not len(s):
            return None, 0
    if kind == "class_range":
        if m.get("over") == "model":
            s = s.groupby(level="model").mean()
        return ((float(s.min()), float(s.max())) if len(s) else None), len(s)
    if kind in ("group_mean", "class_mean"):
        return _mean(s), len(s)
    if kind == "device_change":
        cpu = run_shares(select(df, needs, device="cpu"), group, evidence, compat=compat)
        gpu = run_shares(select(df, needs, device="cuda"), group, evidence, compat=compat)
        if not len(cpu) or not len(gpu):
            return None, len(cpu) + len(gpu)
        return (_mean(cpu), _mean(gpu)), len(cpu) + len(gpu)
    if kind == "backend_change":
        before, after = _as_list(needs["backend"])
        a = run_shares(select(df, {**needs, "backend": before}), group, evidence, compat=compat)
        b = run_shares(select(df, {**needs, "backend": after}), group, evidence, compat=compat)
        if not len(a) or not len(b):
            return None, len(a) + len(b)
        return (_mean(a), _mean(b)), len(a) + len(b)
    if kind == "group_change_over_models":
        models = [m_ for m_ in needs.get("models", []) if m_ in set(s.index.get_level_values("model"))]
        if len(models) < 2:
            return None, len(s)
        first = s[s.index.get_level_values("model") == models[0]]
        last = s[s.index.get_level_values("model") == models[-1]]
        return (_mean(first), _mean(last)), len(s)
    raise ValueError(f"claim {claim['id']}: unknown share measure {kind!r}")


def _table_measure(claim: dict, evidence: Evidence) -> tuple[Any, int, str]:
    """(value, rows, reason when absent) of the claims measured from the workflow's tables."""
    kind, t = claim["measure"]["kind"], evidence.tables
    if kind == "table1":
        df = t.get("table1", pd.DataFrame())
        seen = df["paper_shape_observed"].astype("boolean") if len(df) else pd.Series(dtype="boolean")
        if not len(df) or seen.isna().all():
            return None, 0, "no PyTorch eager run of Table I's models in the results"
        return int(seen.fillna(False).sum()), len(df), ""
    if kind == "table2":
        df = t.get("table2", pd.DataFrame())
        df = df[df["paper_M"].notna()] if len(df) else df
        if not len(df):
            return None, 0, "table2 has no rows"
        return int(((df["ratio_to_paper"] - 1).abs() <= 0.05).sum()), len(df), ""
    if kind == "table4":
        df = t.get("table4", pd.DataFrame())
        df = df[df["device"].map(names.is_cuda)] if len(df) else df
        if not len(df):
            return None, 0, "needs PyTorch eager runs on a CUDA platform"
        return int((df["top_group"] == df["paper_group_A_gpu"]).sum()), len(df), ""
    if kind in ("table5", "fusion"):
        df = t.get("table5", pd.DataFrame())
        if len(df):
            fused = [b for b in _as_list(claim["needs"]["backend"]) if catalog.get(b).fused]
            df = df[df["backend"].isin(fused) & (df["status"] == names.STATUS_OK)]
            if claim["needs"].get("models"):
                df = df[df["model"].isin(claim["needs"]["models"])]
        if not len(df):
            labels = " or ".join(catalog.get(b).label for b in _as_list(claim["needs"]["backend"]))
            return None, 0, f"needs {labels} runs on a CUDA platform"
        if kind == "table5":
            return len(df), len(df), ""
        column = claim["measure"]["column"]
        if column == "non_gemm_reduction_pct":
            values = 100.0 * (1 - df["non_gemm_ms_after"] / df["non_gemm_ms_before"])
        elif column == "batch_norm_with_gemm_pct":
            bn = df[[c for c in df.columns if c.startswith("batch_norm: ")]].sum(axis=1)
            values = 100.0 * df["batch_norm: fused_with_gemm"] / bn.where(bn > 0)
        else:
            values = df[column]
        return float(values.mean()), len(df), ""
    if kind == "int8":
        df = t.get("fig9_summary", pd.DataFrame())
        if len(df):
            df = df[(df["status"] == names.STATUS_OK) & df["platform"].isin(evidence.cuda_platforms)]
            if claim["needs"].get("models"):
                df = df[df["model"].isin(claim["needs"]["models"])]
        if not len(df):
            return None, 0, "needs torch and torch-int8 runs of its models on a CUDA platform"
        column = claim["measure"]["column"]
        if column == "non_gemm_pct_of_ops":
            pair = (float(df["fp_non_gemm_pct_of_ops"].mean()), float(df["int8_non_gemm_pct_of_ops"].mean()))
            return pair, len(df), ""
        if column == "gemm_reduction_pct":
            return float(100.0 * (1 - df["gemm_latency_change"]).mean()), len(df), ""
        return float(df[column].mean()), len(df), ""
    raise ValueError(f"claim {claim['id']}: unknown measure {kind!r}")


def _missing_reason(claim: dict, evidence: Evidence) -> str:
    needs = claim["needs"]
    devices = [d for d in _as_list(needs.get("device", "any")) if d != "any"]
    present = set(evidence.shares["device"].map(names.device_kind)) if len(evidence.shares) else set()
    lacking = [d for d in devices if d not in present]
    if "cuda" in lacking:
        return "needs a CUDA platform (none in these results)"
    backends = _as_list(needs.get("backend") or [])
    have = set(evidence.shares["backend"]) if len(evidence.shares) else set()
    if [b for b in backends if b not in have]:
        return f"needs runs of {', '.join(b for b in backends if b not in have)}"
    models = [m for m in needs.get("models", []) if len(evidence.shares) and m not in set(evidence.shares["model"])]
    if models:
        return f"needs runs of {', '.join(models)}"
    return "no run matches its device, backend and models"


def verdict(claim: dict, ours: Any, rows: int | None = None) -> tuple[str, str]:
    """(verdict, the gap in words) of a measured value against the paper's, by :data:`VERDICT_RULE`."""
    paper, unit, kind = claim["value"], claim.get("unit", "%"), claim["measure"]["kind"]
    if kind in TABLE_KINDS:
        ok = rows and ours / rows >= TABLE_MATCH
        return (REPRODUCED if ok else DIFFERS), f"{ours} of {rows} rows match"
    if isinstance(paper, list):
        gaps = [o - p for o, p in zip(ours, paper)]
        same_direction = (ours[1] - ours[0]) * (paper[1] - paper[0]) >= 0 if "change" in kind else True
        ok = same_direction and all(abs(g) <= SHARE_TOLERANCE_PP for g in gaps)
        text = ", ".join(f"{g:+.1f} pp" for g in gaps) + ("" if same_direction else "; opposite direction")
        return (REPRODUCED if ok else DIFFERS), text
    if unit == "%":
        gap = ours - paper
        return (REPRODUCED if abs(gap) <= SHARE_TOLERANCE_PP else DIFFERS), f"{gap:+.1f} pp"
    rel = (ours - paper) / paper
    return (REPRODUCED if abs(rel) <= RATIO_TOLERANCE else DIFFERS), f"{rel:+.0%}"


def measure(claim: dict, evidence: Evidence) -> Result:
    claim = resolved(claim, evidence)
    kind = claim["measure"]["kind"]
    if kind in (*TABLE_KINDS, "fusion", "int8"):
        value, rows, reason = _table_measure(claim, evidence)
        if value is None:
            return Result(reason=reason)
        v, gap = verdict(claim, value, rows)
        return Result(ours=value, verdict=v, reason=gap, runs=rows)
    value, runs = _measure_shares(claim, evidence.shares, evidence, compat=False)
    if value is None:
        return Result(reason=_missing_reason(claim, evidence), runs=runs)
    res = Result(ours=value, runs=runs, gap=_gap(claim, value))
    res.verdict, res.reason = verdict(claim, value)
    if len(evidence.compat) and catalog.BASELINE in _as_list(claim["needs"].get("backend", [])):
        res.compat, _ = _measure_shares(claim, evidence.compat, evidence, compat=True)
        if res.compat is not None:
            compat_verdict, gap = verdict(claim, res.compat)
            res.reason += f"; compat: {compat_verdict} ({gap})"
    return res


def distance(a: Any, b: Any) -> float:
    """Largest absolute difference of two values or pairs (percentage points for shares)."""
    if isinstance(a, tuple | list):
        return max(abs(x - y) for x, y in zip(a, b))
    return abs(a - b)


def _gap(claim: dict, ours: Any) -> float:
    paper = claim["value"]
    if claim.get("unit", "%") == "%" or isinstance(paper, list):
        return distance(ours, paper)
    return abs(ours - paper) / abs(paper) * 100


def drill_down(claim: dict, evidence: Evidence, top: int = 2) -> str:
    """Which of the paper's groups account for the difference between its metric (compat) and ours over the
    claim's runs, with the op names that carry the most compat latency in them."""
    needs = resolved(claim, evidence)["needs"]
    ours_runs = select(evidence.shares, needs)
    compat_runs = select(evidence.compat, needs) if len(evidence.compat) else evidence.compat
    if ours_runs.empty or compat_runs.empty:
        return ""
    paper_groups = sorted({p for p in evidence.group_names.values() if p and p != "gemm"})
    rows = []
    for group in paper_groups:
        ours_group = next((g for g, p in evidence.group_names.items() if p == group), group)
        a = _mean(run_shares(ours_runs, ours_group, evidence, compat=False)) or 0.0
        b = _mean(run_shares(compat_runs, ours_group, evidence, compat=True)) or 0.0
        rows.append((abs(b - a), group, a, b))
    parts = []
    for _, group, a, b in sorted(rows, reverse=True)[:top]:
        ops = compat_runs[(compat_runs["level"] == "op") & (compat_runs["group"] == group)]
        names_ = ops.groupby("name")["latency_us"].sum().nlargest(3).index.tolist() if len(ops) else []
        carried = f" (largest: {', '.join(names_)})" if names_ else ""
        parts.append(f"{group} {b:.1f}% under compat vs {a:.1f}% ours ({b - a:+.1f} pp){carried}")
    n = ours_runs.drop_duplicates(["platform", "backend", "model", "batch_size"]).shape[0]
    return f"over {n} runs: " + "; ".join(parts)


def disturbed_runs(claim: dict, evidence: Evidence) -> int:
    """How many of the runs a claim reads were judged disturbed (kept, and counted here)."""
    rows = select(evidence.shares, resolved(claim, evidence)["needs"])
    if rows.empty or "trust" not in rows:
        return 0
    runs = rows.drop_duplicates(["platform", "backend", "model", "batch_size"])
    return int((runs["trust"] == "disturbed").sum())
