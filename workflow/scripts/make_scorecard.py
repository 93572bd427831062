import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench.analysis import claims, shares  # noqa: E402
from ngbench.figures import paper, scorecard  # noqa: E402

traces = list(snakemake.input.traces)
evidence = claims.Evidence(
    shares=shares.read(snakemake.input.shares),
    compat=claims.compat_frame(traces, scorecard.run_labels(traces)),
    tables={
        name: pd.read_csv(snakemake.input[name])
        for name in ("table1", "table2", "table4", "table5", "fig9_summary")
    },
    group_names=paper.section("group_names"),
)
scorecard.write(scorecard.table(evidence), snakemake.output.csv, snakemake.output.md)
