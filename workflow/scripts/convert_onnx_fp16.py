import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

study.convert_onnx_fp16(
    snakemake.input.onnx,
    snakemake.input.modules,
    snakemake.output.onnx,
    on_error=snakemake.params.on_error,
)
