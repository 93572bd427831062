import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench.analysis import compare as cmp  # noqa: E402
from ngbench.figures import compare_runs  # noqa: E402

settings = snakemake.params.settings
runs = compare_runs.runs_from_specs(list(snakemake.input.tables))
result = cmp.compare(runs, alpha=settings["alpha"], resamples=settings["resamples"], detect_fraction=settings["detect"])
compare_runs.write_tables(result, snakemake.output.csv.removesuffix(".csv"))
compare_runs.draw(result, snakemake.output.png, top=settings["top"])
