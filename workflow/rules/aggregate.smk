rule aggregate_shares:
    input:
        op_tables,
    output:
        shares="results/shares.parquet",
        unknown=report(
            "results/unknown_ops.csv",
            caption="../report/unknown_ops.rst",
            category="Taxonomy",
        ),
    log:
        "logs/aggregate_shares.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/aggregate_shares.py"
