rule build_engine:
    input:
        onnx=trt_engine_onnx,
        data=lambda w: trt_engine_onnx(w) + ".data",
        modules="results/onnx/{model}/bs{bs}.modules.json",
    output:
        plan="results/engines/{platform}/{model}/bs{bs}.{precision}.plan",
        record="results/engines/{platform}/{model}/bs{bs}.{precision}.plan.json",
    log:
        "logs/build_engine/{platform}/{model}/bs{bs}.{precision}.log",
    benchmark:
        "results/benchmarks/build_engine/{platform}/{model}/bs{bs}.{precision}.tsv"
    wildcard_constraints:
        platform="|".join(CUDA_PLATFORMS) or "(?!)",
        precision="fp16|fp32|tf32",
    conda:
        "../../envs/trt.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
        gpu=gpus,
    params:
        settings=engine_params,
    script:
        "../scripts/build_engine.py"
