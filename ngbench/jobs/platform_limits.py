"""The platform's roofs, measured: memory bandwidth over working-set size, peak FLOP/s per dtype and each
backend's per-op dispatch floor. One job per platform writes ``results/platform/{platform}.json``; the
horizon (:mod:`ngbench.analysis.horizon`) sets every op's work against it.

Method (``docs/design-notes.md``, "The horizon"):

* Memory bandwidth: STREAM's four kernels (copy ``c = a``, scale ``b = s*c``, add ``c = a + b``, triad
  ``a = b + s*c``) and an in-place update ``a = s*a``, as single PyTorch ops on the study's thread count, in
  fp32, for working sets doubling from ``min_working_set_kib`` to well past the last-level cache. Bytes per
  call follow STREAM (2 arrays for copy/scale, 3 for add/triad, not counting the write-allocate reads that
  regular stores cause); the update reads and writes one array and has no such reads, so it shows what
  the memory allows an op that avoids them. The roof at each size is the best kernel. Each size runs
  enough calls to fill ``min_time_ms``, best of ``trials``. The per-call floor (the same op on one element)
  is subtracted, so a small working set measures the cache and not the dispatcher; a size whose time is
  under twice the floor is kept but marked ``resolved: false`` and left out of the curve.
* Peak FLOP/s: a square GEMM per dtype (``torch.mm``), growing until one call takes ``min_time_ms``.
* Dispatch floor per backend: the time the profiler gives one op on a one-element tensor (torch, and the
  torch-based backends: the op's host time on CPU, its kernel's device time on CUDA; ORT: one Add node's
  ``_kernel_time`` in ORT's own profile; Inductor: one compiled one-element kernel's range). The horizon
  calls an op ``overhead``-bound when its measured time is within ``overhead_factor`` of its backend's floor.
* On CUDA the same runs on the device (device-to-device copies, GEMM in the study's dtypes), timed with CUDA
  events, and the GPU's name is recorded.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ngbench import catalog, env, names

log = logging.getLogger(__name__)
# kernel -> (arrays allocated, words moved per element as counted). STREAM's four count what they name (no
# write-allocate reads); "update" (a = s*a in place) moves exactly what it counts, so it shows the
# bandwidth an op reaches without write-allocate traffic (in-place ops, non-temporal stores)
KERNELS = {"copy": (2, 2), "scale": (2, 2), "add": (3, 3), "triad": (3, 3), "update": (1, 2)}
FORMAT = "ngbench.platform-limits/1"


def last_level_cache_bytes(device: str) -> int | None:
    """The largest cache of the CPU (sysfs), or the GPU's L2."""
    if names.is_cuda(device):
        import torch

        props = torch.cuda.get_device_properties(torch.device(device))
        return int(getattr(props, "L2_cache_size", 0)) or None
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * unit)
    return max(sizes) if sizes else None


class _Timer:
    """Seconds per call of ``fn``: enough calls to fill ``min_time_s``, best of ``trials`` (CUDA: events)."""

    def __init__(self, device: str, min_time_s: float, trials: int):
        import torch

        self.cuda = names.is_cuda(device)
        self.torch = torch
        self.min_time_s, self.trials = min_time_s, trials

    def per_call(self, fn: Callable[[], Any]) -> float:
        fn()
        self._sync()
        calls, best = 1, math.inf
        while True:  # calibrate the call count
            t = self._time(fn, calls)
            if t * calls >= self.min_time_s or calls >= 1 << 20:
                best = t
                break
            calls = min(1 << 20, max(calls * 2, int(calls * self.min_time_s / max(t * calls, 1e-9)) + 1))
        for _ in range(self.trials - 1):
            best = min(best, self._time(fn, calls))
        return best

    def _sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def _time(self, fn: Callable[[], Any], calls: int) -> float:
        if self.cuda:
            start, end = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / calls
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls


def _stream_call(kernel: str, arrays: list, scalar: float) -> Callable[[], Any]:
    import torch

    a, b, c = (list(arrays) + [None, None, None])[:3]
    if kernel == "copy":
        return lambda: b.copy_(a)
    if kernel == "scale":
        return lambda: torch.mul(a, scalar, out=b)
    if kernel == "add":
        return lambda: torch.add(a, b, out=c)
    if kernel == "update":
        return lambda: a.mul_(scalar)
    return lambda: torch.add(b, c, alpha=scalar, out=a)


def memory_bandwidth(
    device: str, timer: _Timer, min_ws: int, max_ws: int, kernels: tuple[str, ...] = tuple(KERNELS)
) -> list[dict[str, Any]]:
    import torch

    dev = torch.device(device)
    floors = {}
    for kernel in kernels:
        one = [torch.ones(1, device=dev) for _ in range(KERNELS[kernel][0])]
        floors[kernel] = timer.per_call(_stream_call(kernel, one, 3.0))
    records = []
    ws = min_ws
    while ws <= max_ws:
        for kernel in kernels:
            count, words = KERNELS[kernel]
            n = max(1, ws // (count * 4))
            arrays = [torch.full((n,), 1.0 + i, device=dev) for i in range(count)]
            # update multiplies in place: by 1 it keeps the values finite call after call
            t = timer.per_call(_stream_call(kernel, arrays, 1.0 if kernel == "update" else 3.0))
            moved = words * 4 * n  # bytes the call reads and writes, as STREAM counts them
            resolved = t > 2 * floors[kernel]
            records.append(
                {
                    "kernel": kernel,
                    "working_set_bytes": ws,  # the arrays' footprint (count x n floats): the same for every kernel
                    "bytes_per_call": moved,
                    "seconds_per_call": t,
                    "floor_seconds": floors[kernel],
                    "gb_per_s": moved / (t - floors[kernel]) / 1e9 if resolved else moved / t / 1e9,
                    "resolved": resolved,
                }
            )
            del arrays
        ws *= 2
    return records


def peak_flops(device: str, timer: _Timer, dtypes: list[str], max_n: int) -> dict[str, dict[str, Any]]:
    import torch

    dev = torch.device(device)
    out: dict[str, dict[str, Any]] = {}
    for dtype in dtypes:
        torch_dtype = getattr(torch, dtype)
        n, best = 256, None
        try:
            while n <= max_n:
                a = torch.randn(n, n, device=dev).to(torch_dtype)
                b = torch.randn(n, n, device=dev).to(torch_dtype)
                t = timer.per_call(lambda a=a, b=b: torch.mm(a, b))
                rate = 2.0 * n**3 / t
                if best is None or rate > best["flops_per_s"]:
                    best = {"flops_per_s": rate, "n": n, "seconds_per_call": t}
                if t >= timer.min_time_s:
                    break
                n *= 2
        except (RuntimeError, TypeError) as exc:  # a dtype this device has no GEMM for
            out[dtype] = {"flops_per_s": None, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
            continue
        out[dtype] = {**(best or {}), "method": f"torch.mm of {best['n'] if best else '?'}^2 {dtype} matrices"}
    return out


def _profiled_op_us(device: str, fn: Callable[[], Any], name: str, calls: int = 200) -> float | None:
    """Median time the PyTorch profiler gives op ``name`` (host time on CPU, device time on CUDA)."""
    import torch
    from torch.profiler import profile

    from ngbench.backends.torch_eager import profiler_activities

    cuda = names.is_cuda(device)
    activities = profiler_activities(device)
    for _ in range(10):
        fn()
    with profile(activities=activities) as prof:
        for _ in range(calls):
            fn()
        if cuda:
            torch.cuda.synchronize()
    times = []
    for e in prof.events():
        if cuda and e.device_type == torch.autograd.DeviceType.CUDA:
            times.append(e.device_time)
        elif not cuda and e.name == name:  # the range's span, as the op's duration in a Chrome trace
            times.append(e.time_range.elapsed_us())
    return float(statistics.median(times)) if times else None


def _ort_floor(providers: list[str]) -> float | None:
    import numpy as np
    import onnx
    import onnx.helper as oh
    import onnxruntime as ort

    x = oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = oh.make_graph([oh.make_node("Add", ["x", "x"], ["y"], name="add")], "floor", [x], [y])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
    feed = {"x": np.ones(1, np.float32)}
    for _ in range(210):
        sess.run(None, feed)
    path = Path(sess.end_profiling())
    try:
        events = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
    times = [e["dur"] for e in events if e.get("cat") == "Node" and e.get("name") == "add_kernel_time"][10:]
    return float(statistics.median(times)) if times else None


def _inductor_floor(device: str) -> float | None:
    """A compiled one-element add's kernel range (``cpp.enable_kernel_profile``) or Triton kernel time."""
    import torch
    from torch.profiler import profile

    from ngbench.backends.torch_eager import profiler_activities

    cuda = names.is_cuda(device)
    with torch._inductor.config.patch({"cpp.enable_kernel_profile": True}):
        fn = torch.compile(lambda x: x + 1.0, backend="inductor")
        x = torch.ones(1, device=device)
        for _ in range(5):
            fn(x)
        activities = profiler_activities(device)
        with profile(activities=activities) as prof:
            for _ in range(200):
                fn(x)
            if cuda:
                torch.cuda.synchronize()
    times = [
        e.device_time if cuda else e.cpu_time
        for e in prof.events()
        if ("cpp_fused" in e.name or "triton_" in e.name)
        and (not cuda or e.device_type == torch.autograd.DeviceType.CUDA)
    ]
    return float(statistics.median(times)) if times else None


def torch_floor(device: str) -> tuple[float | None, str]:
    """PyTorch eager's cheapest op: aten::add on one element, as the profiler times it."""
    import torch

    x = torch.ones(1, device=device)
    us = _profiled_op_us(device, lambda: torch.add(x, x), "aten::add")
    basis = "device time of the kernel" if names.is_cuda(device) else "host range"
    return us, f"median profiled {basis} of aten::add on one element"


def ort_floor(device: str) -> tuple[float | None, str]:
    """ONNX Runtime's cheapest node: one Add on one element, from ORT's own profile."""
    providers = ["CUDAExecutionProvider"] if names.is_cuda(device) else ["CPUExecutionProvider"]
    return _ort_floor(providers), "median _kernel_time of one Add node on one element in ORT's own profile"


def inductor_floor(device: str) -> tuple[float | None, str]:
    """TorchInductor's cheapest kernel: a compiled one-element add."""
    return _inductor_floor(device), "median kernel range of a compiled one-element add"


def dispatch_floors(device: str, backends: list[str]) -> dict[str, dict[str, Any]]:
    """Each backend's dispatch floor on ``device``, by the function its catalog entry names."""
    out: dict[str, dict[str, Any]] = {}
    for backend in backends:
        entry = catalog.get(backend)
        floor = entry.load_dispatch_floor()
        if floor is None:
            out[backend] = {"us": None, "reason": f"no floor measurement for {backend} on {device}"}
            continue
        if entry.missing_packages():
            out[backend] = {"us": None, "reason": f"needs {', '.join(entry.missing_packages())} (not installed)"}
            continue
        try:
            us, how = floor(device)
        except Exception as exc:  # noqa: BLE001 (a backend that cannot run here says why)
            out[backend] = {"us": None, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
            continue
        out[backend] = {"us": us, "method": how} if us is not None else {"us": None, "reason": "no event recorded"}
    return out


def measure(params: dict, *, out: str, threads: int | None = None) -> dict[str, Any]:
    """Measure the platform's roofs with ``params`` (:func:`ngbench.jobs.settings.platform_params`)."""
    import torch

    device, settings = params["device"], params["limits"]
    record: dict[str, Any] = {"format": FORMAT, "platform": params["platform"], "device": device}
    if names.is_cuda(device) and not torch.cuda.is_available():
        record.update(status=names.STATUS_SKIPPED, reason=f"device {device!r}: no CUDA GPU is visible on this machine")
        _write(record, out)
        return record
    n_threads = settings["threads"] or threads
    if n_threads:
        torch.set_num_threads(n_threads)
    llc = last_level_cache_bytes(device)
    max_ws = settings["max_working_set_mib"] << 20 if settings["max_working_set_mib"] else None
    if max_ws is None:
        max_ws = min(max(4 * (llc or 64 << 20), 256 << 20), settings["max_auto_working_set_mib"] << 20)
    timer = _Timer(device, settings["min_time_ms"] / 1e3, settings["trials"])
    with torch.inference_mode():
        record.update(
            status=names.STATUS_OK,
            threads=torch.get_num_threads(),
            last_level_cache_bytes=llc,
            memory_bandwidth=memory_bandwidth(device, timer, settings["min_working_set_kib"] << 10, max_ws),
            memory_bandwidth_method=(
                "STREAM copy/scale/add/triad and an in-place update as single torch ops in float32, bytes per call "
                "as STREAM counts them; per-call floor (one element) subtracted; best of trials"
            ),
            peak_flops=peak_flops(device, timer, params["dtypes"], settings["max_gemm_n"]),
            dispatch_floor_us=dispatch_floors(device, params["backends"]),
            environment=env.describe(params),
        )
    if names.is_cuda(device):
        record["gpu_name"] = torch.cuda.get_device_name(torch.device(device))
    _write(record, out)
    return record


def _write(record: dict, out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(out)
