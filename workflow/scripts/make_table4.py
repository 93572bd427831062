import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench import figures  # noqa: E402

table = figures.table4(pd.read_parquet(snakemake.input.shares))
figures.write_table(
    table,
    snakemake.output.csv,
    snakemake.output.md,
    "Table IV: most time-consuming non-GEMM group per model",
    figures.TABLE4_NOTES,
)
