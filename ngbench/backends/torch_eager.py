"""PyTorch eager backend (``backend=torch``): unprofiled latency, then a separate profiled run.

One short profiler cycle per measured iteration (schedule warmup=1, active=1, repeat=N), each exported to
its own ``trace.<k>.json.gz``: measured here (torch 2.14.1, 2-core CPU, GPT-2 bs2), one long profiling
session made successive iterations slower and slower (502, 559, 820, 1047, 794 ms against 480 ms
unprofiled; element-wise ops up to 10x slower, page faults as the profiler's growing buffers disturb the
allocator), while per-iteration cycles stayed at the unprofiled latency (597, 523, 539, 561, 520 ms against
about 550 ms).

Input shapes come from a separate one-iteration profile with ``record_shapes=True`` (``shapes.json.gz``):
measured here (torch 2.14.1, CPU), recording shapes in the timed profile made each successive iteration
slower (GPT-2: 316, 342, 751, 1046, 1021 ms against 270 ms unprofiled), element-wise ops most, so the
timed profile never records shapes and the normalizer joins the shapes by op sequence.

Module scoping: while (and only while) profiling, global forward pre/post hooks open and close a
``record_function`` range ``ngb.module::<path>::<Class>`` around every ``nn.Module`` call, so the trace says
which module ran each op. The normalizer reads those ranges; the unprofiled latency run has no hooks.
``benchmarks/profiler_overhead.py`` measures what the hooks add on top of the plain profiler.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ngbench import names
from ngbench.backends.load import measured_phase
from ngbench.backends.timing import summarize, time_iterations
from ngbench.errors import Unavailable

log = logging.getLogger(__name__)


class DeviceUnavailable(Unavailable):
    pass


@contextmanager
def module_scopes(model) -> Iterator[None]:
    """Record every nn.Module call of ``model`` as a profiler range named after its path and class."""
    import torch
    from torch.nn.modules import module as nn_module

    paths = {id(m): (n or "<root>") for n, m in model.named_modules()}
    open_ranges: list[Any] = []
    fast = getattr(torch._C._profiler, "_RecordFunctionFast", None)

    def pre(mod, args):
        label = f"{names.MODULE_SCOPE_PREFIX}{paths.get(id(mod), '<unnamed>')}::{type(mod).__name__}"
        rf = fast(label) if fast is not None else torch.autograd.profiler.record_function(label)
        rf.__enter__()
        open_ranges.append(rf)

    def post(mod, args, out):
        if open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    h_pre = nn_module.register_module_forward_pre_hook(pre)
    h_post = nn_module.register_module_forward_hook(post, always_call=True)
    try:
        yield
    finally:
        h_pre.remove()
        h_post.remove()
        while open_ranges:
            open_ranges.pop().__exit__(None, None, None)


def profiler_activities(device: str) -> list:
    """What the PyTorch profiler records on ``device``: host ops always, CUDA kernels and copies on a GPU."""
    from torch.profiler import ProfilerActivity

    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if names.is_cuda(device) else [])


def _device(name: str):
    import torch

    require_device(name)
    return torch.device(name)


def require_device(name: str) -> None:
    """Raise :class:`DeviceUnavailable` (the job is skipped) when ``name`` is a CUDA device this machine
    does not have."""
    import torch

    if names.is_cuda(name) and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"device {name!r}: no CUDA GPU is visible on this machine (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda or 'none'})"
        )


def prepare(model, inputs: dict, *, device: str, dtype: str, threads: int | None, move_model: bool = True):
    """Model and inputs on the device in ``dtype``, eval mode; returns (model, inputs, sync)."""
    import torch

    dev = _device(device)
    if threads:
        torch.set_num_threads(threads)
    torch_dtype = getattr(torch, dtype)
    if move_model:  # a bitsandbytes-quantized model is placed when loaded and refuses .to()
        model = model.to(dev)
        if torch_dtype != torch.float32:
            model = model.to(torch_dtype)
    inputs = {k: v.to(dev) for k, v in inputs.items()}
    if torch_dtype != torch.float32:
        inputs = {k: v.to(torch_dtype) if v.is_floating_point() else v for k, v in inputs.items()}
    model.eval()
    sync = (lambda: torch.cuda.synchronize(dev)) if names.is_cuda(dev.type) else (lambda: None)  # the job's device
    return model, inputs, sync


def run(
    model,
    inputs: dict,
    *,
    device: str,
    trace_dir: str | Path,
    warmup: int,
    iterations: int,
    profile_iterations: int,
    threads: int | None,
    dtype: str = "float32",
    scope_modules: bool = True,
    shapes_pass: bool = True,
    compiler: Callable[[Any, dict, Path], tuple[Any, dict]] | None = None,
    move_model: bool = True,
) -> dict[str, Any]:
    """Measure unprofiled latency, then profile; write the raw trace to ``trace_dir``. Returns a record.

    ``compiler(model, inputs, trace_dir) -> (compiled model, record)`` (TorchInductor) compiles under
    ``inference_mode`` and makes the first call itself, so compile time is its own and never a latency or
    warm-up sample."""
    import torch

    model, inputs, sync = prepare(model, inputs, device=device, dtype=dtype, threads=threads, move_model=move_model)
    dev = _device(device)
    cuda = names.is_cuda(dev.type)

    trace_dir = Path(trace_dir)
    trace_dir.mkdir(parents=True, exist_ok=True)
    compiled: dict[str, Any] = {}
    if compiler is not None:
        with torch.inference_mode():
            model, compiled = compiler(model, inputs, trace_dir)
            sync()

    def step():
        model(**inputs)

    load: dict[str, Any] = {}
    with torch.inference_mode():
        warm = time_iterations(step, sync, warmup)
        with measured_phase(load, "unprofiled"):
            latency = time_iterations(step, sync, iterations)

        activities = profiler_activities(device)
        scopes = (lambda: module_scopes(model)) if scope_modules else _null
        with measured_phase(load, "profiled"):
            exported, profiled = _profiled_cycles(step, sync, trace_dir, activities, scopes, profile_iterations)
        if shapes_pass:
            _shapes_pass(step, sync, trace_dir, activities, scopes)
    lat, prof_stats = summarize(latency), summarize(profiled)
    return {
        "traces": exported,
        "profiler_schedule": "one cycle per measured iteration: warmup=1, active=1",
        "device": str(dev),
        "dtype": dtype,
        "grad_mode": "inference_mode",
        "warmup": warmup,
        "warmup_samples_ms": warm,
        "latency_samples_ms": latency,
        "latency": lat,
        "profiled_samples_ms": profiled,
        "profiled": prof_stats,
        "profiler_overhead_ratio": prof_stats["median_ms"] / lat["median_ms"] if lat and prof_stats else None,
        "load": load,
        "module_scopes": "forward pre/post hooks -> record_function ranges" if scope_modules else "none",
        "shapes": f"separate record_shapes pass ({names.SHAPES_FILE}, {names.EXEC_TRACE_FILE})"
        if shapes_pass
        else "not recorded",
        "profiler_activities": [a.name for a in activities],
        "sync": "torch.cuda.synchronize before and after each iteration" if cuda else "none needed (CPU)",
        **({"compile": compiled} if compiler is not None else {}),
    }


def _profiled_cycles(step, sync, trace_dir: Path, activities, scopes, cycles: int) -> tuple[list[str], list[float]]:
    """One profiler cycle per measured iteration (a warm-up step, then the measured one), each exported as
    its own trace: (trace file names, the measured steps' times in ms)."""
    from torch.profiler import profile, schedule

    exported: list[str] = []
    times: list[float] = []

    def export(prof):
        path = trace_dir / names.KINETO_TRACE_FILE.format(cycle=len(exported))
        prof.export_chrome_trace(str(path))
        exported.append(path.name)

    with (
        warnings.catch_warnings(),  # scoped: the filter must not pile up in the global list per run
        scopes(),
        profile(
            activities=activities,
            record_shapes=False,
            schedule=schedule(wait=0, warmup=1, active=1, repeat=cycles),
            on_trace_ready=export,
        ) as prof,
    ):
        # clearing events at the end of each cycle is what we want (see the module docstring)
        warnings.filterwarnings("ignore", message=".*Profiler clears events at the end of each cycle")
        for _ in range(2 * cycles):
            times += time_iterations(step, sync, 1)
            prof.step()
    return exported, times[1::2]  # each cycle's warm-up step is not measured


def _shapes_pass(step, sync, trace_dir: Path, activities, scopes) -> None:
    """One more iteration with record_shapes and the execution trace observer: the ops' inputs, joined to
    the timed traces (whose timing they would disturb)."""
    from torch.profiler import profile

    exec_trace = _exec_trace_observer(trace_dir)
    with scopes(), profile(activities=activities, record_shapes=True, execution_trace_observer=exec_trace) as prof:
        step()
        sync()
    prof.export_chrome_trace(str(trace_dir / names.SHAPES_FILE))
    _compress_exec_trace(trace_dir)


@contextmanager
def _null() -> Iterator[None]:
    yield


_EXEC_TRACE_RAW = "exec_trace.json"


def _exec_trace_observer(trace_dir: Path):
    """PyTorch's execution trace of the shapes pass: every op's input and output tensors (shape, strides,
    dtype, tensor and storage ids), the source of the ops' exact bytes. None where this torch lacks it."""
    try:
        from torch.profiler import ExecutionTraceObserver
    except ImportError:
        return None
    return ExecutionTraceObserver().register_callback(str(trace_dir / _EXEC_TRACE_RAW))


def _compress_exec_trace(trace_dir: Path) -> None:
    import gzip
    import shutil

    raw = trace_dir / _EXEC_TRACE_RAW
    if raw.is_file():
        with raw.open("rb") as src, gzip.open(trace_dir / names.EXEC_TRACE_FILE, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
        raw.unlink()
