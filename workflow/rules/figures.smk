# The paper's figures and tables, the horizon and the scorecard: one rule per row of the figure table
# (ngbench.figures.specs), which names what each draws, reads and writes and the function that makes it.
for figure, spec in FIGURES.items():

    rule:
        name:
            spec.rule
        input:
            **figure_inputs(figure),
        output:
            **figure_outputs(figure),
        log:
            f"logs/{spec.rule}.log",
        conda:
            "../../envs/torch.yaml"
        params:
            **figure_params(figure),
        script:
            "../scripts/make_figure.py"
