import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench import figures  # noqa: E402

shares = pd.read_parquet(snakemake.input.shares)
table = figures.table4(shares[~shares["model"].isin(snakemake.params.hidden)])
figures.write_table(
    table,
    snakemake.output.csv,
    snakemake.output.md,
    "Table IV: most time-consuming non-GEMM group per model",
    figures.TABLE4_NOTES,
)
