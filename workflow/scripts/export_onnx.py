import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

config = dict(snakemake.config)
ort_settings = dict(config["backends"]["ort"])
ort_settings["threads"] = ort_settings.get("threads") or snakemake.threads
config["backends"] = {**config["backends"], "ort": ort_settings}
study.export_onnx(
    config,
    snakemake.wildcards.model,
    int(snakemake.wildcards.bs),
    input_path=snakemake.input.batch,
    out=snakemake.output.onnx,
    modules_out=snakemake.output.modules,
)
