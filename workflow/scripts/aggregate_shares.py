import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.analysis import shares  # noqa: E402

shares.write_union(
    snakemake.input.shares,
    snakemake.input.unknown,
    snakemake.output.shares,
    snakemake.output.unknown,
    snakemake.output.failures,
    snakemake.output.trust,
)
