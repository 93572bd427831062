import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

w = snakemake.wildcards
study.measure_energy(snakemake.config, w.platform, w.model, int(w.bs), snakemake.input.batch, snakemake.output.energy)
