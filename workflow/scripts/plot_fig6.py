import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.analysis import shares  # noqa: E402
from ngbench.figures import fig6  # noqa: E402

fig6.plot(shares.read(snakemake.input.shares), snakemake.output.png, snakemake.output.csv)
