"""fig11: per model and backend, the measured GEMM / non-GEMM / idle time of an iteration beside the same
ops at their roofs (idle left out, ops without a work model at their measured time): how much of the
non-GEMM problem is the hardware's and how much is software's. One panel per platform; bars are % of the
measured iteration, each label gives the iteration and the share of non-GEMM / GEMM time with a work model."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ngbench import names
from ngbench import taxonomy as tax
from ngbench.figures import style

COLUMNS = ["platform", "model", "batch_size", "backend", "basis", "GEMM", "non-GEMM", "Idle", "coverage",
           "gemm_coverage", "limits"]  # fmt: skip


def data(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == names.STATUS_OK]
    rows = []
    for r in ok.itertuples():
        common = {"platform": r.platform, "model": r.model, "batch_size": r.batch_size, "backend": r.backend,
                  "coverage": r.coverage, "gemm_coverage": r.gemm_coverage, "limits": r.limits}  # fmt: skip
        rows.append({**common, "basis": "measured", "GEMM": r.gemm_ms, "non-GEMM": r.non_gemm_ms, "Idle": r.idle_ms})
        rows.append({**common, "basis": "at roof", "GEMM": r.gemm_roof_ms, "non-GEMM": r.non_gemm_roof_ms, "Idle": 0.0})
    return pd.DataFrame(rows, columns=COLUMNS)


TITLE = "fig11: measured iteration vs every op at its roof"


def plot(runs: pd.DataFrame, png: str | Path, csv: str | Path) -> pd.DataFrame:
    taxonomy = tax.load()
    table = data(runs)
    table.to_csv(csv, index=False)
    sns.set_theme(style="whitegrid", font_scale=0.9)
    platforms = sorted(table["platform"].unique()) if len(table) else []
    colors = taxonomy.class_palette
    if not platforms:
        style.empty_figure(png, TITLE, ["no measured run to set against its roofs"])
        return table
    heights = [table[table["platform"] == p].drop_duplicates(["model", "batch_size", "backend"]).shape[0]
               for p in platforms]  # fmt: skip
    height = 1.1 + sum(0.36 * h + 0.8 for h in heights)
    fig, axes = plt.subplots(len(platforms), 1, figsize=(11, height), squeeze=False,
                             gridspec_kw={"height_ratios": [h + 1 for h in heights]})  # fmt: skip
    for ax, platform in zip(axes[:, 0], platforms):
        rows = table[table["platform"] == platform]
        keys = rows.drop_duplicates(["model", "batch_size", "backend"])[["model", "batch_size", "backend"]]
        labels = []
        for y, k in enumerate(keys.itertuples(index=False)):
            same = (rows["model"] == k.model) & (rows["batch_size"] == k.batch_size) & (rows["backend"] == k.backend)
            pair = rows[same]
            measured = pair[pair["basis"] == "measured"].iloc[0]
            total = measured[["GEMM", "non-GEMM", "Idle"]].sum()
            for basis, offset, hatch in (("measured", -0.2, None), ("at roof", 0.2, "//")):
                r = pair[pair["basis"] == basis].iloc[0]
                left = 0.0
                for cls, color_key in (("GEMM", tax.GEMM), ("non-GEMM", names.NON_GEMM), ("Idle", tax.IDLE)):
                    width = 100 * r[cls] / total if total else 0.0
                    ax.barh(y + offset, width, left=left, height=0.38, color=colors[color_key], hatch=hatch,
                            edgecolor="white" if hatch is None else "#333333", linewidth=0.3)  # fmt: skip
                    left += width
                if basis == "at roof":
                    ax.text(left + 1, y + offset, f"{left:.0f}%", va="center", fontsize=8)
            shares = pair[["coverage", "gemm_coverage"]].iloc[0]
            known = "/".join(f"{100 * v:.0f}%" if pd.notna(v) else "-" for v in shares)
            labels.append(f"{k.model} bs{k.batch_size} {k.backend}: {total:.1f} ms, work known {known}")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 110)
        ax.set_xlabel("% of the measured iteration: upper bar measured, hatched the same ops at their roofs")
        ax.set_title(f"platform {platform} (roofs: {rows['limits'].iloc[0]})", fontsize=9)
    handles, names_ = style.legend_for([tax.GEMM, names.NON_GEMM, tax.IDLE], colors)
    fig.suptitle(TITLE, y=1 - 0.05 / height, va="top", fontsize=10)
    fig.legend(handles, names_, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.3 / height), ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / height))
    fig.savefig(png, dpi=style.DPI)
    plt.close(fig)
    return table


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: draw the horizon's per-run table."""
    plot(pd.read_csv(i["runs"]), o["png"], o["csv"])
