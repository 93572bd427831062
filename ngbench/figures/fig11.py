"""fig11: per model and backend, the measured GEMM / non-GEMM / idle time of an iteration beside the same
ops at their roofs (idle left out, ops without a work model at their measured time): how much of the
non-GEMM problem is the hardware's and how much is software's. One panel per platform."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ngbench import names  # noqa: E402
from ngbench import taxonomy as tax  # noqa: E402
from ngbench.figures import style  # noqa: E402

COLUMNS = ["platform", "model", "batch_size", "backend", "basis", "GEMM", "non-GEMM", "Idle", "coverage", "limits"]


def data(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == names.STATUS_OK]
    rows = []
    for r in ok.itertuples():
        common = {"platform": r.platform, "model": r.model, "batch_size": r.batch_size, "backend": r.backend,
                  "coverage": r.coverage, "limits": r.limits}  # fmt: skip
        rows.append({**common, "basis": "measured", "GEMM": r.gemm_ms, "non-GEMM": r.non_gemm_ms, "Idle": r.idle_ms})
        rows.append({**common, "basis": "at roof", "GEMM": r.gemm_roof_ms, "non-GEMM": r.non_gemm_roof_ms, "Idle": 0.0})
    return pd.DataFrame(rows, columns=COLUMNS)


def plot(runs: pd.DataFrame, png: str | Path, csv: str | Path) -> pd.DataFrame:
    taxonomy = tax.load()
    table = data(runs)
    table.to_csv(csv, index=False)
    sns.set_theme(style="whitegrid", font_scale=0.8)
    platforms = sorted(table["platform"].unique()) if len(table) else []
    colors = taxonomy.class_palette
    if not platforms:
        fig, ax = plt.subplots(figsize=(6, 2))
        style.mark_missing(ax, "no measured run to set against its roofs")
        fig.savefig(png, dpi=130)
        plt.close(fig)
        return table
    heights = [table[table["platform"] == p].drop_duplicates(["model", "batch_size", "backend"]).shape[0]
               for p in platforms]  # fmt: skip
    fig, axes = plt.subplots(len(platforms), 1, figsize=(9, 1.2 + sum(0.42 * h + 0.6 for h in heights)),
                             squeeze=False, gridspec_kw={"height_ratios": [h + 1 for h in heights]})  # fmt: skip
    for ax, platform in zip(axes[:, 0], platforms):
        rows = table[table["platform"] == platform]
        keys = rows.drop_duplicates(["model", "batch_size", "backend"])[["model", "batch_size", "backend"]]
        labels, y = [], 0.0
        for k in keys.itertuples(index=False):
            pair = rows[
                (rows["model"] == k.model) & (rows["batch_size"] == k.batch_size) & (rows["backend"] == k.backend)
            ]
            for basis, offset, hatch in (("measured", 0.2, None), ("at roof", -0.2, "//")):
                r = pair[pair["basis"] == basis].iloc[0]
                left = 0.0
                for cls, color_key in (("GEMM", tax.GEMM), ("non-GEMM", names.NON_GEMM), ("Idle", tax.IDLE)):
                    ax.barh(y + offset, r[cls], left=left, height=0.38, color=colors[color_key], hatch=hatch,
                            edgecolor="white" if hatch is None else "#333333", linewidth=0.3)  # fmt: skip
                    left += r[cls]
            labels.append(f"{k.model} bs{k.batch_size} {k.backend} (coverage {100 * pair['coverage'].iloc[0]:.0f}%)")
            y += 1
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("ms per iteration (upper bar measured, hatched lower bar at the roof)")
        ax.set_title(f"platform {platform} (roofs: {rows['limits'].iloc[0]})", fontsize=9)
    handles, names_ = style.legend_for([tax.GEMM, names.NON_GEMM, tax.IDLE], colors)
    fig.legend(handles, names_, loc="upper center", ncol=3, frameon=False)
    fig.suptitle("fig11: measured iteration vs every op at its roof", y=0.998, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return table
