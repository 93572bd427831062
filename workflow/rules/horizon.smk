# The horizon: each platform's roofs, measured once, and every op of the runs drawn set against them.
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


rule make_horizon:
    input:
        tables=figure_op_tables("horizon"),
        limits=horizon_limits,
    output:
        md=report(
            "figures/horizon.md",
            caption="../report/horizon.rst",
            category="Horizon",
            labels={"table": "horizon"},
        ),
        csv="figures/horizon.csv",
        runs="figures/horizon_runs.csv",
        fusion="figures/horizon_fusion.csv",
        instances="results/horizon/instances.parquet",
    log:
        "logs/make_horizon.log",
    conda:
        "../../envs/torch.yaml"
    params:
        overhead_factor=config["platform_limits"]["overhead_factor"],
        top=config["platform_limits"]["top_ops"],
    script:
        "../scripts/make_horizon.py"


rule plot_fig10:
    input:
        instances="results/horizon/instances.parquet",
        limits=horizon_limits,
    output:
        png=report(
            "figures/fig10.png",
            caption="../report/fig10.rst",
            category="Horizon",
            labels={"figure": "fig10"},
        ),
        csv="figures/fig10.csv",
    log:
        "logs/plot_fig10.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/plot_fig10.py"


rule plot_fig11:
    input:
        runs="figures/horizon_runs.csv",
    output:
        png=report(
            "figures/fig11.png",
            caption="../report/fig11.rst",
            category="Horizon",
            labels={"figure": "fig11"},
        ),
        csv="figures/fig11.csv",
    log:
        "logs/plot_fig11.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/plot_fig11.py"
