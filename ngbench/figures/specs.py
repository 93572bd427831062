"""What each figure and table draws: its backends, which models, which batch sizes and what it reads. The
workflow's input functions (``ngbench.plan.figure_runs``) and the figure modules read these, so a figure's
rule asks for exactly the runs it draws."""

from __future__ import annotations

from dataclasses import dataclass

from ngbench.catalog import BACKENDS


@dataclass(frozen=True)
class FigureSpec:
    backends: tuple[str, ...]  # drawn backends, in bar order
    # all: every configured model (hidden ones too); drawn: every model shown in the breakdown figures;
    # config: config figures.<name>.models (config:<other>: another figure's list); table1: the configured
    # models that paper.yaml's Table I rows look in
    models: str
    reads: tuple[str, ...] = ("shares",)  # per-run files it reads: shares and/or ops (op tables)
    batch_sizes: tuple[int, ...] | None = None  # None: every configured batch size


FIGURES: dict[str, FigureSpec] = {
    "fig1": FigureSpec(backends=("torch",), models="config", batch_sizes=(1,)),
    "fig6": FigureSpec(backends=("torch",), models="drawn"),
    "fig7": FigureSpec(backends=("torch", "ort", "ort-opt"), models="config"),
    "fig8": FigureSpec(backends=("torch", "inductor", "trt"), models="config"),
    "fig9": FigureSpec(backends=("torch", "torch-int8"), models="config", reads=("shares", "ops")),
    "table1": FigureSpec(backends=("torch",), models="table1", reads=("ops",)),
    "table2": FigureSpec(backends=(), models="drawn", reads=()),  # from the registry alone: no run
    "table4": FigureSpec(backends=("torch",), models="drawn"),
    "table5": FigureSpec(backends=("torch", "inductor", "trt"), models="config:fig8", reads=("ops",)),
    # the horizon: every run of every backend (LLM.int8's sequence-length runs too), against the platform's roofs
    "horizon": FigureSpec(backends=tuple(BACKENDS), models="all", reads=("ops",)),
    "fig10": FigureSpec(backends=tuple(BACKENDS), models="all", reads=("ops",)),
    "fig11": FigureSpec(backends=tuple(BACKENDS), models="all", reads=("ops",)),
}
