import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench import figures  # noqa: E402

shares = pd.read_parquet(snakemake.input.shares)
shares = shares[~shares["model"].isin(snakemake.params.hidden)]
figures.plot_fig6(shares, snakemake.output.png, snakemake.output.csv)
