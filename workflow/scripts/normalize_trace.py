import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

w = snakemake.wildcards
study.normalize_run(
    snakemake.input.trace_dir,
    snakemake.output.ops,
    platform=w.platform,
    backend=w.backend,
    model=w.model,
    batch_size=int(w.bs),
)
