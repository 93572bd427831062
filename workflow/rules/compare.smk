# Comparisons the config names (`comparisons:`): runs of one model set side by side, module by module, with
# bootstrap intervals. `snakemake --cores all compare` makes every one.
rule compare_runs:
    input:
        tables=comparison_tables,
    output:
        csv="figures/compare/{name}.csv",
        waterfall="figures/compare/{name}_waterfall.csv",
        md=report(
            "figures/compare/{name}.md",
            caption="../report/compare.rst",
            category="Comparisons",
            labels={"comparison": "{name}", "kind": "table"},
        ),
        png=report(
            "figures/compare/{name}.png",
            caption="../report/compare.rst",
            category="Comparisons",
            labels={"comparison": "{name}", "kind": "figure"},
        ),
    log:
        "logs/compare_runs/{name}.log",
    wildcard_constraints:
        name="|".join(COMPARISONS) or "^$",
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda w: COMPARISONS[w.name],
    script:
        "../scripts/compare_runs.py"


rule compare:
    input:
        expand("figures/compare/{name}.png", name=COMPARISONS),
