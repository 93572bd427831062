"""What every workflow script does first: send logging and stderr to the rule's log file."""

from __future__ import annotations

import logging
import sys


def start(snakemake) -> None:
    """Route stderr (Kineto, warnings) and ``logging`` to ``snakemake.log[0]``."""
    if snakemake.log:
        sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
