import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench.figures import fig10, horizon  # noqa: E402

fig10.plot(
    pd.read_parquet(snakemake.input.instances),
    horizon.limits_by_platform(snakemake.input.limits),
    snakemake.output.png,
    snakemake.output.csv,
)
