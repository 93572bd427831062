"""Table II: parameters per model from the full-depth config (meta device), beside the paper's."""

from __future__ import annotations

import pandas as pd

from ngbench.figures import paper
from ngbench.figures import tables as table_files

TITLE = "Table II: parameters per model"
NOTES = (
    "parameters: counted on PyTorch's meta device from the full-depth architecture config in the registry "
    "(no weights needed). paper_M: the paper's Table II. The paper rounds, and counts some models without their "
    "task heads or tied embeddings, so ratios near 1 agree."
)


def table(specs: dict, count) -> pd.DataFrame:
    """Parameter count of each registered model from its full-depth config, beside the paper's Table II."""
    notes = paper.section("table2")["notes"]
    rows = []
    for name, spec in specs.items():
        reported = spec.paper_params
        note = notes.get(name, "" if reported else "not in the paper's Table II")
        try:
            params = count(spec)
        except Exception as exc:  # noqa: BLE001 - a broken entry is reported in its row, not fatal
            params, note = None, f"cannot build: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        rows.append(
            {
                "model": name,
                "paper_name": spec.paper_name,
                "task": spec.task,
                "source": spec.hf_id or f"torchvision {spec.builder}",
                "parameters": params,
                "parameters_M": round(params / 1e6, 1) if params else None,
                "paper_M": round(reported / 1e6, 1) if reported else None,
                "ratio_to_paper": round(params / reported, 3) if reported and params else None,
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: the registry's models (the config's own entries too)."""
    from ngbench import registry

    rows = table(registry.load(p["custom_models"]), registry.count_parameters)
    table_files.write(rows, o["csv"], o["md"], TITLE, NOTES)
