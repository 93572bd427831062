import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

backend = {"profile_inductor": "inductor", "profile_torch_int8": "torch-int8"}.get(snakemake.rule, "torch")
config = dict(snakemake.config)
settings = dict(config["backends"][backend])
settings["threads"] = settings.get("threads") or snakemake.threads
config["backends"] = {**config["backends"], backend: settings}
study.run_torch(
    config,
    snakemake.wildcards.platform,
    snakemake.wildcards.model,
    int(snakemake.wildcards.bs),
    input_path=snakemake.input.batch,
    trace_dir=snakemake.output.trace_dir,
    latency_out=snakemake.output.latency,
    backend=backend,
)
