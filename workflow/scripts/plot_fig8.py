import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import figures  # noqa: E402

figures.plot_fig8(snakemake.input.tables, snakemake.output.png, snakemake.output.csv, models=snakemake.params.models)
