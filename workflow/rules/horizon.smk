# The horizon: each platform's roofs, measured once (the figure table's horizon, fig10 and fig11 set every op
# of the runs they draw against them).
rule measure_platform:
    output:
        limits="results/platform/{platform}.json",
    log:
        "logs/measure_platform/{platform}.log",
    benchmark:
        "results/benchmarks/measure_platform/{platform}.tsv"
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS
    resources:
        profiling_slot=1,
        gpu=gpus,
    params:
        settings=platform_params,
    script:
        "../scripts/measure_platform.py"
