import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import study  # noqa: E402

w = snakemake.wildcards
study.build_trt_engine(
    snakemake.config,
    w.platform,
    w.model,
    int(w.bs),
    modules_path=snakemake.input.modules,
    onnx_path=snakemake.input.onnx,  # the fp16 copy for a strongly typed fp16 engine
    plan=snakemake.output.plan,
    log_path=snakemake.log[0] + ".tensorrt",
    precision=w.precision,
)
