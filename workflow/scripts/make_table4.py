import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.analysis import shares  # noqa: E402
from ngbench.figures import table4, tables  # noqa: E402

table = table4.table(shares.read(snakemake.input.shares))
tables.write(table, snakemake.output.csv, snakemake.output.md, table4.TITLE, table4.NOTES)
