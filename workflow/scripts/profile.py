import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import catalog  # noqa: E402

w = snakemake.wildcards
catalog.get(w.backend).load_runner()(
    snakemake.params.settings,
    batch_size=int(w.bs),
    files=dict(snakemake.input.items()),
    trace_dir=snakemake.output.trace_dir,
    latency_out=snakemake.output.latency,
    threads=snakemake.threads,
)
