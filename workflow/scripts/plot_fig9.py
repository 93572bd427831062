import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.analysis import shares  # noqa: E402
from ngbench.figures import fig9  # noqa: E402

fig9.plot(
    shares.read(snakemake.input.shares),
    snakemake.output.png,
    snakemake.output.csv,
    models=snakemake.params.models,
)
fig9.summary(snakemake.input.tables).to_csv(snakemake.output.summary, index=False)
