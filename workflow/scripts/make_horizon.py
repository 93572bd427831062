import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.figures import horizon  # noqa: E402

runs, instances = horizon.collect(
    snakemake.input.tables,
    horizon.limits_by_platform(snakemake.input.limits),
    overhead_factor=snakemake.params.overhead_factor,
)
out = snakemake.output
horizon.write(
    runs,
    instances,
    md=out.md,
    csv=out.csv,
    runs_csv=out.runs,
    fusion_csv=out.fusion,
    instances_out=out.instances,
    top=snakemake.params.top,
)
