# One rule profiles every backend: its catalog entry (ngbench/catalog.py) names the extra inputs, the
# conda env and the job that runs it.
rule profile:
    input:
        unpack(run_inputs),
    output:
        trace_dir=directory("results/traces/{platform}/{backend}/{model}/bs{bs}"),
        latency="results/latency/{platform}/{backend}/{model}/bs{bs}.json",
    log:
        "logs/profile/{platform}/{backend}/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/profile/{platform}/{backend}/{model}/bs{bs}.tsv"
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    conda:
        run_conda_env
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
        gpu=gpus,
    params:
        settings=run_params,
    script:
        "../scripts/profile.py"
