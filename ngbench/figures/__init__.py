"""Paper figures and tables from ``results/shares.parquet``: one spec each, one palette (the taxonomy's).

Every figure writes its data as CSV beside the PNG. Panels whose data cannot exist on this platform (no GPU)
or whose runs failed are drawn and marked with the reason, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ngbench import taxonomy as tax  # noqa: E402

DEVICE_PANELS = {"cpu": "CPU-only", "cuda": "CPU+GPU"}
NO_GPU = "no GPU on this platform"

# The paper's Table IV (platform A, GPU, mean over batch sizes): the most time-consuming non-GEMM group.
PAPER_TABLE4 = {
    "vit-b": ("Normalization", 14.0),
    "vit-l": ("Normalization", 13.3),
    "vit-h": ("Normalization", 11.2),
    "swin-t": ("Memory", 31.8),
    "swin-s": ("Memory", 33.1),
    "swin-b": ("Memory", 32.8),
    "fasterrcnn": ("Elementwise", 34.4),
    "maskrcnn": ("Elementwise", 33.6),
    "detr": ("Normalization", 34.8),
    "maskformer": ("Memory", 40.8),
    "segformer": ("Normalization", 17.4),
    "gpt2": ("Activation", 30.2),
    "gpt2-large": ("Activation", 29.9),
    "gpt2-xl": ("Activation", 28.1),
    "llama2": ("Normalization", 14.9),
    "bert": ("Normalization", 13.1),
    "mixtral": ("Memory", 43.1),
}


def _bar_label(row) -> str:
    label = f"{row.model}\nbs{int(row.batch_size)}"
    if row.layers is not None and row.full_depth is not None and row.layers == row.layers and row.layers != row.full_depth:
        label += f"\n{int(row.layers)}/{int(row.full_depth)}L"
    return label


def fig6_data(shares: pd.DataFrame, backend: str = "torch") -> pd.DataFrame:
    """Long table behind fig6: one row per platform/model/batch/group, share of the measured iteration."""
    df = shares[(shares["backend"] == backend) & ((shares["level"] == "group") | (shares["status"] != "ok"))]
    cols = ["platform", "device", "model", "batch_size", "seq_len", "layers", "full_depth", "weights", "status",
            "reason", "group", "ms_median", "pct_mean", "pct_median", "pct_p10", "pct_p90", "pct_of_ops_median",
            "latency_ms_median", "profiler_overhead_ratio"]
    return df.reindex(columns=cols).sort_values(["device", "platform", "model", "batch_size"]).reset_index(drop=True)


def plot_fig6(shares: pd.DataFrame, png: str | Path, csv: str | Path, backend: str = "torch") -> pd.DataFrame:
    taxonomy = tax.load()
    data = fig6_data(shares, backend)
    data.to_csv(csv, index=False)
    columns = list(DEVICE_PANELS)
    platforms = {dev: sorted(data.loc[data["device"] == dev, "platform"].unique()) for dev in columns}
    nrows = max(1, *(len(p) for p in platforms.values()))
    n_bars = max(1, data.groupby(["platform", "model", "batch_size"]).ngroups)
    sns.set_theme(style="whitegrid", font_scale=0.8)
    fig, axes = plt.subplots(
        nrows, len(columns), figsize=(max(8, 1.0 + 0.55 * n_bars) * 1.6, 4.2 * nrows), squeeze=False
    )
    palette = taxonomy.palette
    for c, dev in enumerate(columns):
        for r in range(nrows):
            ax = axes[r][c]
            if r >= len(platforms[dev]):
                _mark_missing(ax, NO_GPU if dev == "cuda" else "no CPU-only platform configured")
                ax.set_title(DEVICE_PANELS[dev])
                continue
            plat = platforms[dev][r]
            sub = data[data["platform"] == plat]
            _stacked(ax, sub, taxonomy, palette)
            ax.set_title(f"{DEVICE_PANELS[dev]} - platform {plat} - backend {backend}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[g]) for g in taxonomy.order]
    fig.legend(handles, taxonomy.order, loc="upper center", ncol=min(7, len(handles)), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return data


def _stacked(ax, sub: pd.DataFrame, taxonomy: tax.Taxonomy, palette: dict[str, str]) -> None:
    bars = sub.drop_duplicates(["model", "batch_size"]).sort_values(["model", "batch_size"])
    labels, x = [], 0
    for bar in bars.itertuples():
        labels.append(_bar_label(bar))
        if bar.status != "ok":
            ax.bar(x, 100, color="white", edgecolor="#999999", hatch="//")
            ax.text(x, 50, f"failed:\n{bar.reason[:60]}", ha="center", va="center", rotation=90, fontsize=6)
            x += 1
            continue
        cell = sub[(sub["model"] == bar.model) & (sub["batch_size"] == bar.batch_size)].set_index("group")
        bottom = 0.0
        for group in taxonomy.order:
            if group in cell.index:
                v = float(cell.loc[group, "pct_mean"])
                ax.bar(x, v, bottom=bottom, color=palette[group], edgecolor="white", linewidth=0.3)
                bottom += v
        x += 1
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of measured iteration time (%, mean)")
    ax.set_xlabel("model / batch size")


def _mark_missing(ax, reason: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#666666")
    for side in ax.spines.values():
        side.set_linestyle("--")


def table4(shares: pd.DataFrame, backend: str = "torch") -> pd.DataFrame:
    """Most time-consuming non-GEMM group per platform/model, mean share over batch sizes (as the paper)."""
    taxonomy = tax.load()
    df = shares[(shares["backend"] == backend) & (shares["level"] == "group") & (shares["status"] == "ok")]
    df = df[~df["group"].map(taxonomy.is_gemm) & (df["group"] != tax.IDLE)]
    rows = []
    for (plat, dev, model), sub in df.groupby(["platform", "device", "model"]):
        mean = sub.groupby("group")["pct_median"].mean().sort_values(ascending=False)
        mean_ops = sub.groupby("group")["pct_of_ops_median"].mean()
        paper = PAPER_TABLE4.get(model)
        rows.append(
            {
                "platform": plat,
                "device": dev,
                "model": model,
                "batch_sizes": ",".join(str(b) for b in sorted(sub["batch_size"].unique())),
                "top_group": mean.index[0],
                "pct_of_iteration": round(float(mean.iloc[0]), 1),
                "pct_of_op_time": round(float(mean_ops[mean.index[0]]), 1),
                "second_group": mean.index[1] if len(mean) > 1 else "",
                "second_pct": round(float(mean.iloc[1]), 1) if len(mean) > 1 else None,
                "paper_group_A_gpu": paper[0] if paper else "",
                "paper_pct_A_gpu": paper[1] if paper else None,
            }
        )
    failed = shares[(shares["backend"] == backend) & (shares["status"] != "ok")]
    for r in failed.drop_duplicates(["platform", "model"]).itertuples():
        rows.append({"platform": r.platform, "device": r.device, "model": r.model, "top_group": f"failed: {r.reason}"})
    return pd.DataFrame(rows)


def write_table(df: pd.DataFrame, csv: str | Path, md: str | Path, title: str, notes: str) -> None:
    df.to_csv(csv, index=False)
    body = df.to_markdown(index=False) if not df.empty else "(no data)"
    Path(md).write_text(f"# {title}\n\n{body}\n\n{notes}\n")


TABLE4_NOTES = (
    "pct_of_iteration: share of the measured (profiled) iteration time, idle included; pct_of_op_time: share of "
    "the time attributed to operators (the paper's denominator). Mean over the batch sizes present. The paper's "
    "column is its Table IV (platform A, A100, CPU+GPU); compare like with like (device column)."
)


# Where a Table II value cannot be right, say why (checked against the architecture, not against our code).
TABLE2_NOTES = {
    "vit-b": "paper value looks wrong: ViT-B/16 has about 86M parameters (307M is ViT-L/16's count)",
    "gpt2": "117M is the GPT-2 paper's original figure; OpenAI later relabeled the checkpoint 124M",
}


def table2(specs: dict, count) -> pd.DataFrame:
    """Parameter count of each registered model from its full-depth config, beside the paper's Table II."""
    rows = []
    for name, spec in specs.items():
        params = count(spec)
        paper = spec.paper_params
        rows.append(
            {
                "model": name,
                "paper_name": spec.paper_name,
                "task": spec.task,
                "source": spec.hf_id or f"torchvision {spec.builder}",
                "parameters": params,
                "parameters_M": round(params / 1e6, 1),
                "paper_M": round(paper / 1e6, 1) if paper else None,
                "ratio_to_paper": round(params / paper, 3) if paper else None,
                "note": TABLE2_NOTES.get(name, "" if paper else "not in the paper's Table II"),
            }
        )
    return pd.DataFrame(rows)


TABLE2_TEXT = (
    "parameters: counted on PyTorch's meta device from the full-depth architecture config in the registry "
    "(no weights needed). paper_M: the paper's Table II. The paper rounds, and counts some models without their "
    "task heads or tied embeddings, so ratios near 1 agree."
)
