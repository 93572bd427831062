import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.jobs import energy  # noqa: E402

energy.measure(
    snakemake.params.settings,
    batch_size=int(snakemake.wildcards.bs),
    input_path=snakemake.input.batch,
    out=snakemake.output.energy,
)
