rule profile_torch:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
    output:
        trace_dir=directory("results/traces/{platform}/torch/{model}/bs{bs}"),
        latency="results/latency/{platform}/torch/{model}/bs{bs}.json",
    log:
        "logs/profile_torch/{platform}/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/profile_torch/{platform}/{model}/bs{bs}.tsv"
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
    params:
        settings=torch_run_params,
    script:
        "../scripts/profile_torch.py"


rule profile_inductor:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
    output:
        trace_dir=directory("results/traces/{platform}/inductor/{model}/bs{bs}"),
        latency="results/latency/{platform}/inductor/{model}/bs{bs}.json",
    log:
        "logs/profile_inductor/{platform}/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/profile_inductor/{platform}/{model}/bs{bs}.tsv"
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
    params:
        settings=inductor_run_params,
    script:
        "../scripts/profile_torch.py"


rule profile_torch_int8:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
    output:
        trace_dir=directory("results/traces/{platform}/torch-int8/{model}/bs{bs}"),
        latency="results/latency/{platform}/torch-int8/{model}/bs{bs}.json",
    log:
        "logs/profile_torch_int8/{platform}/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/profile_torch_int8/{platform}/{model}/bs{bs}.tsv"
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
    params:
        settings=int8_run_params,
    script:
        "../scripts/profile_torch.py"


rule profile_ort:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
        onnx="results/onnx/{model}/bs{bs}.onnx",
        data="results/onnx/{model}/bs{bs}.onnx.data",
        modules="results/onnx/{model}/bs{bs}.modules.json",
    output:
        trace_dir=directory("results/traces/{platform}/{backend}/{model}/bs{bs}"),
        latency="results/latency/{platform}/{backend}/{model}/bs{bs}.json",
    log:
        "logs/profile_ort/{platform}/{backend}/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/profile_ort/{platform}/{backend}/{model}/bs{bs}.tsv"
    wildcard_constraints:
        platform="|".join(PLATFORMS),
        backend="ort|ort-opt",
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
    params:
        settings=ort_run_params,
    script:
        "../scripts/profile_ort.py"


rule profile_trt:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
        plan=lambda w: f"results/engines/{w.platform}/{w.model}/bs{w.bs}.{TRT['precision']}.plan",
        record=lambda w: f"results/engines/{w.platform}/{w.model}/bs{w.bs}.{TRT['precision']}.plan.json",
        modules="results/onnx/{model}/bs{bs}.modules.json",
        feed="results/onnx/{model}/bs{bs}.inputs.npz",
    output:
        trace_dir=directory("results/traces/{platform}/trt/{model}/bs{bs}"),
        latency="results/latency/{platform}/trt/{model}/bs{bs}.json",
    log:
        "logs/profile_trt/{platform}/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/profile_trt/{platform}/{model}/bs{bs}.tsv"
    wildcard_constraints:
        platform="|".join(CUDA_PLATFORMS) or "(?!)",
    conda:
        "../../envs/trt.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
    params:
        settings=trt_run_params,
    script:
        "../scripts/profile_trt.py"
