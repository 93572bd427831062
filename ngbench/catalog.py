"""The one table of backends: what each is, where it runs, the job that runs it, the files it leaves and the
normalizer that reads them. The workflow's rules, the jobs, the CLI and the figures all read it.

Adding a backend is one :class:`Backend` entry here, its runner (a function in ``ngbench.jobs``) and its
normalizer (a function in ``ngbench.normalize``); the config schema lists its settings block.
Runner and normalizer are named as ``"module:function"`` so reading the table imports no heavy library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ngbench import names
from ngbench.errors import InputError


@dataclass(frozen=True)
class Backend:
    name: str  # the {backend} of result paths
    label: str  # what figures call it
    settings: str  # its block under config `backends:` (ORT's two variants share `ort`)
    devices: tuple[str, ...]  # device kinds it runs on (cpu, cuda)
    runner: str  # "module:function" of the job that profiles one run (ngbench.jobs.*)
    normalizer: str  # "module:function" turning a run's trace directory into an op table (ngbench.normalize)
    trace_format: str  # what `ngbench normalize --backend NAME` reads: kineto | ort | trt
    taxonomy_kind: str  # which name table of taxonomy.yaml classifies its ops: torch | onnx | trt
    raw_files: tuple[str, ...]  # globs of the profiler's own files inside the run's trace directory
    # rule inputs besides the input batch (``batch``): name -> template over {platform} {model} {bs} {precision}
    # and {graph} ("fp16." when the engine is built from the export's fp16 copy, else "")
    inputs: dict[str, str] = field(default_factory=dict)
    conda_env: str = "envs/torch.yaml"
    requires: tuple[str, ...] = ()  # optional Python packages (import names) the runner needs
    default_models: str = "drawn"  # without `models:` in its settings: all | drawn | none
    variant: bool = False  # selected by its settings block's `variants:` list
    fused: bool = False  # fuses operators (its GEMM rows can carry non-GEMM work): fig8, Table V
    options: dict[str, Any] = field(default_factory=dict)  # runner options fixed by the backend (not settings)

    def load_runner(self) -> Callable[..., dict]:
        return _load(self.runner)

    def load_normalizer(self) -> Callable[..., tuple[Any, dict]]:
        return _load(self.normalizer)

    def runs_on(self, device: str) -> bool:
        return device.split(":")[0] in self.devices


_ONNX_INPUTS = {
    "onnx": "results/onnx/{model}/bs{bs}.onnx",
    "data": "results/onnx/{model}/bs{bs}.onnx.data",
    "modules": "results/onnx/{model}/bs{bs}.modules.json",
}
_KINETO = (names.KINETO_TRACE_GLOB, names.SHAPES_FILE, names.EXEC_TRACE_FILE)

_TORCH = Backend(
    name="torch",
    label="PyTorch eager",
    settings="torch",
    devices=("cpu", "cuda"),
    runner="ngbench.jobs.run_torch:run",
    normalizer="ngbench.normalize:kineto_run",
    trace_format="kineto",
    taxonomy_kind="torch",
    raw_files=_KINETO,
    default_models="all",
)
# the other backends are variations of these two: only what differs is spelled out
_ORT = Backend(
    name="ort",
    label="ONNX Runtime (graph optimizations off)",
    settings="ort",
    devices=("cpu", "cuda"),
    runner="ngbench.jobs.run_ort:run",
    normalizer="ngbench.normalize:ort_run",
    trace_format="ort",
    taxonomy_kind="onnx",
    raw_files=(names.ORT_PROFILE_FILE, names.NODES_FILE),
    inputs=_ONNX_INPUTS,
    requires=("onnxruntime",),
    variant=True,
    options={"graph_optimization": "disable"},
)

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        _TORCH,
        replace(
            _TORCH,
            name="inductor",
            label="TorchInductor",
            settings="inductor",
            normalizer="ngbench.normalize:inductor_run",
            raw_files=(names.KINETO_TRACE_GLOB, f"{names.INDUCTOR_ARTIFACT_DIR}/**"),
            default_models="drawn",
            fused=True,
            options={"compile": True, "scope_modules": False, "shapes_pass": False},
        ),
        replace(
            _TORCH,
            name="torch-int8",
            label="LLM.int8 (bitsandbytes)",
            settings="torch-int8",
            requires=("bitsandbytes",),
            default_models="none",
            options={"quantize": "llm.int8"},
        ),
        _ORT,
        replace(
            _ORT,
            name="ort-opt",
            label="ONNX Runtime (ORT_ENABLE_ALL)",
            fused=True,
            options={"graph_optimization": "all"},
        ),
        Backend(
            name="trt",
            label="TensorRT",
            settings="trt",
            devices=("cuda",),
            runner="ngbench.jobs.run_trt:run",
            normalizer="ngbench.normalize:trt_run",
            trace_format="trt",
            taxonomy_kind="trt",
            raw_files=(names.TRT_PROFILE_FILE, names.TRT_LAYERS_FILE, names.NODES_FILE),
            inputs={
                "plan": "results/engines/{platform}/{model}/bs{bs}.{precision}.plan",
                "record": "results/engines/{platform}/{model}/bs{bs}.{precision}.plan.json",
                # the node table of the graph the engine was built from (the fp16 copy's has its Cast nodes)
                "modules": "results/onnx/{model}/bs{bs}.{graph}modules.json",
                "feed": "results/onnx/{model}/bs{bs}.inputs.npz",
            },
            conda_env="envs/trt.yaml",
            requires=("tensorrt",),
            fused=True,
        ),
    )
}
TRACE_FORMATS = ("kineto", "ort", "trt")


def get(name: str) -> Backend:
    """The backend called ``name``; an unknown name is an input error listing the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}") from None


def of_settings(block: str) -> list[Backend]:
    """The backends configured by one settings block (``ort`` configures ort and ort-opt)."""
    return [b for b in BACKENDS.values() if b.settings == block]


def _load(ref: str) -> Callable[..., Any]:
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)
