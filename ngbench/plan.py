"""Which runs exist: the runs this machine's config asks for, runs copied in from other platforms, and the
runs each figure draws. The workflow's input functions are these, so ``snakemake figures/fig6.png`` plans
exactly fig6's runs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ngbench import catalog, names
from ngbench.figures.specs import FIGURES
from ngbench.jobs.settings import model_settings


class Run(NamedTuple):
    platform: str
    backend: str
    model: str
    bs: int


def hidden_models(config: dict) -> list[str]:
    """Configured models with ``figures: false`` (kept in results/shares.parquet, not drawn)."""
    return sorted(m for m, o in config["models"].items() if o and o.get("figures") is False)


def drawn_models(config: dict) -> list[str]:
    """Configured models shown in the breakdown figures (the default model set of most backends)."""
    hidden = set(hidden_models(config))
    return [m for m in config["models"] if m not in hidden]


def _models(config: dict, entry: catalog.Backend, block: dict) -> list[str]:
    if block.get("models"):
        return list(block["models"])
    return {"all": list(config["models"]), "drawn": drawn_models(config), "none": []}[entry.default_models]


def configured_runs(config: dict) -> list[Run]:
    """Every (platform, backend, model, batch) this machine runs under ``config`` (validated, defaults set)."""
    runs = []
    for entry in catalog.BACKENDS.values():
        block = config["backends"][entry.settings]
        if not block["enabled"] or (entry.variant and entry.name not in block["variants"]):
            continue
        platforms = [
            p
            for p, spec in config["platforms"].items()
            if entry.runs_on(spec["device"]) and (spec.get("backends") is None or entry.name in spec["backends"])
        ]
        for model in _models(config, entry, block):
            sizes = model_settings(config, model)["batch_sizes"]
            if block.get("batch_sizes"):
                sizes = [b for b in sizes if b in block["batch_sizes"]]
            runs += [Run(p, entry.name, model, bs) for bs in sizes for p in sorted(platforms)]
    return runs


def figure_models(config: dict, figure: str) -> list[str] | None:
    """The models a figure or table draws (None: any model a run has)."""
    spec = FIGURES[figure]
    if spec.models == "any":
        return None
    if spec.models == "all":
        return list(config["models"])
    if spec.models == "drawn":
        return drawn_models(config)
    if spec.models == "table1":
        from ngbench.figures.table1 import run_models

        return sorted(run_models() & set(config["models"]))
    source = spec.models.partition(":")[2] or figure
    return list(config["figures"][source]["models"])


def figure_runs(figure: str, config: dict, runs: Iterable[Run]) -> list[Run]:
    """Of ``runs``, those the figure draws: its backends, its models, its batch sizes."""
    spec = FIGURES[figure]
    models = figure_models(config, figure)
    return sorted(
        r
        for r in set(runs)
        if r.backend in spec.backends
        and (models is None or r.model in models)
        and (spec.batch_sizes is None or r.bs in spec.batch_sizes)
    )


def shares_path(run: Run) -> str:
    return f"results/shares/{run.platform}/{run.backend}/{run.model}/bs{run.bs}.parquet"


def unknown_path(run: Run) -> str:
    return f"results/shares/{run.platform}/{run.backend}/{run.model}/bs{run.bs}.unknown.csv"


def compat_path(run: Run) -> str:
    return f"results/shares/{run.platform}/{run.backend}/{run.model}/bs{run.bs}.compat.parquet"


def ops_path(run: Run) -> str:
    return f"results/ops/{run.platform}/{run.backend}/{run.model}/bs{run.bs}.parquet"


def trace_dir(run: Run) -> str:
    return f"results/traces/{run.platform}/{run.backend}/{run.model}/bs{run.bs}"


def unnormalized_runs(runs: Iterable[Run], root: Path) -> list[Run]:
    """Measured runs (their ``meta.json`` is on disk) whose op table or shares are missing, as after a
    normalization that was killed after Snakemake removed its old outputs."""
    return [
        r
        for r in runs
        if (root / trace_dir(r) / names.META_FILE).is_file()
        and not all((root / p).is_file() for p in (ops_path(r), shares_path(r)))
    ]


MEASUREMENT_RULES = (
    "profile",
    "measure_energy",
    "build_engine",
    "measure_platform",
)  # jobs that need the platform's device


def cuda_visible() -> bool:
    """Whether this machine can run a CUDA platform's measurements (torch sees a GPU)."""
    try:
        import torch
    except ImportError:  # the TensorRT env: NVML is the next best witness
        try:
            import pynvml

            pynvml.nvmlInit()
            return pynvml.nvmlDeviceGetCount() > 0
        except Exception:  # noqa: BLE001 - no driver, no library: no GPU
            return False
    return torch.cuda.is_available()


def absent_devices(config: dict, planned: Iterable[tuple[str, str]], has_cuda: bool) -> str | None:
    """Why the planned (rule, platform) measurements cannot run on this machine, or None. A CUDA platform's
    jobs need a GPU here; results imported from its machine (``ngbench archive import``) plan no job."""
    if has_cuda:
        return None
    cuda = sorted(
        {
            p
            for rule, p in planned
            if rule in MEASUREMENT_RULES and names.is_cuda(config["platforms"].get(p, {}).get("device", ""))
        }
    )
    if not cuda:
        return None
    return (
        f"platform(s) {', '.join(cuda)}: device cuda, but no CUDA GPU is visible on this machine; run them on "
        "a GPU machine and bring the results here with `ngbench archive export/import`, or drop them from "
        "config platforms:"
    )
