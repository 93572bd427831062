"""fig5: energy per inference per model: CPU package (powercap/RAPL) and GPU (NVML); cells without a readable
counter say n/a and why."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench.figures import style

SIDES = {"cpu": "CPU package (RAPL)", "gpu": "GPU (NVML)"}


def data(records: list[dict]) -> pd.DataFrame:
    """One row per energy record and side (cpu: RAPL, gpu: NVML)."""
    rows = []
    for r in records:
        base = {k: r.get(k) for k in ("platform", "device", "model", "batch_size")}
        if r.get("status") != "ok":
            for side in ("cpu", "gpu"):
                rows.append({**base, "side": side, "status": "failed", "reason": r.get("reason", "")})
            continue
        for side in ("cpu", "gpu"):
            s = r.get(side) or {"status": "n/a", "reason": "not measured"}
            rows.append(
                {
                    **base,
                    "side": side,
                    "status": s.get("status"),
                    "reason": s.get("reason", ""),
                    "joules_per_inference": s.get("joules_per_inference_median"),
                    "joules_min": s.get("joules_per_inference_min"),
                    "joules_max": s.get("joules_per_inference_max"),
                    "joules_above_idle": s.get("joules_per_inference_above_idle_median"),
                    "idle_power_w": s.get("idle_power_w"),
                    "counter": s.get("counter", ""),
                }
            )
    return pd.DataFrame(rows)


def plot(records: list[dict], png: str | Path, csv: str | Path) -> pd.DataFrame:
    """Median over blocks with min-max whiskers, CPU and GPU sides; n/a and failed cells are hatched with the
    reason (shortened on the bar, in full under the figure)."""
    table = data(records)
    table.to_csv(csv, index=False)
    colors = dict(zip(SIDES, style.side_colors(len(SIDES))))

    def draw(ax, rows: pd.DataFrame, kind: str) -> list[str]:
        sides = ["cpu"] if kind == "cpu" else list(SIDES)
        models = sorted(rows["model"].unique())
        top = max([v for v in rows["joules_max"].dropna()] + [1e-3]) * 1.15 if "joules_max" in rows else 1.0
        width = 0.8 / len(sides)
        notes = []
        for i, model in enumerate(models):
            for j, side in enumerate(sides):
                x = i + (j - (len(sides) - 1) / 2) * width
                cell = rows[(rows["model"] == model) & (rows["side"] == side)]
                if cell.empty or cell["status"].iloc[0] != "ok":
                    reason = cell["reason"].iloc[0] if len(cell) else "not measured"
                    ax.bar(x, top, width=width * 0.95, color="white", edgecolor="#999999", hatch="//")
                    short = reason if len(reason) <= style.REASON_CHARS else reason[: style.REASON_CHARS - 1] + "…"
                    ax.text(x, top / 2, f"n/a: {short}", rotation=90, ha="center", va="center", fontsize=5.5)
                    notes.append(f"{model} {side}: n/a: {reason}")
                    continue
                v = cell.iloc[0]
                whiskers = [
                    [v["joules_per_inference"] - v["joules_min"]],
                    [v["joules_max"] - v["joules_per_inference"]],
                ]
                ax.bar(x, v["joules_per_inference"], width=width * 0.95, color=colors[side], yerr=whiskers)
        ax.set_xticks(range(len(models)), models, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, top)
        ax.set_ylabel("energy per inference (J)")
        return notes

    style.panel_grid(
        table,
        png,
        draw,
        bars_per_panel=lambda rows: 2 * rows["model"].nunique(),
        title="fig5: energy per inference, PyTorch eager, batch 1",
        legend=style.legend_for(list(SIDES.values()), dict(zip(SIDES.values(), colors.values()))),
        bar_width=0.55,
    )
    return table


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the energy records."""
    import json

    plot([json.loads(Path(path).read_text()) for path in i["energy"]], o["png"], o["csv"])
