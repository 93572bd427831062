import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.jobs import make_inputs  # noqa: E402

make_inputs.make(
    snakemake.params.settings,
    model=snakemake.wildcards.model,
    batch_size=int(snakemake.wildcards.bs),
    out=snakemake.output.batch,
)
