"""``ngbench compare`` and the ``comparisons`` targets: find each run's op table, compare them
(:mod:`ngbench.analysis.compare`), and write the terminal table, the CSVs and the figure.

A run is given as an op table (``results/ops/...parquet``), a shares file (its op table beside it under
``results/ops``), a run's trace directory (normalized through its backend's catalog entry), or
``platform/backend/model/bsN`` (the op table under ``--results``)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ngbench import catalog, names, plan
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.analysis import compare as cmp
from ngbench.errors import InputError
from ngbench.figures import style

RUN_SPEC = re.compile(r"^(?P<platform>[^/]+)/(?P<backend>[^/]+)/(?P<model>[^/]+)/bs(?P<bs>\d+)$")


def _trace_dir_table(path: Path) -> pd.DataFrame:
    from ngbench.normalize import read_meta

    meta = read_meta(path)
    if meta.get("status") != names.STATUS_OK:
        raise InputError(f"{path}: the run did not succeed ({meta.get('status')}: {meta.get('reason', '')})")
    parts = path.resolve().parts
    labels = {
        "platform": meta.get("platform") or parts[-4],
        "backend": meta.get("backend") or parts[-3],
        "model": parts[-2],
        "batch_size": int(meta.get("batch_size") or parts[-1].removeprefix("bs")),
        "seq_len": meta.get("seq_len"),
    }
    if isinstance(meta.get("model"), dict) and meta["model"].get("name"):
        labels["model"] = meta["model"]["name"]
    df, _ = catalog.get(labels["backend"]).load_normalizer()(path, meta, labels)
    return df


def load(spec: str, results: str | Path = "results") -> tuple[pd.DataFrame, str]:
    """(op table, where it came from) of one run spec."""
    path = Path(spec)
    if path.is_dir():
        if (path / names.META_FILE).is_file():
            return _trace_dir_table(path), str(path)
        raise InputError(f"{path}: a directory without {names.META_FILE}: expected a run's trace directory")
    if path.is_file():
        parts = list(path.parts)
        if "shares" in parts and not path.name.endswith((".unknown.csv", ".compat.parquet")):
            i = len(parts) - 1 - parts[::-1].index("shares")
            ops = Path(*parts[:i], "ops", *parts[i + 1 :])
            if not ops.is_file():
                raise InputError(f"{path}: a shares file whose op table {ops} is missing (run the study's fig6)")
            return optable.read(ops), str(ops)
        return optable.read(path), str(path)
    match = RUN_SPEC.match(spec)
    if match:
        run = plan.Run(match["platform"], match["backend"], match["model"], int(match["bs"]))
        ops = Path(results) / Path(plan.ops_path(run)).relative_to("results")
        if not ops.is_file():
            raise InputError(f"{spec}: no op table at {ops} (is the run in the study? --results says where)")
        return optable.read(ops), str(ops)
    raise InputError(f"{spec}: not an op table, a shares file, a run's trace directory or platform/backend/model/bsN")


def labels_for(tables: list[pd.DataFrame]) -> list[str]:
    """Short labels: platform/backend plus whatever else differs among the runs (batch size, sequence)."""
    keys = []
    for df in tables:
        first = df.iloc[0]
        keys.append(
            {
                "platform": str(first["platform"]),
                "backend": str(first["backend"]),
                "bs": f"bs{first['batch_size']}",
                "seq": f"seq{first['seq_len']}" if pd.notna(first["seq_len"]) else "",
            }
        )
    varying = [k for k in ("platform", "backend", "bs", "seq") if len({d[k] for d in keys}) > 1] or ["backend"]
    labels = [" ".join(d[k] for k in varying if d[k]) for d in keys]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def runs_from_specs(specs: list[str], results: str | Path = "results") -> list[cmp.Run]:
    loaded = [load(spec, results) for spec in specs]
    for (df, source), spec in zip(loaded, specs):
        if not len(df):
            meta = optable.read_run_metadata(source) if source.endswith(".parquet") else {}
            raise InputError(
                f"{spec}: the run has no op table rows ({meta.get('status', 'empty')}: {meta.get('reason', '')})"
            )
    labels = labels_for([df for df, _ in loaded])
    return [cmp.Run(label, df, source) for label, (df, source) in zip(labels, loaded)]


def terminal_table(result: cmp.Comparison, top: int = 15) -> str:
    """Module rows sorted by absolute change (the baseline's own rows left out), then the groups."""
    lines = [f"baseline: {result.units['baseline'].iloc[0]}"] + [f"note: {n}" for n in result.notes]
    detect = next(c for c in result.units.columns if c.startswith("iterations_for_"))
    for level, df in (("module", result.units), ("group", result.groups)):
        shown = df[df["run"] != df["baseline"]].head(top if level == "module" else len(df))
        lines.append(
            f"\n{level:<8} {'run':<16} {'unit':<44} {'base us':>10} {'delta us':>10} {'interval':>22}  verdict"
        )
        for row in shown.itertuples():
            interval = f"[{row.ci_low_us:+.1f}, {row.ci_high_us:+.1f}]"
            unit = row.unit if len(row.unit) <= 44 else "..." + row.unit[-41:]
            status = "" if row.status == "paired" else f" ({row.status})"
            lines.append(
                f"{'':<8} {row.run:<16} {unit:<44} {row.baseline_us:>10.1f} {row.delta_us:>+10.1f} {interval:>22}  "
                f"{row.verdict}{status}, {getattr(row, detect):g} iterations for {detect.split('_')[-1]}"
            )
    return "\n".join(lines)


def write_tables(result: cmp.Comparison, prefix: str | Path) -> list[Path]:
    """``<prefix>.csv`` (modules and groups), ``<prefix>_waterfall.csv``, ``<prefix>.md`` (notes + top rows)."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    both = pd.concat([result.units, result.groups], ignore_index=True)
    paths = [prefix.with_suffix(".csv"), prefix.parent / f"{prefix.name}_waterfall.csv", prefix.with_suffix(".md")]
    both.to_csv(paths[0], index=False)
    result.waterfall.to_csv(paths[1], index=False)
    paths[2].write_text("```\n" + terminal_table(result) + "\n```\n")
    return paths


def draw(result: cmp.Comparison, png: str | Path, top: int = 10, taxonomy: tax.Taxonomy | None = None) -> None:
    """Left: the top modules by absolute change, one bar per run stacked by group, the interval of the
    change on each non-baseline bar. Right: per run, a waterfall by group from the baseline iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = (taxonomy or tax.load()).palette
    runs = result.runs
    changed = result.units[result.units["run"] != result.units["baseline"]]
    units = list(dict.fromkeys(changed["unit"]))[:top] or list(dict.fromkeys(result.units["unit"]))[:top]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, 0.5 + 0.38 * len(units) * len(runs) + 1.5), gridspec_kw={"width_ratios": [3, 2]}
    )
    comp = result.composition.set_index(["run", "unit", "group"])["us"]
    y, ticks, labels = 0.0, [], []
    for unit in reversed(units):
        for run in reversed(runs):
            left_edge = 0.0
            for group in sorted({g for (r, u, g) in comp.index if r == run and u == unit}):
                width = comp[(run, unit, group)]
                left.barh(y, width, left=left_edge, color=palette.get(group, "#999999"), height=0.8)
                left_edge += width
            row = result.units[(result.units["run"] == run) & (result.units["unit"] == unit)]
            if run != runs[0] and len(row):
                r = row.iloc[0]
                base = r.baseline_us
                lo, hi = base + max(r.ci_low_us, -base), base + r.ci_high_us
                if pd.notna(lo) and pd.notna(hi) and hi < float("inf"):
                    left.plot([lo, hi], [y, y], color="black", linewidth=1.2)
            ticks.append(y)
            labels.append(f"{unit[-40:]} | {run}" if run == runs[0] else run)
            y += 1
        y += 0.6
    left.set_yticks(ticks, labels, fontsize=8)
    left.set_xlabel("mean time per iteration (us, critical-path time_us); line: the baseline + the change's interval")
    left.set_title(f"top {len(units)} modules by change vs {runs[0]}", fontsize=10)
    groups_seen = sorted({g for (_, _, g) in comp.index})
    left.legend(
        [plt.Rectangle((0, 0), 1, 1, color=palette.get(g, "#999999")) for g in groups_seen],
        groups_seen,
        fontsize=7,
        loc="lower right",
    )
    x = 0
    run_ticks = []
    for run in runs[1:]:
        first = x
        steps = result.waterfall[result.waterfall["run"] == run]
        level = 0.0
        for step in steps.itertuples():
            if step.step in ("baseline iteration", "run iteration"):
                right.bar(x, step.us, color="#555555")
                level = step.us
            elif abs(step.us) > 0:
                bottom = level if step.us > 0 else level + step.us
                right.bar(x, abs(step.us), bottom=bottom, color=palette.get(step.step, "#999999"))
                level += step.us
            else:
                continue
            right.text(x, level, step.step if len(step.step) < 14 else step.step[:12] + ".", rotation=90,
                       fontsize=6, va="bottom", ha="center")  # fmt: skip
            x += 1
        run_ticks.append(((first + x - 1) / 2, run))
        x += 1
    right.set_ylabel("us per iteration")
    right.set_xticks([t for t, _ in run_ticks], [r for _, r in run_ticks], fontsize=8)
    right.set_title("baseline iteration -> each run's, by group", fontsize=10)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=style.DPI)
    plt.close(fig)
