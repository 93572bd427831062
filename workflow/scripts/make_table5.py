import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.figures import table5, tables  # noqa: E402

everything = table5.full(snakemake.input.tables)
everything.to_csv(snakemake.output.full, index=False)
tables.write(table5.table(everything), snakemake.output.csv, snakemake.output.md, table5.TITLE, table5.NOTES)
