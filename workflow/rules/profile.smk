rule profile_torch:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
    output:
        trace_dir=directory("results/traces/{platform}/torch/{model}/bs{bs}"),
        latency="results/latency/{platform}/torch/{model}/bs{bs}.json",
    params:
        settings=torch_run_params,
    wildcard_constraints:
        platform="|".join(PLATFORMS),
    threads: workflow.cores
    resources:
        profiling_slot=1,
    log:
        "logs/profile_torch/{platform}/{model}/bs{bs}.log",
    benchmark:
        "benchmarks/profile_torch/{platform}/{model}/bs{bs}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/profile_torch.py"
