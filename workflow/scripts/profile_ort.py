import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

config = dict(snakemake.config)
ort_settings = dict(config["backends"]["ort"])
ort_settings["threads"] = ort_settings.get("threads") or snakemake.threads
config["backends"] = {**config["backends"], "ort": ort_settings}
w = snakemake.wildcards
study.run_ort(
    config,
    w.platform,
    w.backend,
    w.model,
    int(w.bs),
    onnx_path=snakemake.input.onnx,
    modules_path=snakemake.input.modules,
    input_path=snakemake.input.batch,
    trace_dir=snakemake.output.trace_dir,
    latency_out=snakemake.output.latency,
)
