import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

study.make_inputs(snakemake.config, snakemake.wildcards.model, int(snakemake.wildcards.bs), snakemake.output.batch)
