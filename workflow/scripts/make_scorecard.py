import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.analysis import claims, compat, shares  # noqa: E402
from ngbench.figures import paper, scorecard, tables  # noqa: E402

evidence = claims.Evidence(
    shares=shares.read(snakemake.input.shares),
    compat=compat.read(snakemake.input.compat),
    tables={
        name: tables.read(snakemake.input[name]) for name in ("table1", "table2", "table4", "table5", "fig9_summary")
    },
    group_names=paper.section("group_names"),
    figure_models=snakemake.params.figure_models,
)
table = scorecard.table(evidence)
scorecard.write(table, snakemake.output.csv, snakemake.output.md, scorecard.drill_downs(table, evidence))
