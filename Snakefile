# nongemm-bench: where ML inference time goes, GEMM vs non-GEMM operators (ISPASS 2025 NonGEMM Bench).
#
# Results path scheme:
#   results/inputs/{model}/bs{bs}.pt                           real, preprocessed input batch (+ .json)
#   results/onnx/{model}/bs{bs}.onnx                           ONNX export (+ .onnx.data weights, .modules.json)
#   results/engines/{platform}/{model}/bs{bs}.{precision}.plan TensorRT engine, CUDA platforms only (+ .json record)
#   results/traces/{platform}/{backend}/{model}/bs{bs}/        raw profiler output, untouched (+ meta.json)
#   results/latency/{platform}/{backend}/{model}/bs{bs}.json   unprofiled end-to-end latency samples
#   results/ops/{platform}/{backend}/{model}/bs{bs}.parquet    the unified op table
#   results/energy/{platform}/{model}/bs{bs}.json              energy per inference (n/a with the reason)
#   results/shares/{platform}/{backend}/{model}/bs{bs}.parquet group shares of one run (+ .unknown.csv, and
#                                                              .compat.parquet: the original study's metric)
#   results/shares.parquet, results/unknown_ops.csv            every run's shares; ops the taxonomy does not know
#   results/failures.csv                                       runs that failed or were skipped: job, reason, log
#   results/trust.csv                                          per run: may its numbers be trusted, and why not
#   results/platform/{platform}.json                           the platform's measured roofs (horizon)
#   figures/compare/{name}.csv|.md|.png                        named comparisons of runs (config: comparisons)
#   figures/                                                   the paper's figures and tables


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/engines.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/normalize.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/energy.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/horizon.smk"
include: "workflow/rules/compare.smk"


warn_missing_results()


onstart:
    check_devices()


# The whole study. Like each named target below, it lists the op tables and shares of the runs it draws, so
# that a missing one is rebuilt (with what depends on it).
rule all:
    default_target: True
    input:
        PRODUCTS.values(),
        expand("figures/compare/{name}.png", name=COMPARISONS),
        normalized_results("scorecard"),
        "results/unknown_ops.csv",
        "results/failures.csv",


# The GPU smoke (config/gpu-smoke.yaml): every run on a CUDA platform, its energy records and roofs; no figure,
# no CPU run. `snakemake gpu_smoke --cores all --configfile config/gpu-smoke.yaml && python benchmarks/gpu_check.py`
rule gpu_smoke:
    input:
        cuda_results,


# One product and the runs it draws: `snakemake --cores all fig6`.
for product, path in PRODUCTS.items():

    rule:
        name:
            product
        input:
            path,
            normalized_results(product),
