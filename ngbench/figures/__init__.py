"""Paper figures and tables from ``results/shares.parquet``: one spec each, one palette (the taxonomy's).

Every figure writes its data as CSV beside the PNG. Panels whose data cannot exist on this platform (no GPU)
or whose runs failed are drawn and marked with the reason, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ngbench import taxonomy as tax  # noqa: E402

DEVICE_PANELS = {"cpu": "CPU-only", "cuda": "CPU+GPU"}
NO_GPU = "no GPU on this platform"
NON_GEMM_COLOR = "#c44e52"  # the class-level figures' non-GEMM bar (groups keep the taxonomy's colours)
FUSED_MIXED_COLOR = "#9c9ede"  # kernels/layers doing GEMM and non-GEMM work together

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


HOST_TIMED = "host-timed"  # a GPU cell whose op times are host-side (see shares.host_timed)


def _bar_label(row) -> str:
    label = f"{row.model}\nbs{int(row.batch_size)}"
    if row.layers is not None and row.full_depth is not None and row.layers == row.layers and row.layers != row.full_depth:
        label += f"\n{int(row.layers)}/{int(row.full_depth)}L"
    host_timed = getattr(row, "host_timed", False)
    if isinstance(host_timed, bool | np.bool_) and host_timed:  # NaN for cells without a run
        label += f"\n{HOST_TIMED}"
    return label


def fig6_data(shares: pd.DataFrame, backend: str = "torch") -> pd.DataFrame:
    """Long table behind fig6: one row per platform/model/batch/group, share of the measured iteration."""
    df = shares[(shares["backend"] == backend) & ((shares["level"] == "group") | (shares["status"] != "ok"))]
    cols = ["platform", "device", "model", "batch_size", "seq_len", "layers", "full_depth", "weights", "status",
            "reason", "group", "ms_median", "pct_mean", "pct_median", "pct_p10", "pct_p90", "pct_of_ops_median",
            "latency_ms_median", "profiler_overhead_ratio", "time_basis", "host_timed"]
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
    # a panel's width follows its bars; a panel without data stays narrow
    bars = [max(1, data[data["device"] == dev].groupby(["platform", "model", "batch_size"]).ngroups) for dev in columns]
    widths = [b if platforms[dev] else max(3, 0.25 * n_bars) for b, dev in zip(bars, columns)]
    fig, axes = plt.subplots(
        nrows,
        len(columns),
        figsize=(max(9, 2.0 + 0.62 * sum(widths)), 4.6 * nrows),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
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
    bars = []
    for bar in sub.drop_duplicates(["model", "batch_size"]).sort_values(["model", "batch_size"]).itertuples():
        cell = sub[(sub["model"] == bar.model) & (sub["batch_size"] == bar.batch_size)]
        bars.append((_bar_label(bar), cell, bar.status, bar.reason))
    _draw_bars(ax, bars, taxonomy.order, palette)
    ax.set_xlabel("model / batch size")


def _draw_bars(ax, bars: list[tuple[str, pd.DataFrame | None, str, str | None]], order, palette) -> None:
    """Stacked 100% bars: (label, rows with ``group`` and ``pct_mean``, status, reason). A failed or
    missing bar is hatched and says why."""
    for x, (_, cell, status, reason) in enumerate(bars):
        if status != "ok" or cell is None:
            ax.bar(x, 100, color="white", edgecolor="#999999", hatch="//")
            text = f"{status}:\n{(reason or '')[:60]}" if status in ("failed", "skipped") else (reason or "not run")
            ax.text(x, 50, text, ha="center", va="center", rotation=90, fontsize=6)
            continue
        cell = cell.set_index("group")
        bottom = 0.0
        for group in order:
            if group in cell.index:
                v = float(cell.loc[group, "pct_mean"])
                ax.bar(x, v, bottom=bottom, color=palette[group], edgecolor="white", linewidth=0.3)
                bottom += v
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of measured iteration time (%, mean)")


FIG7_BACKENDS = ["torch", "ort", "ort-opt"]


def plot_fig7(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    """fig7: PyTorch vs ONNX Runtime group shares on the LLMs, ORT with and without graph optimizations."""
    return _plot_shares(
        shares,
        png,
        csv,
        models=models,
        backends=FIG7_BACKENDS,
        title="fig7: PyTorch eager vs ONNX Runtime (ort: graph optimizations off; ort-opt: ORT_ENABLE_ALL)",
    )


def _plot_shares(
    shares: pd.DataFrame,
    png: str | Path,
    csv: str | Path,
    *,
    models: list[str],
    backends: list[str],
    title: str,
    level: str = "group",
) -> pd.DataFrame:
    """A backend comparison drawn from shares.parquet: operator groups (``level="group"``) or GEMM /
    non-GEMM / Idle (``level="class"``)."""
    taxonomy = tax.load()
    df = shares[shares["model"].isin(models) & shares["backend"].isin(backends)]
    data = complete_cells(df[(df["level"] == level) | (df["status"] != "ok")], backends)
    data.to_csv(csv, index=False)
    if level == "class":
        order, palette = [tax.GEMM, "non-GEMM", tax.IDLE], _class_palette(taxonomy)
    else:
        order, palette = taxonomy.order, taxonomy.palette
    plot_comparison(data, png, order=order, palette=palette, title=title)
    return data


FIG8_BACKENDS = ["torch", "inductor", "trt"]
FIG8_GPU_ONLY = {"trt": "TensorRT needs a GPU"}


def plot_fig8(op_tables: list[str], png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    """fig8: GEMM vs non-GEMM time under PyTorch eager, TorchInductor and TensorRT; fused kernels that do
    GEMM and non-GEMM work are their own class, never counted as pure GEMM."""
    from ngbench import fusion

    taxonomy = tax.load()
    data = complete_cells(fusion.fig8_data(op_tables, models, FIG8_BACKENDS), FIG8_BACKENDS)
    data.to_csv(csv, index=False)
    palette = {
        tax.GEMM: taxonomy.palette[tax.GEMM],
        fusion.FUSED_MIXED: FUSED_MIXED_COLOR,
        fusion.NON_GEMM: NON_GEMM_COLOR,
        tax.IDLE: taxonomy.palette[tax.IDLE],
    }
    plot_comparison(
        data,
        png,
        order=fusion.CLASSES,
        palette=palette,
        title="fig8: operator fusion - PyTorch eager vs TorchInductor vs TensorRT (share of the measured iteration)",
        gpu_only=FIG8_GPU_ONLY,
    )
    return data


COMPARISON_COLUMNS = ["platform", "device", "backend", "model", "batch_size", "seq_len", "layers", "full_depth",
                      "weights", "status", "reason", "group", "ms_median", "pct_mean", "pct_median", "pct_p10",
                      "pct_p90", "latency_ms_median", "iteration_ms_median", "profiler_overhead_ratio", "time_basis",
                      "host_timed"]


def complete_cells(df: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """Add a ``missing`` row for every (platform, model, batch) that lacks one of ``backends``, and order
    the bars backend by backend."""
    df = df.reindex(columns=COMPARISON_COLUMNS)
    present = df.drop_duplicates(["platform", "device", "model", "batch_size"])
    have = set(zip(df["platform"], df["model"], df["batch_size"], df["backend"]))
    missing = [
        {"platform": c.platform, "device": c.device, "backend": b, "model": c.model, "batch_size": c.batch_size,
         "seq_len": c.seq_len, "layers": c.layers, "full_depth": c.full_depth, "status": "missing",
         "reason": f"{b} not run"}
        for c in present.itertuples()
        for b in backends
        if (c.platform, c.model, c.batch_size, b) not in have
    ]
    if missing:
        df = pd.concat([df, pd.DataFrame(missing)], ignore_index=True)
    df["backend"] = pd.Categorical(df["backend"], categories=backends, ordered=True)
    return df.sort_values(["device", "platform", "model", "batch_size", "backend"]).reset_index(drop=True)


def plot_comparison(
    data: pd.DataFrame,
    png: str | Path,
    *,
    order: list[str],
    palette: dict[str, str],
    title: str,
    gpu_only: dict[str, str] | None = None,
) -> None:
    """One stacked bar per (model, batch, backend), CPU-only and CPU+GPU panels, one row per platform.
    ``gpu_only`` names backends that cannot run on a CPU-only platform, with the reason drawn instead."""
    platforms = {dev: sorted(data.loc[data["device"] == dev, "platform"].unique()) for dev in DEVICE_PANELS}
    nrows = max(1, *(len(p) for p in platforms.values()))
    keys = ["platform", "model", "batch_size", "backend"]
    per_panel = data.drop_duplicates(keys).groupby(["device", "platform"]).size()
    bars = [int(per_panel[dev].max()) if dev in per_panel.index.get_level_values(0) else 1 for dev in DEVICE_PANELS]
    # a panel's width follows its bars; a panel without data stays narrow
    widths = [b if platforms[dev] else max(3, 0.25 * sum(bars)) for b, dev in zip(bars, DEVICE_PANELS)]
    sns.set_theme(style="whitegrid", font_scale=0.8)
    fig, axes = plt.subplots(
        nrows,
        2,
        figsize=(max(9, 2.0 + 0.75 * sum(widths)), 4.8 * nrows),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for c, dev in enumerate(DEVICE_PANELS):
        for r in range(nrows):
            ax = axes[r][c]
            if r >= len(platforms[dev]):
                _mark_missing(ax, NO_GPU if dev == "cuda" else "no CPU-only platform configured")
                ax.set_title(DEVICE_PANELS[dev])
                continue
            plat = platforms[dev][r]
            bars = []
            for key, cell in data[data["platform"] == plat].groupby(["model", "batch_size", "backend"], observed=True):
                first = cell.iloc[0]
                status, reason = first["status"], first["reason"]
                if dev == "cpu" and gpu_only and key[2] in gpu_only and status == "missing":
                    reason = gpu_only[key[2]]
                bars.append((f"{_bar_label(first)}\n{key[2]}", cell if status == "ok" else None, status, reason))
            _draw_bars(ax, bars, order, palette)
            ax.set_xlabel("model / batch size / backend")
            ax.set_title(f"{DEVICE_PANELS[dev]} - platform {plat}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[g]) for g in order]
    fig.suptitle(title, y=0.99, fontsize=10)
    fig.legend(
        handles, order, loc="upper center", bbox_to_anchor=(0.5, 0.95), ncol=min(7, len(handles)), frameon=False
    )
    fig.tight_layout(rect=(0, 0, 1, 0.84))
    fig.savefig(png, dpi=130)
    plt.close(fig)


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
        paper = spec.paper_params
        note = TABLE2_NOTES.get(name, "" if paper else "not in the paper's Table II")
        try:
            params = count(spec)
        except Exception as exc:  # noqa: BLE001 - a broken entry is reported in its row, not fatal
            params, note = None, f"cannot build: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        rows.append(
            {
                "model": name,
                "paper_name": spec.paper_name,
                "task": spec.task,
                "source": spec.hf_id or f"torchvision {spec.builder}",
                "parameters": params,
                "parameters_M": round(params / 1e6, 1) if params else None,
                "paper_M": round(paper / 1e6, 1) if paper else None,
                "ratio_to_paper": round(params / paper, 3) if paper and params else None,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


TABLE2_TEXT = (
    "parameters: counted on PyTorch's meta device from the full-depth architecture config in the registry "
    "(no weights needed). paper_M: the paper's Table II. The paper rounds, and counts some models without their "
    "task heads or tied embeddings, so ratios near 1 agree."
)


# The paper's Table I: operator, model, characteristics (single operation, single operand, non-linearity,
# dynamicity, reduction) and the example input shape it printed. `match` says how to find the operator in our
# op tables: aten op names, or `module:<Class>` for operators that are modules (the first op of each call).
# `runs` lists our runs (model@bs<batch>) to look in, in order of preference: the paper's debug-size variant
# (configured as a model with `base:`) or batch size first.
CHARACTERISTICS = ("single_operation", "single_operand", "non_linearity", "dynamicity", "reduction")
_ACT, _NORM, _EW, _MEM, _LOGIT = (0, 1, 1, 0, 0), (0, 1, 1, 0, 1), (1, 0, 0, 0, 0), (1, 1, 0, 0, 0), (1, 1, 1, 0, 1)
PAPER_TABLE1 = [
    ("Activation", "ReLU", "DETR", ["detr@bs2", "detr@bs1"], "aten::relu|aten::relu_", (1, 1, 0, 0, 0), "[2,64,533]"),
    ("Activation", "GELU", "ViT-l16", ["vit-l@bs1"], "aten::gelu", _ACT, "[1,97,4096]"),
    ("Activation", "GELU", "GPT2-XL", ["gpt2-xl-t1@bs1", "gpt2-xl@bs1"], "module:NewGELUActivation", _ACT, "[1,8,6400]"),
    ("Activation", "SiLU", "Llama-2", ["llama2-t1@bs1", "llama2@bs1"], "aten::silu", _ACT, "[1,10,11008]"),
    ("Normalization", "LayerNorm", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::layer_norm", _NORM, "[2,16384,32]"),
    ("Normalization", "BatchNorm2d", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::batch_norm", _NORM, "[2,256,128,128]"),
    ("Normalization", "LlamaRMSNorm", "Llama", ["llama2-t1@bs1", "llama2@bs1"], "module:LlamaRMSNorm", _NORM, "[1,10,4096]"),
    ("Normalization", "FrozenBatchNorm2d", "MaskRCNN", ["maskrcnn@bs1"], "module:FrozenBatchNorm2d", _NORM,
     "[1,1024,50,68]"),
    ("Normalization", "FrozenBatchNorm2d", "DETR", ["detr@bs1", "detr@bs2"], "module:DetrFrozenBatchNorm2d", _NORM,
     "[1,2048,25,34]"),
    ("Normalization", "LayerNorm", "DETR", ["detr@bs2", "detr@bs1"], "aten::layer_norm", _NORM, "[2,850,256]"),
    ("Elementwise", "Add", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::add|aten::add_", _EW, "[2,16384,32]"),
    ("Elementwise", "Mul", "Llama-2", ["llama2-t1@bs1", "llama2@bs1"], "aten::mul", _EW, "[1,10,11008]"),
    ("Elementwise", "Neg", "Llama-2", ["llama2-t1@bs1", "llama2@bs1"], "aten::neg", _EW, "[1,32,10,64]"),
    ("Elementwise", "TrueDiv", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::div", _EW, "[2,1,16384,256]"),
    ("Elementwise", "TrueDiv", "GPT2-XL", ["gpt2-xl-t1@bs1", "gpt2-xl@bs1"], "aten::div", _EW, "[1,25,8,8]"),
    ("Memory", "Contiguous", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::contiguous", _MEM, "[2,32,128,128]"),
    ("Memory", "Contiguous", "Llama-2", ["llama2-t1@bs1", "llama2@bs1"], "aten::contiguous", _MEM, "[1,10,32,128]"),
    ("Memory", "Permute", "ViT-b16", ["vit-b@bs1"], "aten::permute", _MEM, "[1,768,196]"),
    ("Memory", "Permute", "GPT2-XL", ["gpt2-xl-t1@bs1", "gpt2-xl@bs1"], "aten::permute", _MEM, "[1,8,25,64]"),
    ("Memory", "Split", "GPT2-XL", ["gpt2-xl-t1@bs1", "gpt2-xl@bs1"], "aten::split", _MEM, "[1,8,4800]"),
    ("Memory", "View", "GPT2-XL", ["gpt2-xl-t1@bs1", "gpt2-xl@bs1"], "aten::view", _MEM, "[1,8,1600]"),
    ("Memory", "Reshape", "ViT-b16", ["vit-b@bs1"], "aten::reshape", _MEM, "[1,768,14,14]"),
    ("Memory", "Expand", "ViT-b16", ["vit-b@bs1"], "aten::expand", _MEM, "[1,1,768]"),
    ("Memory", "Squeeze", "Llama-2", ["llama2-t1@bs1", "llama2@bs1"], "aten::squeeze|aten::unsqueeze", _MEM, "[1,1,10,128]"),
    ("Logit", "Softmax", "DETR", ["detr@bs2", "detr@bs1"], "aten::softmax", _LOGIT, "[1,25,8,8]"),
    ("Logit", "Softmax", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::softmax", _LOGIT, "[2,1,16384,256]"),
    ("RoI", "NMS", "MaskRCNN", ["maskrcnn@bs1"], "torchvision::nms", (0, 0, 0, 1, 0), "[4663,4]"),
    ("Interpolation", "Interpolate", "Segformer", ["segformer@bs2", "segformer@bs1"], "aten::upsample_bilinear2d", (0, 1, 0, 0, 0),
     "[2,256,128,128]"),
]


def _first_input(shapes: str) -> str:
    import json

    try:
        dims = json.loads(shapes) if shapes else []
    except ValueError:
        return ""
    first = next((d for d in dims if d), None)
    return json.dumps(first, separators=(",", ":")) if first is not None else ""


def _numel(shape: str) -> int:
    import json
    import math

    return math.prod(json.loads(shape)) if shape else -1


def _observed_shapes(df: pd.DataFrame, match: str) -> pd.Series:
    """First-input shapes of the matching operator, one per instance. For operators that are modules, one
    per module call: the largest first input among the call's ops (the activation, not a weight or scale)."""
    if match.startswith("module:"):
        cls = match.split(":", 1)[1]
        inside = df[df["module_type"] == cls]
        call = (inside["module"] != inside["module"].shift()) | (inside["seq"].diff() != 1)
        shapes = inside["input_shapes"].map(_first_input)
        per_call = shapes.groupby(call.cumsum().values)
        return per_call.agg(lambda s: max(s, key=_numel) if len(s) else "")
    return df.loc[df["op"].isin(match.split("|")), "input_shapes"].map(_first_input)


def table1(ops: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the paper's Table I rows beside what our runs observed, every non-GEMM op of every run).

    ``ops``: run label ``<model>@bs<batch>`` -> op table (one iteration is enough: shapes repeat)."""
    taxonomy = tax.load()
    rows = []
    for group, operator, paper_model, runs, match, flags, paper_shape in PAPER_TABLE1:
        run = next((r for r in runs if r in ops), None)
        row = {"group": group, "operator": operator, "model": paper_model, **dict(zip(CHARACTERISTICS, flags)),
               "paper_shape": paper_shape, "run": run or "", "observed_shapes": "", "paper_shape_observed": None}
        if run is not None:
            df = ops[run]
            counts = _observed_shapes(df[df["iteration"] == df["iteration"].min()], match).value_counts()
            counts = counts[counts.index != ""]
            row["observed_shapes"] = "; ".join(f"{s} x{n}" for s, n in counts.head(3).items())
            row["paper_shape_observed"] = paper_shape in set(counts.index)
            row["run_batch_seq"] = f"bs{int(df['batch_size'].iloc[0])}" + (
                f" seq{int(df['seq_len'].iloc[0])}" if pd.notna(df["seq_len"].iloc[0]) else ""
            )
        rows.append(row)
    every = []
    for run, df in sorted(ops.items()):
        first = df[(df["iteration"] == df["iteration"].min()) & (df["group"] != tax.IDLE)]
        first = first[~first["group"].map(taxonomy.is_gemm)]
        for (group, op), sub in first.groupby(["group", "op"]):
            shapes = sub["input_shapes"].map(_first_input)
            shapes = shapes[shapes != ""]
            every.append({"run": run, "group": group, "op": op, "instances_per_iteration": len(sub),
                          "example_input_shape": shapes.value_counts().index[0] if len(shapes) else "",
                          "modules": ",".join(sorted(set(sub["module_type"]) - {""}))[:120]})
    return pd.DataFrame(rows), pd.DataFrame(every)


TABLE1_NOTES = (
    "Characteristics are the paper's. observed_shapes: the three most frequent first-input shapes of that operator "
    "in one measured iteration of our run (for operators that are modules, the input of each module call); "
    "paper_shape_observed says whether the paper's shape is among all shapes we saw. Runs named *-t1 use the "
    "paper's debug sizes (GPT2-XL seq 8, Llama-2 seq 10). Known differences: ViT-L/16 at 224x224 "
    "has 197 tokens, not the paper's 97; the paper's DETR Softmax shape [1,25,8,8] equals its GPT2-XL TrueDiv "
    "shape and is probably a copy error; NMS input sizes depend on the weights' proposals; DETR's ReLU "
    "[2,64,533] matches no layer of DETR-R50 at 800x1066; transformers 5 scales attention scores by multiplication "
    "(no TrueDiv) and splits GPT-2 heads with view/transpose (no Permute). An empty observed_shapes means the "
    "operator does not occur in that run. table1_ops.csv lists every non-GEMM operator of every run."
)


# The paper's Table V (platform A, PyTorch -> TensorRT): fusion rate; non-GEMM ms (share) before -> after.
PAPER_TABLE5 = {
    "swin-t": (8.8, 7.53, 56.4, 0.97, 39.0),
    "swin-b": (7.0, 14.59, 56.4, 1.65, 32.3),
    "detr": (30.0, 32.17, 66.4, 2.38, 18.5),
    "segformer": (27.0, 5.57, 41.0, 2.33, 41.0),
}
TABLE5_NOTES = (
    "Before: PyTorch eager; after: the fused backend, same platform, model and batch; medians over measured "
    "iterations. fusion_rate = fused non-GEMM ops / the model's non-GEMM ops (ONNX export for TensorRT, "
    "post-grad graph for Inductor), chosen as the headline because its denominator does not depend on what a "
    "backend kept; the CSV holds all eight rates the original code printed, labelled, and the counts. "
    "fused_gemm_non_gemm_ms: time of kernels/layers that do GEMM and non-GEMM work together (not in "
    "non_gemm_ms_after). Batch norm: BN ops fused with a GEMM (Conv+BN+ReLU) / with non-GEMM ops / unfused. "
    "TensorRT's 'after' is the sum of per-layer times (layers synchronized one by one). The paper's columns: "
    "Table V, platform A (A100), PyTorch -> TensorRT; compare like with like."
)


def table5(op_tables: list[str]) -> pd.DataFrame:
    from ngbench import fusion

    full = fusion.table5(op_tables)
    if full.empty:
        return full
    rows = []
    for r in full.to_dict("records"):
        paper = PAPER_TABLE5.get(r["model"])
        row = {k: r.get(k) for k in ("platform", "model", "batch_size", "backend", "status")}
        if r["status"] != "ok":
            row["reason"] = r["reason"]
        else:
            row.update(
                fusion_rate_pct=round(r["fusion_rate"], 1),
                non_gemm_before=f"{r['non_gemm_ms_before']:.2f} ms ({r['non_gemm_pct_before']:.1f}%)",
                non_gemm_after=f"{r['non_gemm_ms_after']:.2f} ms ({r['non_gemm_pct_after']:.1f}%)",
                non_gemm_speedup=round(r["non_gemm_speedup"], 2),
                fused_gemm_non_gemm_ms=round(r["fused_gemm_non_gemm_ms_after"], 2),
                batch_norm_with_gemm_with_non_gemm_unfused=(
                    f"{int(r['batch_norm: fused_with_gemm'])}/{int(r['batch_norm: fused_with_non_gemm'])}/"
                    f"{int(r['batch_norm: not_fused'])}"
                ),
            )
        if paper:
            row["paper (rate; before -> after)"] = (
                f"{paper[0]}%; {paper[1]} ms ({paper[2]}%) -> {paper[3]} ms ({paper[4]}%)"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _class_palette(taxonomy: tax.Taxonomy) -> dict[str, str]:
    return {tax.GEMM: taxonomy.palette[tax.GEMM], "non-GEMM": NON_GEMM_COLOR, tax.IDLE: taxonomy.palette[tax.IDLE]}


def plot_fig1(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    """fig1: GEMM vs non-GEMM split at batch 1 under PyTorch eager, CPU-only and CPU+GPU."""
    return _plot_shares(
        shares[shares["batch_size"] == 1],
        png,
        csv,
        models=models,
        backends=["torch"],
        title="fig1: GEMM vs non-GEMM share of the measured iteration, batch 1, PyTorch eager",
        level="class",
    )


FIG9_BACKENDS = ["torch", "torch-int8"]


def plot_fig9(shares: pd.DataFrame, png: str | Path, csv: str | Path, *, models: list[str]) -> pd.DataFrame:
    """fig9: fp32/fp16 (torch) vs LLM.int8 (torch-int8) on the same checkpoint, per sequence length."""
    return _plot_shares(
        shares,
        png,
        csv,
        models=models,
        backends=FIG9_BACKENDS,
        title="fig9: fp (torch) vs LLM.int8 (torch-int8), same checkpoint, per sequence length",
    )


def fig9_summary(op_tables: list[str]) -> pd.DataFrame:
    """What the paper reports about LLM.int8, from our runs: non-GEMM share fp vs int8 per sequence length,
    GEMM and non-GEMM latency change, Quantization time, extra non-GEMM operator instances per forward."""
    from ngbench import table as optable

    taxonomy = tax.load()
    rows = []
    for (platform, model, bs), backends in sorted(optable.read_runs(op_tables).items(), key=lambda kv: str(kv[0])):
        fp, q = backends.get("torch"), backends.get("torch-int8")
        row = {"platform": platform, "model": model, "batch_size": bs}
        if fp is None or q is None or fp[1].get("status") != "ok" or q[1].get("status") != "ok":
            failed = [b for b, r in (("torch", fp), ("torch-int8", q)) if r is None or r[1].get("status") != "ok"]
            reasons = [f"{b}: {(r[1].get('reason') if r else 'not run')}" for b, r in (("torch", fp), ("torch-int8", q))
                       if b in failed]
            rows.append({**row, "status": "missing", "reason": "; ".join(reasons)})
            continue
        row["seq_len"] = fp[1].get("seq_len")
        row["status"] = "ok"
        for name, (df, _) in (("fp", fp), ("int8", q)):
            ops = df[~df["group"].map(taxonomy.is_overhead)]
            per_iter = ops.groupby("iteration")
            gemm = per_iter.apply(lambda g: g.loc[g["is_gemm"], "time_us"].sum()).median() / 1e3
            non_gemm = per_iter.apply(lambda g: g.loc[~g["is_gemm"], "time_us"].sum()).median() / 1e3
            quant = per_iter.apply(lambda g: g.loc[g["group"] == "Quantization", "time_us"].sum()).median() / 1e3
            row[f"{name}_gemm_ms"] = gemm
            row[f"{name}_non_gemm_ms"] = non_gemm
            row[f"{name}_quantization_ms"] = quant
            row[f"{name}_non_gemm_pct_of_ops"] = 100.0 * non_gemm / (gemm + non_gemm) if gemm + non_gemm else None
            row[f"{name}_non_gemm_instances"] = float(per_iter.apply(lambda g: (~g["is_gemm"]).sum()).median())
        row["gemm_latency_change"] = row["int8_gemm_ms"] / row["fp_gemm_ms"]
        row["non_gemm_latency_change"] = row["int8_non_gemm_ms"] / row["fp_non_gemm_ms"]
        row["extra_non_gemm_instances_per_forward"] = row["int8_non_gemm_instances"] - row["fp_non_gemm_instances"]
        row["paper (Llama-3-8B, A100, fp16 -> int8)"] = "non-GEMM 29.3% -> 76.7% of latency"
        rows.append(row)
    return pd.DataFrame(rows)


def fig5_data(records: list[dict]) -> pd.DataFrame:
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


def plot_fig5(records: list[dict], png: str | Path, csv: str | Path) -> pd.DataFrame:
    """fig5: energy per inference per model (median over blocks, min-max whiskers), CPU (RAPL) and GPU
    (NVML) sides; n/a and failed cells are drawn hatched with the reason."""
    data = fig5_data(records)
    data.to_csv(csv, index=False)
    sns.set_theme(style="whitegrid", font_scale=0.8)
    platforms = {dev: sorted(data.loc[data["device"].str.startswith(dev), "platform"].unique()) if len(data) else []
                 for dev in DEVICE_PANELS}
    nrows = max(1, *(len(p) for p in platforms.values()))
    n_models = max(1, data["model"].nunique() if len(data) else 1)
    fig, axes = plt.subplots(nrows, 2, figsize=(max(9, 2 + 1.1 * n_models * 2), 4.4 * nrows), squeeze=False)
    colors = {"cpu": "#4c72b0", "gpu": "#55a868"}
    for c, dev in enumerate(DEVICE_PANELS):
        for r in range(nrows):
            ax = axes[r][c]
            if r >= len(platforms[dev]):
                _mark_missing(ax, NO_GPU if dev == "cuda" else "no CPU-only platform configured")
                ax.set_title(DEVICE_PANELS[dev])
                continue
            plat = platforms[dev][r]
            sub = data[data["platform"] == plat]
            sides = ["cpu"] if dev == "cpu" else ["cpu", "gpu"]
            models = sorted(sub["model"].unique())
            top = max([v for v in sub["joules_max"].dropna()] + [1e-3]) * 1.15
            width = 0.8 / len(sides)
            for i, model in enumerate(models):
                for j, side in enumerate(sides):
                    x = i + (j - (len(sides) - 1) / 2) * width
                    cell = sub[(sub["model"] == model) & (sub["side"] == side)]
                    if cell.empty or cell["status"].iloc[0] != "ok":
                        reason = cell["reason"].iloc[0] if len(cell) else "not measured"
                        ax.bar(x, top, width=width * 0.95, color="white", edgecolor="#999999", hatch="//")
                        ax.text(x, top / 2, f"n/a: {reason[:70]}", rotation=90, ha="center", va="center", fontsize=5.5)
                        continue
                    v = cell.iloc[0]
                    ax.bar(x, v["joules_per_inference"], width=width * 0.95, color=colors[side],
                           yerr=[[v["joules_per_inference"] - v["joules_min"]], [v["joules_max"] - v["joules_per_inference"]]])
            ax.set_xticks(range(len(models)), models, rotation=45, ha="right", fontsize=7)
            ax.set_ylim(0, top)
            ax.set_ylabel("energy per inference (J)")
            ax.set_title(f"{DEVICE_PANELS[dev]} - platform {plat}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[s]) for s in colors]
    fig.legend(handles, ["CPU package (RAPL)", "GPU (NVML)"], loc="upper center", ncol=2, frameon=False)
    fig.suptitle("fig5: energy per inference, PyTorch eager, batch 1", y=0.995, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(png, dpi=130)
    plt.close(fig)
    return data
