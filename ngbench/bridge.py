"""What every workflow script does first: send logging and stderr to the rule's log file."""

from __future__ import annotations

import logging
import os
import sys


def start(snakemake) -> None:
    """Route stderr (Python warnings and native libraries such as Kineto, which write to fd 2) and
    ``logging`` to ``snakemake.log[0]``."""
    if snakemake.log:
        log_file = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr.flush()
        os.dup2(log_file.fileno(), 2)
        sys.stderr = log_file
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
