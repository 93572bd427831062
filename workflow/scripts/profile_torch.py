import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

config = dict(snakemake.config)
torch_settings = dict(config["backends"]["torch"])
torch_settings["threads"] = torch_settings.get("threads") or snakemake.threads
config["backends"] = {**config["backends"], "torch": torch_settings}
study.run_torch(
    config,
    snakemake.wildcards.platform,
    snakemake.wildcards.model,
    int(snakemake.wildcards.bs),
    input_path=snakemake.input.batch,
    trace_dir=snakemake.output.trace_dir,
    latency_out=snakemake.output.latency,
)
