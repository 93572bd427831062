import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import pandas as pd  # noqa: E402

from ngbench.figures import fig11  # noqa: E402

fig11.plot(pd.read_csv(snakemake.input.runs), snakemake.output.png, snakemake.output.csv)
