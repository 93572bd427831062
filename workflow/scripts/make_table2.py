import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import registry  # noqa: E402
from ngbench.figures import table2, tables  # noqa: E402

table = table2.table(registry.load(snakemake.params.custom_models), registry.count_parameters)
tables.write(table, snakemake.output.csv, snakemake.output.md, table2.TITLE, table2.NOTES)
