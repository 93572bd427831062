rule normalize_trace:
    input:
        trace_dir="results/traces/{platform}/{backend}/{model}/bs{bs}",
        taxonomy=TAXONOMY_FILE,  # a taxonomy edit re-classifies, it never re-profiles
    output:
        ops="results/ops/{platform}/{backend}/{model}/bs{bs}.parquet",
    log:
        "logs/normalize_trace/{platform}/{backend}/{model}/bs{bs}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/normalize_trace.py"
