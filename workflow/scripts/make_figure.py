import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.figures import specs  # noqa: E402

# the product this rule makes (figures.smk makes one rule per row of the figure table)
make = specs.by_rule(snakemake.rule).load_make()
make(
    {name: snakemake.input[name] for name in snakemake.input.keys()},
    {name: snakemake.output[name] for name in snakemake.output.keys()},
    {name: snakemake.params[name] for name in snakemake.params.keys()},
)
