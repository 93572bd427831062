rule plot_fig6:
    input:
        shares=figure_shares("fig6"),
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
        shares=figure_shares("table4"),
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
        registry=REGISTRY_FILE,
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


rule make_table1:
    input:
        tables=figure_op_tables("table1"),
    output:
        csv="figures/table1.csv",
        md=report(
            "figures/table1.md",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "table1"},
        ),
        ops="figures/table1_ops.csv",
    log:
        "logs/make_table1.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/make_table1.py"


rule plot_fig7:
    input:
        shares=figure_shares("fig7"),
    output:
        png=report(
            "figures/fig7.png",
            caption="../report/fig7.rst",
            category="Figures",
            labels={"figure": "fig7"},
        ),
        csv="figures/fig7.csv",
    log:
        "logs/plot_fig7.log",
    conda:
        "../../envs/torch.yaml"
    params:
        models=figure_models("fig7"),
    script:
        "../scripts/plot_fig7.py"


rule plot_fig8:
    input:
        shares=figure_shares("fig8"),
    output:
        png=report(
            "figures/fig8.png",
            caption="../report/fig8.rst",
            category="Figures",
            labels={"figure": "fig8"},
        ),
        csv="figures/fig8.csv",
    log:
        "logs/plot_fig8.log",
    conda:
        "../../envs/torch.yaml"
    params:
        models=figure_models("fig8"),
    script:
        "../scripts/plot_fig8.py"


rule make_table5:
    input:
        tables=figure_op_tables("table5"),
    output:
        csv="figures/table5.csv",
        md=report(
            "figures/table5.md",
            caption="../report/table5.rst",
            category="Tables",
            labels={"table": "table5"},
        ),
        full="figures/table5_all_rates.csv",
    log:
        "logs/make_table5.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/make_table5.py"


rule plot_fig1:
    input:
        shares=figure_shares("fig1"),
    output:
        png=report(
            "figures/fig1.png",
            caption="../report/fig1.rst",
            category="Figures",
            labels={"figure": "fig1"},
        ),
        csv="figures/fig1.csv",
    log:
        "logs/plot_fig1.log",
    conda:
        "../../envs/torch.yaml"
    params:
        models=figure_models("fig1"),
    script:
        "../scripts/plot_fig1.py"


rule plot_fig5:
    input:
        records=energy_records,
    output:
        png=report(
            "figures/fig5.png",
            caption="../report/fig5.rst",
            category="Figures",
            labels={"figure": "fig5"},
        ),
        csv="figures/fig5.csv",
    log:
        "logs/plot_fig5.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/plot_fig5.py"


rule plot_fig9:
    input:
        shares=figure_shares("fig9"),
        tables=figure_op_tables("fig9"),
    output:
        png=report(
            "figures/fig9.png",
            caption="../report/fig9.rst",
            category="Figures",
            labels={"figure": "fig9"},
        ),
        csv="figures/fig9.csv",
        summary="figures/fig9_summary.csv",
    log:
        "logs/plot_fig9.log",
    conda:
        "../../envs/torch.yaml"
    params:
        models=figure_models("fig9"),
    script:
        "../scripts/plot_fig9.py"


rule make_scorecard:
    input:
        shares=all_shares,
        compat=all_compat,  # the original's metric, per run
        table1="figures/table1.csv",
        table2="figures/table2.csv",
        table4="figures/table4.csv",
        table5="figures/table5_all_rates.csv",
        fig9_summary="figures/fig9_summary.csv",
    output:
        csv="figures/scorecard.csv",
        md=report(
            "figures/scorecard.md",
            caption="../report/scorecard.rst",
            category="Tables",
            labels={"table": "scorecard"},
        ),
    log:
        "logs/make_scorecard.log",
    conda:
        "../../envs/torch.yaml"
    params:
        figure_models={name: figure_models(name) for name in scorecard.claim_figures()},
    script:
        "../scripts/make_scorecard.py"
