import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.figures import table1, tables  # noqa: E402

paper_rows, every_op = table1.tables(table1.read_ops(snakemake.input.tables))
tables.write(paper_rows, snakemake.output.csv, snakemake.output.md, table1.TITLE, table1.NOTES)
every_op.to_csv(snakemake.output.ops, index=False)
