# Every run's shares in one file, for users (figures read only the per-run files they draw).
rule aggregate_shares:
    input:
        shares=all_shares,
        unknown=all_unknown,
    output:
        shares="results/shares.parquet",
        unknown=report(
            "results/unknown_ops.csv",
            caption="../report/unknown_ops.rst",
            category="Taxonomy",
        ),
        failures=report(
            "results/failures.csv",
            caption="../report/failures.rst",
            category="Failures",
        ),
        trust=report(
            "results/trust.csv",
            caption="../report/trust.rst",
            category="Failures",
        ),
    log:
        "logs/aggregate_shares.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/aggregate_shares.py"
