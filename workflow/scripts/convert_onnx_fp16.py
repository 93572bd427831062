import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.jobs import run_trt  # noqa: E402

run_trt.convert_fp16(
    snakemake.input.onnx,
    snakemake.input.modules,
    snakemake.output.onnx,
    on_error=snakemake.params.on_error,
    modules_out=snakemake.output.modules,
)
