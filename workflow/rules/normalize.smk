# One job per run turns the profiler's files into the op table and, from it, the run's group shares (and
# the same under the original study's metric, compat, for PyTorch profiler traces).
rule normalize_trace:
    input:
        trace_dir="results/traces/{platform}/{backend}/{model}/bs{bs}",
        taxonomy=TAXONOMY_FILE,  # a taxonomy edit re-classifies, it never re-profiles
    output:
        ops="results/ops/{platform}/{backend}/{model}/bs{bs}.parquet",
        shares="results/shares/{platform}/{backend}/{model}/bs{bs}.parquet",
        unknown="results/shares/{platform}/{backend}/{model}/bs{bs}.unknown.csv",
        compat="results/shares/{platform}/{backend}/{model}/bs{bs}.compat.parquet",
    log:
        "logs/normalize_trace/{platform}/{backend}/{model}/bs{bs}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/normalize_trace.py"
