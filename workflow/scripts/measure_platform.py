import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.jobs import platform_limits  # noqa: E402

platform_limits.measure(snakemake.params.settings, out=snakemake.output.limits, threads=snakemake.threads)
