"""Table IV: the most time-consuming non-GEMM group per model (mean share over batch sizes), beside the
paper's."""

from __future__ import annotations

import pandas as pd

from ngbench import names
from ngbench import taxonomy as tax
from ngbench.figures import paper
from ngbench.figures import tables as table_files
from ngbench.figures.specs import FIGURES

SPEC = FIGURES["table4"]
TITLE = "Table IV: most time-consuming non-GEMM group per model"
NOTES = (
    "pct_of_iteration: share of the measured (profiled) iteration time, idle included; pct_of_op_time: share of "
    "the time attributed to operators (the paper's denominator). Mean over the batch sizes present. The paper's "
    "column is its Table IV (platform A, A100, CPU+GPU); compare like with like (device column)."
)


def table(shares: pd.DataFrame, backend: str = SPEC.backends[0]) -> pd.DataFrame:
    taxonomy = tax.load()
    reference = paper.section("table4")["rows"]
    paper_name = paper.section("group_names")
    ok = shares[(shares["backend"] == backend) & (shares["level"] == "group") & (shares["status"] == names.STATUS_OK)]
    ok = ok[~ok["group"].map(taxonomy.is_gemm) & ~ok["group"].map(taxonomy.is_overhead)]
    rows = []
    for (plat, dev, model), sub in ok.groupby(["platform", "device", "model"]):
        mean = sub.groupby("group")["pct_median"].mean().sort_values(ascending=False)
        mean_ops = sub.groupby("group")["pct_of_ops_median"].mean()
        ref = reference.get(model) or {}
        rows.append(
            {
                "platform": plat,
                "device": dev,
                "model": model,
                "batch_sizes": ",".join(str(b) for b in sorted(sub["batch_size"].unique())),
                "top_group": mean.index[0],
                "top_group_paper_name": paper_name.get(mean.index[0]),
                "pct_of_iteration": round(float(mean.iloc[0]), 1),
                "pct_of_op_time": round(float(mean_ops[mean.index[0]]), 1),
                "second_group": mean.index[1] if len(mean) > 1 else "",
                "second_pct": round(float(mean.iloc[1]), 1) if len(mean) > 1 else None,
                "paper_group_A_gpu": ref.get("group", ""),
                "paper_pct_A_gpu": ref.get("pct"),
            }
        )
    failed = shares[(shares["backend"] == backend) & (shares["status"] != names.STATUS_OK)]
    for r in failed.drop_duplicates(["platform", "model"]).itertuples():
        rows.append(
            {"platform": r.platform, "device": r.device, "model": r.model, "top_group": f"{r.status}: {r.reason}"}
        )
    return pd.DataFrame(rows)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: from the runs' shares files."""
    from ngbench.analysis import shares

    table_files.write(table(shares.read(i["shares"])), o["csv"], o["md"], TITLE, NOTES)
