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

    def slots(rows: pd.DataFrame, kind: str) -> list[style.Slot]:
        out = []
        for model in sorted(rows["model"].unique()):
            for side in ["cpu"] if kind == "cpu" else list(SIDES):
                cell = rows[(rows["model"] == model) & (rows["side"] == side)]
                label = f"{model}\n{side}"
                if cell.empty or cell["status"].iloc[0] != "ok":
                    reason = cell["reason"].iloc[0] if len(cell) else "not measured"
                    out.append(style.Slot(label, f"n/a: {reason}", SIDES[side]))
                else:
                    out.append(style.Slot(label, None, SIDES[side], cell.iloc[0]))
        return out

    def draw(ax, x: float, width: float, slot: style.Slot) -> None:
        v = slot.payload
        whiskers = [[v["joules_per_inference"] - v["joules_min"]], [v["joules_max"] - v["joules_per_inference"]]]
        ax.bar(x, v["joules_per_inference"], width=width, color=colors[v["side"]], yerr=whiskers)

    def ylim(slots: list[style.Slot]) -> tuple[float, float]:
        tops = [s.payload["joules_max"] for s in slots if s.reason is None]
        return 0.0, max(tops + [1e-3]) * 1.15

    style.panel_grid(
        table,
        png,
        slots=slots,
        draw_slot=draw,
        title="fig5: energy per inference, PyTorch eager, batch 1",
        legend=style.legend_for(list(SIDES.values()), dict(zip(SIDES.values(), colors.values()))),
        ylabel="energy per inference (J)",
        xlabel="model / counter",
        ylim=ylim,
    )
    return table


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw from the energy records."""
    import json

    plot([json.loads(Path(path).read_text()) for path in i["energy"]], o["png"], o["csv"])
