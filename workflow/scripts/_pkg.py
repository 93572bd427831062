"""Makes the ngbench package (two levels up, beside the Snakefile) importable from workflow scripts, whatever
environment Snakemake runs them in (Snakemake puts this folder on sys.path)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
