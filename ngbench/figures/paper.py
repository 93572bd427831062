"""The paper's reported values, read from ``paper.yaml`` (the one copy; figures, tables and the scorecard
read it)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

PAPER_PATH = Path(__file__).with_name("paper.yaml")


@cache
def load() -> dict[str, Any]:
    return yaml.safe_load(PAPER_PATH.read_text())


def section(name: str) -> dict[str, Any]:
    return load()[name]
