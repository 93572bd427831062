"""What every workflow script does first: send logging and stderr to the rule's log file, and report bad
input (:class:`ngbench.errors.InputError`) as one line there, as the CLI does."""

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
    sys.excepthook = _report


def _report(kind, exc, tb) -> None:
    """The job's last word: bad input as ``error: <one line>`` (exit code 2); anything else, a bug, with
    its traceback."""
    from ngbench.errors import InputError

    if isinstance(exc, InputError):
        print(f"error: {exc}", file=sys.stderr, flush=True)
        os._exit(2)
    sys.__excepthook__(kind, exc, tb)
