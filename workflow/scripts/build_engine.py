import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.jobs import run_trt  # noqa: E402

w = snakemake.wildcards
run_trt.build_engine(
    snakemake.params.settings,
    model=w.model,
    batch_size=int(w.bs),
    modules_path=snakemake.input.modules,
    onnx_path=snakemake.input.onnx,  # the fp16 copy for a strongly typed fp16 engine
    plan=snakemake.output.plan,
    log_path=snakemake.log[0] + ".tensorrt",
    precision=w.precision,
)
