"""The study's jobs, one module per stage; ``workflow/scripts/*.py`` only bridge ``snakemake.*`` to these.

Each job takes plain paths and the settings dict its rule passes as ``params`` (built by
:mod:`ngbench.jobs.settings`), so it runs the same from the workflow, the CLI or a test.
"""
