"""Compare runs of one model, module by module and group by group, with bootstrap intervals.

The first run is the baseline. Time is each op table's ``time_us`` (the critical-path time that sums, with
the Idle row, to the iteration); a unit's time in an iteration is the sum over its rows in that iteration.

Pairing. A unit is a module path: a row's ``module`` (for a fused kernel, node or layer, the normalizers
set it to the innermost module that contains every op it replaced, from ``fused_ops``). When one run has
no time in module ``m`` or anything inside it but has time in an ancestor ``a`` of ``m`` (its backend
collapsed ``m`` into a fused kernel or layer owned by ``a``), ``m`` is folded into the nearest such ancestor
in *every* run, so the runs are compared at the level where all of them attribute time. Rows without a module
(an Inductor extern GEMM, runtime wrappers) pair by group: ``(no module) GEMM``. What only some runs have
after folding is listed as added (not in the baseline) or removed (not in the run), never dropped.

Intervals. Per unit, the difference of the mean time per iteration (run - baseline) with a percentile
bootstrap over iterations (each run resampled on its own; repeated runs of a campaign are concatenated as
more iterations when given together). The interval's level is Bonferroni-corrected for the units compared
(``1 - alpha / m``), and the verdict is ``slower`` / ``faster`` where the interval excludes 0, else
``no clear change``. From the pooled spread, the iterations each run needs to detect a change of
``detect_fraction`` of the baseline unit (two-sided, at the corrected level, power 0.8) are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from ngbench.errors import InputError
from ngbench.taxonomy import IDLE

NO_MODULE = "(no module)"
POWER = 0.8


@dataclass
class Run:
    """One run to compare: its label and its op table (several tables of one configuration: repeats)."""

    label: str
    table: pd.DataFrame
    source: str = ""

    @property
    def model(self) -> str:
        return str(self.table["model"].iloc[0]) if len(self.table) else ""


@dataclass
class Comparison:
    units: pd.DataFrame  # one row per (run, unit): module level
    groups: pd.DataFrame  # one row per (run, group)
    waterfall: pd.DataFrame  # per run: the baseline's iteration, each group's change, the run's iteration
    composition: pd.DataFrame  # per (run, unit, group): mean us, for the stacked figure
    runs: list[str] = field(default_factory=list)  # labels in the order given: the baseline first
    notes: list[str] = field(default_factory=list)


def _unit_key(module: str, group: str) -> str:
    return module if module else f"{NO_MODULE} {group}"


def _ancestors(path: str) -> list[str]:
    """Nearest first: ``a.b.c`` -> ``a.b``, ``a``."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _has_within(keys: set[str], path: str) -> bool:
    prefix = path + "."
    return path in keys or any(k.startswith(prefix) for k in keys)


def fold_map(keys_per_run: list[set[str]]) -> dict[str, str]:
    """Each unit key -> the key it is compared at (itself, or the ancestor some run collapsed it into)."""
    all_keys = set().union(*keys_per_run)
    target = {k: k for k in all_keys}
    changed = True
    while changed:
        changed = False
        for key in sorted(all_keys, key=lambda k: -k.count(".")):
            current = target[key]
            if current.startswith(NO_MODULE):
                continue
            folds = []
            for keys in keys_per_run:
                if _has_within(keys, current):
                    continue
                nearest = next((a for a in _ancestors(current) if a in keys), None)
                if nearest is not None:
                    folds.append(nearest)
            if folds:
                shallowest = min(folds, key=lambda a: a.count("."))
                if shallowest != current:
                    target[key] = shallowest
                    changed = True
        # a key folded into an ancestor that is itself folded follows it
        for key in all_keys:
            final = target[key]
            while target.get(final, final) != final:
                final = target[final]
            if final != target[key]:
                target[key] = final
                changed = True
    return target


def _with_units(table: pd.DataFrame, fold: dict[str, str]) -> pd.DataFrame:
    """The op rows (Idle left out) with the unit each is compared in."""
    ops = table[table["group"] != IDLE]
    return ops.assign(unit=[fold[_unit_key(m, g)] for m, g in zip(ops["module"], ops["group"])])


def _per_iteration(table: pd.DataFrame, fold: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(iteration x unit us, iteration x group us, iteration time) of one run; Idle is a group, not a unit."""
    units = _with_units(table, fold).pivot_table(
        index="iteration", columns="unit", values="time_us", aggfunc="sum", fill_value=0.0
    )
    groups = table.pivot_table(index="iteration", columns="group", values="time_us", aggfunc="sum", fill_value=0.0)
    iteration = table.groupby("iteration")["iteration_time_us"].first()
    units = units.reindex(iteration.index, fill_value=0.0)
    groups = groups.reindex(iteration.index, fill_value=0.0)
    return units, groups, iteration


def bootstrap_delta(
    base: np.ndarray, other: np.ndarray, *, level: float, resamples: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """(mean(other) - mean(base), low, high): percentile bootstrap, each sample resampled on its own."""
    delta = float(other.mean() - base.mean())
    if len(base) < 2 and len(other) < 2:
        return delta, -math.inf, math.inf  # one iteration each: no spread to judge the difference by
    b = base[rng.integers(0, len(base), (resamples, len(base)))].mean(axis=1)
    o = other[rng.integers(0, len(other), (resamples, len(other)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(o - b, [tail, 1 - tail])
    return delta, float(low), float(high)


def iterations_needed(base: np.ndarray, other: np.ndarray, effect_us: float, level: float) -> float:
    """Iterations per run for a two-sided test at ``level`` to detect ``effect_us`` with power 0.8, from the
    pooled standard deviation (inf where the spread is unknown, 1 where there is none)."""
    if len(base) + len(other) < 3 or effect_us <= 0:
        return math.inf
    spread = sum((len(x) - 1) * x.var(ddof=1) for x in (base, other) if len(x) > 1)
    pooled = math.sqrt(spread / max(1, len(base) + len(other) - 2))
    if pooled == 0:
        return 1.0
    z = NormalDist().inv_cdf(1 - (1 - level) / 2) + NormalDist().inv_cdf(POWER)
    return float(math.ceil(2 * (z * pooled / effect_us) ** 2))


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "slower"
    if high < 0:
        return "faster"
    return "no clear change"


def check_runs(runs: list[Run]) -> list[str]:
    """Refuse runs of different models; return notes on what differs (batch size, sequence length)."""
    if len(runs) < 2:
        raise InputError(f"compare needs at least two runs (the first is the baseline), got {len(runs)}")
    for run in runs:
        if not len(run.table):
            raise InputError(f"{run.source or run.label}: an empty op table (a failed or skipped run?)")
    models = {run.label: run.model for run in runs}
    if len(set(models.values())) > 1:
        listed = ", ".join(f"{label} ({model})" for label, model in models.items())
        raise InputError(f"runs of different models cannot be paired module by module: {listed}")
    notes = []
    for column in ("batch_size", "seq_len"):
        values = {run.label: run.table[column].iloc[0] for run in runs}
        if len({str(v) for v in values.values()}) > 1:
            notes.append(f"{column} differs: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    return notes


def compare(
    runs: list[Run],
    *,
    alpha: float = 0.05,
    resamples: int = 2000,
    detect_fraction: float = 0.10,
    seed: int = 0,
) -> Comparison:
    notes = check_runs(runs)
    keys_per_run = [{_unit_key(m, g) for m, g in zip(r.table["module"], r.table["group"]) if g != IDLE} for r in runs]
    fold = fold_map(keys_per_run)
    folded = sorted({k for k, v in fold.items() if k != v})
    if folded:
        notes.append(f"{len(folded)} module(s) folded into a parent where a run fused them away")
    per_run = [_per_iteration(r.table, fold) for r in runs]
    rng = np.random.default_rng(seed)
    base_units, base_groups, base_iter = per_run[0]
    unit_rows, group_rows, water_rows, comp_rows = [], [], [], []
    for run, (units, groups, iteration) in zip(runs, per_run):
        for level_name, base_df, df, rows in (
            ("module", base_units, units, unit_rows),
            ("group", base_groups, groups, group_rows),
        ):
            names = sorted(set(base_df.columns) | set(df.columns))
            m = max(1, len(names))
            level = 1 - alpha / m
            for name in names:
                in_base, in_run = name in base_df.columns, name in df.columns
                b = base_df[name].to_numpy(float) if in_base else np.zeros(len(base_df))
                o = df[name].to_numpy(float) if in_run else np.zeros(len(df))
                delta, low, high = bootstrap_delta(b, o, level=level, resamples=resamples, rng=rng)
                status = "paired" if in_base and in_run else ("added" if in_run else "removed")
                rows.append(
                    {
                        "run": run.label,
                        "baseline": runs[0].label,
                        "level": level_name,
                        "unit": name,
                        "status": status,
                        "baseline_us": float(b.mean()),
                        "run_us": float(o.mean()),
                        "delta_us": delta,
                        "delta_pct": 100 * delta / b.mean() if b.mean() > 0 else math.nan,
                        "ci_low_us": low,
                        "ci_high_us": high,
                        "verdict": _verdict(low, high) if run is not runs[0] else "baseline",
                        "interval_level": level,
                        "iterations_baseline": len(b),
                        "iterations_run": len(o),
                        f"iterations_for_{round(100 * detect_fraction)}pct": iterations_needed(
                            b, o, detect_fraction * b.mean(), level
                        ),
                    }
                )
        base_total = float(base_iter.mean())
        water_rows.append({"run": run.label, "step": "baseline iteration", "us": base_total})
        for group in sorted(set(base_groups.columns) | set(groups.columns)):
            b = float(base_groups[group].mean()) if group in base_groups.columns else 0.0
            o = float(groups[group].mean()) if group in groups.columns else 0.0
            water_rows.append({"run": run.label, "step": group, "us": o - b})
        water_rows.append({"run": run.label, "step": "run iteration", "us": float(iteration.mean())})
        n_iter = max(1, run.table["iteration"].nunique())
        composition = _with_units(run.table, fold).groupby(["unit", "group"])["time_us"].sum() / n_iter
        for (name, group), us in composition.items():
            comp_rows.append({"run": run.label, "unit": name, "group": group, "us": float(us)})
    correction = f"Bonferroni over the units compared per run and level (alpha {alpha})"
    notes.append(f"intervals: {resamples} bootstrap resamples over iterations, {correction}")
    units_df = pd.DataFrame(unit_rows)
    order = units_df["delta_us"].abs().sort_values(ascending=False).index
    return Comparison(
        units=units_df.loc[order].reset_index(drop=True),
        groups=pd.DataFrame(group_rows).sort_values("delta_us", key=abs, ascending=False).reset_index(drop=True),
        waterfall=pd.DataFrame(water_rows),
        composition=pd.DataFrame(comp_rows),
        runs=[r.label for r in runs],
        notes=notes,
    )
