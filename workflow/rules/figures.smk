rule plot_fig6:
    input:
        shares="results/shares.parquet",
    output:
        png=report(
            "figures/fig6.png",
            caption="../report/fig6.rst",
            category="Figures",
            labels={"figure": "fig6"},
        ),
        csv="figures/fig6.csv",
    log:
        "logs/plot_fig6.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/plot_fig6.py"


rule make_table4:
    input:
        shares="results/shares.parquet",
    output:
        csv="figures/table4.csv",
        md=report(
            "figures/table4.md",
            caption="../report/table4.rst",
            category="Tables",
            labels={"table": "table4"},
        ),
    log:
        "logs/make_table4.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/make_table4.py"


rule make_table2:
    input:
        registry="ngbench/registry/models.yaml",
    output:
        csv="figures/table2.csv",
        md=report(
            "figures/table2.md",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "table2"},
        ),
    log:
        "logs/make_table2.log",
    conda:
        "../../envs/torch.yaml"
    params:
        custom_models=config["custom_models"],
    script:
        "../scripts/make_table2.py"
