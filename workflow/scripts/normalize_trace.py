import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import normalize  # noqa: E402
from ngbench.analysis import compat, shares  # noqa: E402

w = snakemake.wildcards
meta = normalize.normalize_run(
    snakemake.input.trace_dir,
    snakemake.output.ops,
    platform=w.platform,
    backend=w.backend,
    model=w.model,
    batch_size=int(w.bs),
)
shares.write_run(snakemake.output.ops, snakemake.output.shares, snakemake.output.unknown)
compat.write_run(snakemake.input.trace_dir, meta, snakemake.output.compat)
