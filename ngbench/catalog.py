"""The one table of backends: what each is, where it runs, the job that runs it, the files it reads and the
normalizer that reads its traces. The workflow's rules, the jobs, the analyses, the CLI and the figures read
every fact about a backend here; none of them decides anything by a backend's name.

Adding a backend is one :class:`Backend` entry here, its runner (a function in ``ngbench.jobs``) and its
normalizer (a function in ``ngbench.normalize``); the config schema lists its settings block (README: "Adding a
backend"). Runner, normalizer and dispatch floor are named as ``"module:function"`` so reading the table
imports no heavy library.
"""

from __future__ import annotations

import importlib
import importlib.util
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
    trace_format: str  # the profiler's format of its traces: kineto | ort | trt
    trace_glob: str  # the profiler's own files in a run's trace directory (one per measured cycle, or one)
    constituent_kind: str  # the name table of taxonomy.yaml that names the ops inside its fused rows: torch | onnx
    # rule inputs besides the input batch (``batch``): name -> template over {platform} {model} {bs} {precision}
    # and {graph} ("fp16." when the engine is built from the export's fp16 copy, else "")
    inputs: dict[str, str] = field(default_factory=dict)
    conda_env: str = "envs/torch.yaml"
    requires: tuple[str, ...] = ()  # optional Python packages (import names) the runner needs: without them it skips
    builds_model: bool = True  # False: runs a prebuilt artifact (an engine), so its job never builds the model
    dispatch_floor: str = ""  # "module:function" timing its cheapest op on a device (the horizon's floor), if any
    default_models: str = "drawn"  # without `models:` in its settings: all | drawn | none
    variant: bool = False  # selected by its settings block's `variants:` list
    fused: bool = False  # fuses operators (its GEMM rows can carry non-GEMM work): fig8, Table V
    quantized: bool = False  # runs GEMMs in a quantized format: fig9 and the int8 claims set it against its baseline
    options: dict[str, Any] = field(default_factory=dict)  # runner options fixed by the backend (not settings)

    def load_runner(self) -> Callable[..., dict]:
        return _load(self.runner)

    def load_normalizer(self) -> Callable[..., tuple[Any, dict]]:
        return _load(self.normalizer)

    def load_dispatch_floor(self) -> Callable[..., tuple[float | None, str]] | None:
        return _load(self.dispatch_floor) if self.dispatch_floor else None

    def runs_on(self, device: str) -> bool:
        return names.device_kind(device) in self.devices

    def missing_packages(self) -> list[str]:
        """The optional packages of :attr:`requires` that are not installed here."""
        return [p for p in self.requires if importlib.util.find_spec(p) is None]


_ONNX_INPUTS = {
    "onnx": "results/onnx/{model}/bs{bs}.onnx",
    "data": "results/onnx/{model}/bs{bs}.onnx.data",
    "modules": "results/onnx/{model}/bs{bs}.modules.json",
}
_TORCH = Backend(
    name="torch",
    label="PyTorch eager",
    settings="torch",
    devices=("cpu", "cuda"),
    runner="ngbench.jobs.run_torch:run",
    normalizer="ngbench.normalize:kineto_run",
    trace_format="kineto",
    trace_glob=names.KINETO_TRACE_GLOB,
    constituent_kind="torch",
    default_models="all",
    dispatch_floor="ngbench.jobs.platform_limits:torch_floor",
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
    trace_glob=names.ORT_PROFILE_FILE,
    constituent_kind="onnx",
    inputs=_ONNX_INPUTS,
    requires=("onnxruntime",),
    variant=True,
    dispatch_floor="ngbench.jobs.platform_limits:ort_floor",
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
            default_models="drawn",
            dispatch_floor="ngbench.jobs.platform_limits:inductor_floor",
            fused=True,
            options={"compile": True, "scope_modules": False, "shapes_pass": False},
        ),
        replace(
            _TORCH,
            name="torch-int8",
            label="LLM.int8 (bitsandbytes)",
            settings="torch-int8",
            requires=("bitsandbytes", "accelerate"),
            default_models="none",
            quantized=True,
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
            trace_glob=names.TRT_PROFILE_FILE,
            constituent_kind="onnx",
            inputs={
                "plan": "results/engines/{platform}/{model}/bs{bs}.{precision}.plan",
                "record": "results/engines/{platform}/{model}/bs{bs}.{precision}.plan.json",
                # the node table of the graph the engine was built from (the fp16 copy's has its Cast nodes)
                "modules": "results/onnx/{model}/bs{bs}.{graph}modules.json",
                "feed": "results/onnx/{model}/bs{bs}.inputs.npz",
            },
            conda_env="envs/trt.yaml",
            requires=("tensorrt",),
            builds_model=False,
            fused=True,
        ),
    )
}
TRACE_FORMATS = ("kineto", "ort", "trt")
# the unfused, unquantized run every comparison starts from (fig8, fig9, Table V, energy, the compat metric)
BASELINE = "torch"


def get(name: str) -> Backend:
    """The backend called ``name``; an unknown name is an input error listing the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}") from None


def unfused_baseline(name: str) -> str:
    """The run a fusing backend's dividend is measured against: the first unfused, unquantized backend that
    writes the same trace format (ort for ort-opt: the same runtime without graph optimizations; torch for
    Inductor), else :data:`BASELINE` (TensorRT)."""
    entry = get(name)
    same = [b.name for b in BACKENDS.values() if not (b.fused or b.quantized) and b.trace_format == entry.trace_format]
    return same[0] if same else BASELINE


def _load(ref: str) -> Callable[..., Any]:
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)
