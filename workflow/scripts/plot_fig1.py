import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench import figures  # noqa: E402

shares = pd.read_parquet(snakemake.input.shares)
figures.plot_fig1(shares, snakemake.output.png, snakemake.output.csv, models=snakemake.params.models)
