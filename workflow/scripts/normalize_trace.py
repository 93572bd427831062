from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

w = snakemake.wildcards
study.normalize_run(
    str(snakemake.input.meta).rsplit("/", 1)[0],
    snakemake.output.ops,
    platform=w.platform,
    backend=w.backend,
    model=w.model,
    batch_size=int(w.bs),
)
