import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import figures, registry  # noqa: E402

table = figures.table2(registry.load(snakemake.params.custom_models), registry.count_parameters)
figures.write_table(
    table, snakemake.output.csv, snakemake.output.md, "Table II: parameters per model", figures.TABLE2_TEXT
)
