"""Dry-run several targets of one workflow with one parse of the Snakefile (Snakemake's Python API), printing
each target's planned jobs after a ``== <target>`` line: ``python tests/plan_targets.py WORKDIR TARGET...``.

Six ``snakemake -n`` commands parse the Snakefile six times (~4 s each on 2 cores); this parses it once."""

import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings

REPO = Path(__file__).resolve().parents[1]


def main(workdir: str, *targets: str) -> None:
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=2),
            config_settings=ConfigSettings(),
            storage_settings=StorageSettings(),
            snakefile=REPO / "Snakefile",
            workdir=Path(workdir),
        )
        for target in targets:
            print(f"== {target}", file=sys.stderr, flush=True)  # the dry run logs to stderr too
            workflow.dag(dag_settings=DAGSettings(targets={target})).execute_workflow(executor="dryrun")
            sys.stderr.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
