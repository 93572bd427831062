"""The study's products, one row each: what it draws (backends, models, batch sizes), what it reads and writes,
the config it depends on and the function that makes it. The workflow's figure rules are made from this table
(``workflow/rules/figures.smk``), as are the named targets and each rule's inputs, so a product reruns exactly
when what it draws changes: its runs, the files it names (``paper.yaml`` included) or its params.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ngbench.catalog import BACKENDS

# inputs every workflow resolves the same way (common.smk: SHARED_INPUTS): package data and study-wide files
SHARED = ("paper", "taxonomy", "registry", "energy", "limits")
PER_RUN = ("shares", "ops", "compat")  # per-run files: of the runs the product draws


@dataclass(frozen=True)
class FigureSpec:
    make: str  # "module:function" making it from (inputs, outputs, params), each a dict by name
    outputs: dict[str, str]  # name -> path; the first is the product a target names and the report shows
    backends: tuple[str, ...] = ()  # drawn backends, in bar order
    # all: every configured model (hidden ones too); any: every run there is (copied-in platforms' models too);
    # drawn: every model shown in the breakdown figures; config: config figures.<name>.models (config:<other>:
    # another figure's list); table1: the configured models that paper.yaml's Table I rows look in
    models: str = "drawn"
    reads: tuple[str, ...] = ()  # per-run files of the runs it draws (PER_RUN)
    # other inputs: name -> one of SHARED, or "<product>.<output>" (another product's output)
    files: dict[str, str] = field(default_factory=dict)
    params: tuple[str, ...] = ()  # config it reads: models, custom_models, overhead_factor, top, figure_models
    batch_sizes: tuple[int, ...] | None = None  # None: every configured batch size
    category: str = "Figures"  # the report's section

    @property
    def product(self) -> str:
        return next(iter(self.outputs.values()))

    @property
    def is_figure(self) -> bool:
        return self.product.endswith(".png")

    @property
    def rule(self) -> str:
        """The rule's name: plot_<name> for a figure (PNG), make_<name> for a table."""
        return ("plot_" if self.is_figure else "make_") + self._name

    @property
    def _name(self) -> str:
        return self.product.rsplit("/", 1)[-1].split(".")[0]

    def load_make(self) -> Callable[[dict, dict, dict], None]:
        module, _, function = self.make.partition(":")
        return getattr(importlib.import_module(module), function)


def _figure(name: str, **kw) -> FigureSpec:
    outputs = {"png": f"figures/{name}.png", "csv": f"figures/{name}.csv", **kw.pop("outputs", {})}
    return FigureSpec(make=f"ngbench.figures.{name}:make", outputs=outputs, **kw)


def _table(name: str, **kw) -> FigureSpec:
    outputs = {"md": f"figures/{name}.md", "csv": f"figures/{name}.csv", **kw.pop("outputs", {})}
    return FigureSpec(make=f"ngbench.figures.{name}:make", outputs=outputs, category="Tables", **kw)


_BREAKDOWN = {"reads": ("shares",), "files": {"taxonomy": "taxonomy"}}
FIGURES: dict[str, FigureSpec] = {
    "fig1": _figure("fig1", backends=("torch",), models="config", batch_sizes=(1,), params=("models",), **_BREAKDOWN),
    "fig5": _figure("fig5", files={"energy": "energy", "taxonomy": "taxonomy"}),
    "fig6": _figure("fig6", backends=("torch",), reads=("shares",), files={"taxonomy": "taxonomy", "paper": "paper"}),
    "fig7": _figure("fig7", backends=("torch", "ort", "ort-opt"), models="config", params=("models",), **_BREAKDOWN),
    "fig8": _figure("fig8", backends=("torch", "inductor", "trt"), models="config", params=("models",), **_BREAKDOWN),
    "fig9": _figure(
        "fig9",
        backends=("torch", "torch-int8"),
        models="config",
        reads=("shares", "ops"),
        files={"taxonomy": "taxonomy", "paper": "paper"},
        params=("models",),
        outputs={"summary": "figures/fig9_summary.csv"},
    ),
    "table1": _table(
        "table1",
        backends=("torch",),
        models="table1",
        reads=("ops",),
        files={"paper": "paper"},
        outputs={"ops": "figures/table1_ops.csv"},
    ),
    # from the registry alone: no run
    "table2": _table("table2", files={"registry": "registry", "paper": "paper"}, params=("custom_models",)),
    "table4": _table("table4", backends=("torch",), reads=("shares",), files={"paper": "paper"}),
    "table5": _table(
        "table5",
        backends=("torch", "inductor", "trt"),
        models="config:fig8",
        reads=("ops",),
        files={"paper": "paper"},
        outputs={"full": "figures/table5_all_rates.csv"},
    ),
    # the horizon: every run of every backend (LLM.int8's sequence-length runs too), against the platform's roofs
    "horizon": FigureSpec(
        make="ngbench.figures.horizon:make",
        outputs={
            "md": "figures/horizon.md",
            "csv": "figures/horizon.csv",
            "runs": "figures/horizon_runs.csv",
            "fusion": "figures/horizon_fusion.csv",
            "instances": "results/horizon/instances.parquet",
        },
        backends=tuple(BACKENDS),
        models="all",
        reads=("ops",),
        files={"limits": "limits", "taxonomy": "taxonomy"},
        params=("overhead_factor", "top"),
        category="Horizon",
    ),
    "fig10": _figure(
        "fig10",
        backends=tuple(BACKENDS),
        models="all",
        files={"instances": "horizon.instances", "limits": "limits", "taxonomy": "taxonomy"},
        category="Horizon",
    ),
    "fig11": _figure(
        "fig11",
        backends=tuple(BACKENDS),
        models="all",
        files={"runs": "horizon.runs", "taxonomy": "taxonomy"},
        category="Horizon",
    ),  # fmt: skip
    # every claim of the paper against every run there is
    "scorecard": _table(
        "scorecard",
        backends=tuple(BACKENDS),
        models="any",
        reads=("shares", "compat"),
        files={
            "paper": "paper",
            "table1": "table1.csv",
            "table2": "table2.csv",
            "table4": "table4.csv",
            "table5": "table5.full",
            "fig9_summary": "fig9.summary",
        },
        params=("figure_models",),
    ),
}


def input_file(source: str) -> str | None:
    """The path of ``<product>.<output>`` (another product's output), or None for a shared input's name."""
    if source in SHARED:
        return None
    product, _, output = source.partition(".")
    return FIGURES[product].outputs[output]


def by_rule(rule: str) -> FigureSpec:
    return next(spec for spec in FIGURES.values() if spec.rule == rule)
