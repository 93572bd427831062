"""Table I: the paper's non-GEMM operators and their characteristics beside the input shapes our PyTorch eager
runs saw on real data; and every non-GEMM operator of every run (``table1_ops.csv``)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.figures import paper
from ngbench.figures import tables as table_files
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["table1"]
TITLE = "Table I: non-GEMM operators"
NOTES = (
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


def run_models() -> set[str]:
    """Models whose runs the paper's rows look in (paper.yaml: table1 rows' ``runs``, ``<model>@bs<batch>``)."""
    return {run.split("@")[0] for row in paper.section("table1")["rows"] for run in row["runs"]}


def read_ops(op_tables: Iterable[str | Path]) -> dict[str, pd.DataFrame]:
    """``<model>@bs<batch>`` -> op table of the given (PyTorch eager) runs; runs without rows are left out."""
    ops: dict[str, pd.DataFrame] = {}
    for path in sorted(map(str, op_tables)):
        df = optable.read(path)
        if len(df):
            ops.setdefault(f"{df['model'].iloc[0]}@bs{int(df['batch_size'].iloc[0])}", df)
    return ops


def _first_input(shapes: str) -> str:
    try:
        dims = json.loads(shapes) if shapes else []
    except ValueError:
        return ""
    first = next((d for d in dims if d), None)
    return json.dumps(first, separators=(",", ":")) if first is not None else ""


def _numel(shape: str) -> int:
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


def tables(ops: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the paper's Table I rows beside what our runs observed, every non-GEMM op of every run).

    ``ops``: run label ``<model>@bs<batch>`` -> op table (one iteration is enough: shapes repeat)."""
    taxonomy = tax.load()
    rows = []
    reference = paper.section("table1")
    for ref in reference["rows"]:
        run = next((r for r in ref["runs"] if r in ops), None)
        paper_shape = ref["shape"]
        row = {
            "group": ref["group"],
            "operator": ref["operator"],
            "model": ref["model"],
            **dict(zip(reference["characteristics"], ref["characteristics"])),
            "paper_shape": paper_shape,
            "run": run or "",
            "observed_shapes": "",
            "paper_shape_observed": None,
        }
        if run is not None:
            df = ops[run]
            counts = _observed_shapes(df[df["iteration"] == df["iteration"].min()], ref["match"]).value_counts()
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
            every.append(
                {
                    "run": run,
                    "group": group,
                    "op": op,
                    "instances_per_iteration": len(sub),
                    "example_input_shape": shapes.value_counts().index[0] if len(shapes) else "",
                    "modules": ",".join(sorted(set(sub["module_type"]) - {""}))[:120],
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(every)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: the paper's rows and every op, from the runs' op tables."""
    paper_rows, every_op = tables(read_ops(i["ops"]))
    table_files.write(paper_rows, o["csv"], o["md"], TITLE, NOTES)
    every_op.to_csv(o["ops"], index=False)
