"""TensorRT backend (``backend=trt``, CUDA platforms only), through the TensorRT Python API (10.4 to 11.x).

* :func:`build_engine`: ONNX export -> serialized engine (``results/engines/{platform}/{model}/bs{bs}.
  {precision}.plan``): fp16 by default (PyTorch's GPU runs are fp16), fp32 with TF32 off or tf32 as
  variants, ``ProfilingVerbosity.DETAILED`` so the layer information names the fused ONNX nodes, a timing
  cache kept per platform, the builder's log saved beside the plan. Networks are *strongly typed* by
  default: an fp16 engine is built from the fp16 copy of the export (``bs{bs}.fp16.onnx``, made by
  :func:`ngbench.backends.onnx_export.to_fp16`), and the engine computes in the types the graph states.
  TensorRT 11 removed the weakly typed precision flags (``BuilderFlag.FP16`` and friends: NVIDIA's 10 -> 11
  migration guide; the compiled ``tensorrt-cu12-bindings`` 11.x module has no ``FP16`` flag), so
  ``typing: weak`` (fp32 graph + the FP16 flag) works on TensorRT 10 only and fails on 11 with that reason.
  ``tests/test_trt_api.py`` checks every TensorRT name used here against the compiled bindings of 10.4,
  10.16 and 11.4.
* :func:`run`: end-to-end latency (a CUDA graph of one ``execute_async_v3`` when capture succeeds; whether
  it did is recorded), then, in a separate pass, per-layer times through ``IProfiler``, written in
  trtexec's ``--exportProfile`` layout (``profile.json``), and the engine inspector's layer information
  (``layers.json``, trtexec's ``--exportLayerInfo`` layout). :mod:`ngbench.traces.trt` parses both, and
  the same files from a user's ``trtexec`` run.

``tensorrt`` and ``cuda-python`` (device buffers, events, CUDA graphs) are imported lazily: they are
optional dependencies for GPU users (TensorRT's wheels come from NVIDIA's index), installed by
``envs/trt.yaml``, which holds no torch stack; inputs come as numpy arrays (``bs{bs}.inputs.npz`` beside
the ONNX export). Without them, or without a GPU, jobs fail with that reason (recorded, not crashed).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from ngbench import names
from ngbench.errors import Unavailable

PRECISIONS = ("fp16", "fp32", "tf32")


class TensorRTUnavailable(Unavailable):
    pass


def _trt():
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(
            "tensorrt is not installed: it needs an NVIDIA GPU and NVIDIA's wheels (envs/trt.yaml, or "
            "pip install tensorrt on a machine that can reach pypi.nvidia.com)"
        ) from exc
    return tensorrt


def _logger(trt, log_path: Path | None):
    class FileLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.file = open(log_path, "a") if log_path else None  # noqa: SIM115 - closed by the caller

        def log(self, severity, msg):
            if self.file is not None:
                self.file.write(f"[{severity.name}] {msg}\n")

    return FileLogger()


TYPINGS = ("strong", "weak")


class TensorRTVersionError(RuntimeError):
    pass


def build_engine(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    precision: str = "fp16",
    typing: str = "strong",
    timing_cache: str | Path | None = None,
    log_path: str | Path | None = None,
    workspace_gib: float | None = None,
) -> dict[str, Any]:
    """``onnx_path``: the graph in the types to build (the fp16 copy for a strongly typed fp16 engine, the
    fp32 export otherwise)."""
    if precision not in PRECISIONS:
        raise ValueError(f"TensorRT precision {precision!r}: expected one of {PRECISIONS}")
    if typing not in TYPINGS:
        raise ValueError(f"TensorRT typing {typing!r}: expected one of {TYPINGS}")
    trt = _trt()
    flags = 0
    if typing == "strong":
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    elif precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        raise TensorRTVersionError(
            f"TensorRT {trt.__version__} has no weakly typed precision flags (BuilderFlag.FP16 was removed in "
            "TensorRT 11): set backends.trt.typing to strong (an engine from the fp16 copy of the export)"
        )
    logger = _logger(trt, Path(log_path) if log_path else None)
    try:
        builder = trt.Builder(logger)
        network = builder.create_network(flags)  # explicit batch is the only mode since TensorRT 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):  # reads the external weights file beside the model
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        if typing == "weak" and precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "fp32":
            config.clear_flag(trt.BuilderFlag.TF32)
        elif precision == "tf32":
            config.set_flag(trt.BuilderFlag.TF32)
        if workspace_gib:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
        cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(cache_bytes)
        config.set_timing_cache(cache, ignore_mismatch=False)
        t0 = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        build_s = time.perf_counter() - t0
        if serialized is None:
            raise RuntimeError(f"TensorRT could not build an engine from {onnx_path} (see {log_path})")
        Path(plan_path).parent.mkdir(parents=True, exist_ok=True)
        Path(plan_path).write_bytes(bytes(serialized))
        if timing_cache:
            Path(timing_cache).parent.mkdir(parents=True, exist_ok=True)
            Path(timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    finally:
        if logger.file is not None:
            logger.file.close()
    return {
        "tensorrt": trt.__version__,
        "precision": precision,
        "typing": typing,
        "onnx": str(onnx_path),
        "build_s": build_s,
        "layers": network.num_layers,
    }


_NUMPY_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "INT8": "int8",
    "UINT8": "uint8",
}


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise TensorRTUnavailable("cuda-python is not installed (envs/trt.yaml lists it)") from exc
    return cudart


def _check(result):
    """cuda-python returns (error, *values); raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA runtime error {err}")
    return values[0] if len(values) == 1 else values


class _Buffers:
    """Device buffers for every I/O tensor of an engine, addresses set on the execution context."""

    def __init__(self, trt, cudart, engine, context, inputs: dict, stream):

        self.cudart, self.pointers = cudart, []
        try:
            self._bind(trt, engine, context, inputs, stream)
        except BaseException:
            self.free()
            raise

    def _bind(self, trt, engine, context, inputs: dict, stream) -> None:
        import numpy as np

        cudart = self.cudart
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            if name not in inputs:
                raise KeyError(f"engine input {name!r} has no array in the input batch ({sorted(inputs)})")
            array = np.ascontiguousarray(inputs[name], dtype=_NUMPY_DTYPES[engine.get_tensor_dtype(name).name])
            if not context.set_input_shape(name, array.shape):
                raise RuntimeError(f"engine input {name!r} rejects shape {list(array.shape)} (built for another?)")
            ptr = self._alloc(max(array.nbytes, 1))
            _check(
                cudart.cudaMemcpyAsync(
                    ptr, array.ctypes.data, array.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream
                )
            )
            context.set_tensor_address(name, ptr)
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                shape = tuple(context.get_tensor_shape(name))
                itemsize = np.dtype(_NUMPY_DTYPES[engine.get_tensor_dtype(name).name]).itemsize
                context.set_tensor_address(name, self._alloc(max(int(np.prod(shape)) * itemsize, 1)))
        _check(cudart.cudaStreamSynchronize(stream))

    def _alloc(self, nbytes: int) -> int:
        ptr = int(_check(self.cudart.cudaMalloc(nbytes)))
        self.pointers.append(ptr)
        return ptr

    def free(self) -> None:
        for ptr in self.pointers:
            self.cudart.cudaFree(ptr)
        self.pointers.clear()


def _capture(cudart, stream, enqueue, created: list) -> tuple[Any, str | None]:
    """(instantiated CUDA graph of one enqueue, None) or (None, why not). A capture that fails is always
    ended, so the stream is usable for plain enqueues afterwards; what was made is listed in ``created``."""
    try:
        _check(cudart.cudaStreamBeginCapture(stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
    except Exception as exc:  # noqa: BLE001 - some engines and drivers cannot capture: time plain enqueues
        return None, f"{type(exc).__name__}: {exc}"
    try:
        enqueue()
    except Exception as exc:  # noqa: BLE001
        cudart.cudaStreamEndCapture(stream)  # leave capture mode, whatever it returns
        return None, f"{type(exc).__name__}: {exc}"
    try:
        graph = _check(cudart.cudaStreamEndCapture(stream))
        created.append((cudart.cudaGraphDestroy, graph))
        graph_exec = _check(cudart.cudaGraphInstantiate(graph, 0))
        created.append((cudart.cudaGraphExecDestroy, graph_exec))
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {exc}"
    return graph_exec, None


def _timed_samples(cudart, stream, step, iterations: int, created: list) -> list[float]:
    """ms of each of ``iterations`` calls of ``step``, CUDA events around each on ``stream``. One untimed
    call first: a CUDA graph's first launch uploads it to the device, which no later replay pays."""
    step()
    _check(cudart.cudaStreamSynchronize(stream))
    start, end = _check(cudart.cudaEventCreate()), _check(cudart.cudaEventCreate())
    created += [(cudart.cudaEventDestroy, start), (cudart.cudaEventDestroy, end)]
    samples = []
    for _ in range(iterations):
        _check(cudart.cudaEventRecord(start, stream))
        step()
        _check(cudart.cudaEventRecord(end, stream))
        _check(cudart.cudaEventSynchronize(end))
        samples.append(float(_check(cudart.cudaEventElapsedTime(start, end))))
    return samples


def _layer_times(trt, cudart, context, stream, enqueue, iterations: int) -> dict[str, list[float]]:
    """Each layer's time (ms) in each of ``iterations`` enqueues, from TensorRT's IProfiler."""
    per_layer: dict[str, list[float]] = {}

    class LayerProfiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name, ms):
            per_layer.setdefault(layer_name, []).append(ms)

    context.profiler = LayerProfiler()
    for _ in range(iterations):
        enqueue()
        _check(cudart.cudaStreamSynchronize(stream))
    return per_layer


def _write_profile(path: Path, per_layer: dict[str, list[float]], iterations: int) -> None:
    """The per-layer times in trtexec's --exportProfile layout (a count record, then one record per layer)."""
    total = sum(sum(v) for v in per_layer.values()) or 1.0
    records: list[dict[str, Any]] = [{"count": iterations}]
    records += [
        {
            "name": name,
            "timeMs": sum(v),
            "averageMs": sum(v) / len(v),
            "medianMs": statistics.median(v),
            "percentage": 100.0 * sum(v) / total,
        }
        for name, v in per_layer.items()
    ]
    path.write_text(json.dumps(records, indent=1))


def run(
    plan_path: str | Path,
    inputs: dict,
    *,
    trace_dir: str | Path,
    warmup: int,
    iterations: int,
    profile_iterations: int,
    use_cuda_graph: bool = True,
) -> dict[str, Any]:
    """``inputs``: name -> numpy array (the ONNX export's input names)."""
    from ngbench.backends.timing import summarize

    trt = _trt()
    cudart = _cudart()
    trace_dir = Path(trace_dir)
    trace_dir.mkdir(parents=True, exist_ok=True)
    logger = _logger(trt, trace_dir / "runtime.log")
    engine = trt.Runtime(logger).deserialize_cuda_engine(Path(plan_path).read_bytes())
    if engine is None:
        raise RuntimeError(f"{plan_path}: TensorRT could not deserialize the engine (version or GPU mismatch?)")
    inspector = engine.create_engine_inspector()
    (trace_dir / names.TRT_LAYERS_FILE).write_text(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    context = engine.create_execution_context()
    stream = _check(cudart.cudaStreamCreate())
    handle = int(stream)  # TensorRT takes the stream as an integer handle
    created: list[tuple[Any, Any]] = []  # (destroy function, object) for everything made here
    buffers = None
    try:
        buffers = _Buffers(trt, cudart, engine, context, inputs, stream)

        def enqueue():
            if not context.execute_async_v3(handle):
                raise RuntimeError("execute_async_v3 failed")

        for _ in range(max(1, warmup)):  # the first enqueue also flushes deferred allocations before capture
            enqueue()
        _check(cudart.cudaStreamSynchronize(stream))
        graph_exec, graph_error = None, None
        if use_cuda_graph:
            graph_exec, graph_error = _capture(cudart, stream, enqueue, created)

        def step():
            if graph_exec is not None:
                _check(cudart.cudaGraphLaunch(graph_exec, stream))
            else:
                enqueue()

        samples = _timed_samples(cudart, stream, step, iterations, created)
        per_layer = _layer_times(trt, cudart, context, stream, enqueue, profile_iterations)
    finally:
        if buffers is not None:
            buffers.free()
        for destroy, obj in reversed(created):
            destroy(obj)
        cudart.cudaStreamDestroy(stream)
    _write_profile(trace_dir / names.TRT_PROFILE_FILE, per_layer, profile_iterations)
    return {
        "tensorrt": trt.__version__,
        "latency_samples_ms": samples,
        "latency": summarize(samples),
        "cuda_graph": graph_exec is not None,
        "cuda_graph_error": graph_error,
        "timing": "CUDA events around each graph replay / enqueue on the engine's stream",
        "profile_iterations": profile_iterations,
        "profiler": "IProfiler per-layer times (layers synchronized one by one)",
    }
