import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import figures, fusion  # noqa: E402

fusion.table5(snakemake.input.tables).to_csv(snakemake.output.full, index=False)
figures.write_table(
    figures.table5(snakemake.input.tables),
    snakemake.output.csv,
    snakemake.output.md,
    "Table V: non-GEMM latency before/after fusion and the non-GEMM fusion rate",
    figures.TABLE5_NOTES,
)
