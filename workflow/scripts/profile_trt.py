import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

w = snakemake.wildcards
study.run_trt(
    snakemake.config,
    w.platform,
    w.model,
    int(w.bs),
    plan=snakemake.input.plan,
    modules_path=snakemake.input.modules,
    feed_path=snakemake.input.feed,
    input_path=snakemake.input.batch,
    trace_dir=snakemake.output.trace_dir,
    latency_out=snakemake.output.latency,
)
