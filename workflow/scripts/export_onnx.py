import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.jobs import run_ort  # noqa: E402

run_ort.export(
    snakemake.params.settings,
    batch_size=int(snakemake.wildcards.bs),
    input_path=snakemake.input.batch,
    out=snakemake.output.onnx,
    modules_out=snakemake.output.modules,
    threads=snakemake.threads,
)
