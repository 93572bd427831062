"""The GPU paths' own logic, run on a CPU with stand-ins for the driver-facing modules (cuda-python's cudart,
TensorRT's engine and context, ONNX Runtime's CUDA session, NVML): the arguments built, the errors raised,
what is freed and what is recorded. What needs a real device is in tests/test_gpu.py (``pytest -m gpu``)."""

import json
import sys
import types

import numpy as np
import pytest

from ngbench import energy
from ngbench.backends import ort as ort_backend
from ngbench.backends import trt as trt_backend


class FakeCudart:
    """cuda-python's (error, value) convention; every call recorded; ``fail`` names calls that return error 1."""

    cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice="H2D")
    cudaStreamCaptureMode = types.SimpleNamespace(cudaStreamCaptureModeGlobal="global")

    def __init__(self, fail=()):
        self.calls, self.fail, self.next_ptr = [], set(fail), 0x1000

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, args))
            if name in self.fail:
                return (1,)
            if name == "cudaMalloc":
                self.next_ptr += 0x100
                return (0, self.next_ptr)
            return (0, f"{name}-handle")

        call.__name__ = name
        return call

    def called(self, name):
        return [args for n, args in self.calls if n == name]


class FakeEngine:
    """An engine with one input ``x`` (float32) and one output ``y`` (float16, shape from the context)."""

    def __init__(self):
        self.num_io_tensors = 2

    def get_tensor_name(self, i):
        return ["x", "y"][i]

    def get_tensor_mode(self, name):
        return FakeTrt.TensorIOMode.INPUT if name == "x" else FakeTrt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return types.SimpleNamespace(name="FLOAT" if name == "x" else "HALF")


class FakeContext:
    def __init__(self, accepts_shape=True):
        self.accepts_shape, self.addresses, self.shapes = accepts_shape, {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return self.accepts_shape

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def get_tensor_shape(self, name):
        return (2, 5)  # the output's shape once the input shape is set


class FakeTrt:
    TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")


def test_buffers_copy_each_input_and_size_each_output_from_the_context():
    cudart, context = FakeCudart(), FakeContext()
    x = np.ones((2, 3), dtype=np.float64)  # converted to the engine's float32
    buffers = trt_backend._Buffers(FakeTrt, cudart, FakeEngine(), context, {"x": x}, "stream")
    # x: 2*3 float32 = 24 bytes; y: 2*5 float16 = 20 bytes
    assert cudart.called("cudaMalloc") == [(24,), (20,)]
    (dst, src, nbytes, kind, stream), *more = cudart.called("cudaMemcpyAsync")
    assert not more and dst == context.addresses["x"] and nbytes == 24 and kind == "H2D" and stream == "stream"
    assert context.shapes == {"x": (2, 3)} and set(context.addresses) == {"x", "y"}
    assert cudart.called("cudaStreamSynchronize") == [("stream",)]
    buffers.free()
    assert sorted(args[0] for args in cudart.called("cudaFree")) == sorted(context.addresses.values())
    assert buffers.pointers == []


def test_buffers_name_a_missing_input_and_free_what_they_allocated():
    cudart = FakeCudart()
    with pytest.raises(KeyError, match="engine input 'x' has no array in the input batch"):
        trt_backend._Buffers(FakeTrt, cudart, FakeEngine(), FakeContext(), {"other": np.ones(1)}, "s")
    assert cudart.called("cudaMalloc") == [] and cudart.called("cudaFree") == []


def test_buffers_free_every_allocation_when_the_engine_rejects_the_shape():
    cudart = FakeCudart()
    with pytest.raises(RuntimeError, match=r"engine input 'x' rejects shape \[2, 3\]"):
        trt_backend._Buffers(FakeTrt, cudart, FakeEngine(), FakeContext(False), {"x": np.ones((2, 3))}, "s")
    assert cudart.called("cudaMalloc") == []  # the shape is set before anything is allocated

    cudart = FakeCudart(fail={"cudaMemcpyAsync"})
    with pytest.raises(RuntimeError, match="CUDA runtime error 1"):
        trt_backend._Buffers(FakeTrt, cudart, FakeEngine(), FakeContext(), {"x": np.ones((2, 3))}, "s")
    allocated = [ptr for ptr in range(0x1100, cudart.next_ptr + 1, 0x100)]
    assert [args[0] for args in cudart.called("cudaFree")] == allocated  # the input buffer is not leaked


def test_capture_makes_a_graph_and_lists_what_to_destroy():
    cudart, created, enqueued = FakeCudart(), [], []
    graph_exec, error = trt_backend._capture(cudart, "s", lambda: enqueued.append(1), created)
    assert error is None and graph_exec == "cudaGraphInstantiate-handle" and enqueued == [1]
    assert cudart.called("cudaStreamBeginCapture") == [("s", "global")]
    assert [(destroy.__name__, obj) for destroy, obj in created] == [
        ("cudaGraphDestroy", "cudaStreamEndCapture-handle"),
        ("cudaGraphExecDestroy", graph_exec),
    ]


@pytest.mark.parametrize("failing", ["cudaStreamBeginCapture", "enqueue", "cudaGraphInstantiate"])
def test_a_capture_that_fails_says_why_and_leaves_capture_mode(failing):
    cudart, created = FakeCudart(fail={failing} - {"enqueue"}), []

    def enqueue():
        if failing == "enqueue":
            raise RuntimeError("execute_async_v3 failed")

    graph_exec, error = trt_backend._capture(cudart, "s", enqueue, created)
    assert graph_exec is None and error.startswith("RuntimeError: ")
    if failing != "cudaStreamBeginCapture":  # once capture began, it is always ended
        assert cudart.called("cudaStreamEndCapture") == [("s",)]
    if failing == "cudaGraphInstantiate":  # the captured graph is still destroyed later
        assert [obj for _, obj in created] == ["cudaStreamEndCapture-handle"]


def test_check_returns_values_and_raises_with_the_error_code():
    assert trt_backend._check((0, "ptr")) == "ptr" and trt_backend._check((0, 1, 2)) == [1, 2]
    with pytest.raises(RuntimeError, match="CUDA runtime error 700"):
        trt_backend._check((700, None))


# -- ONNX Runtime on CUDA: providers and the IO binding, with a stand-in onnxruntime ------------------------
def fake_onnxruntime(providers):
    calls = []

    class Binding:
        def bind_ortvalue_input(self, name, value):
            calls.append(("input", name, value))

        def bind_output(self, name, device, device_id):
            calls.append(("output", name, device, device_id))

    class Session:
        def __init__(self, path, so, providers):
            calls.append(("session", path, providers))

        def get_inputs(self):
            return [types.SimpleNamespace(name="x")]

        def get_outputs(self):
            return [types.SimpleNamespace(name="y"), types.SimpleNamespace(name="z")]

        def io_binding(self):
            return Binding()

        def run_with_iobinding(self, binding):
            calls.append(("run_with_iobinding", binding))

        def run(self, outputs, feed):
            calls.append(("run", sorted(feed)))

    ort = types.SimpleNamespace(
        get_available_providers=lambda: providers,
        InferenceSession=Session,
        OrtValue=types.SimpleNamespace(ortvalue_from_numpy=lambda a, dev, i: ("ortvalue", a.shape, dev, i)),
    )
    return ort, calls


def test_cuda_providers_name_the_device_and_fail_clearly_without_the_gpu_build(monkeypatch):
    ort, _ = fake_onnxruntime(["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setitem(sys.modules, "onnxruntime", ort)
    assert ort_backend.providers_for("cuda:1", {"cudnn_conv_algo_search": "DEFAULT"}) == [
        ("CUDAExecutionProvider", {"device_id": 1, "cudnn_conv_algo_search": "DEFAULT"}),
        "CPUExecutionProvider",
    ]
    assert ort_backend.providers_for("cpu") == ["CPUExecutionProvider"]
    ort, _ = fake_onnxruntime(["CPUExecutionProvider"])  # the CPU wheel
    monkeypatch.setitem(sys.modules, "onnxruntime", ort)
    with pytest.raises(ort_backend.ProviderUnavailable, match="install onnxruntime-gpu"):
        ort_backend.providers_for("cuda")


def test_cuda_runs_bind_every_input_and_output_on_the_device(monkeypatch, tmp_path):
    ort, calls = fake_onnxruntime(["CUDAExecutionProvider"])
    monkeypatch.setitem(sys.modules, "onnxruntime", ort)
    providers = [("CUDAExecutionProvider", {"device_id": 2}), "CPUExecutionProvider"]
    feed = {"x": np.zeros((1, 4), np.float32), "unused": np.zeros(1)}  # inputs the graph lacks are not fed
    runner = ort_backend._Runner(tmp_path / "m.onnx", None, providers, feed, cuda=True)
    runner.run()
    assert ("input", "x", ("ortvalue", (1, 4), "cuda", 2)) in calls
    assert [c for c in calls if c[0] == "output"] == [("output", "y", "cuda", 2), ("output", "z", "cuda", 2)]
    assert calls[-1][0] == "run_with_iobinding"
    cpu = ort_backend._Runner(tmp_path / "m.onnx", None, ["CPUExecutionProvider"], feed, cuda=False)
    cpu.run()
    assert cpu.binding is None and calls[-1] == ("run", ["x"])


# -- NVML: the GPU a CUDA ordinal names, by PCI bus id -----------------------------------------------------
def fake_pynvml(gpus: dict[str, str], energy_mj=1000):
    class NVMLError(Exception):
        pass

    def by_bus(bus):
        if bus not in gpus:
            raise NVMLError(f"Not Found ({bus})")
        return bus

    return types.SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByPciBusId=by_bus,
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: sorted(gpus)[i],
        nvmlDeviceGetName=lambda h: gpus[h].encode(),
        nvmlDeviceGetTotalEnergyConsumption=lambda h: energy_mj,
    )


def test_nvml_reads_the_gpu_with_the_cuda_devices_bus_id(monkeypatch):
    gpus = {"00000000:3B:00.0": "NVIDIA H100", "00000000:86:00.0": "NVIDIA A100"}
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus))
    bus = energy.pci_bus_id(0, 0x86, 0)  # torch's pci_domain_id, pci_bus_id, pci_device_id
    assert bus == "00000000:86:00.0"
    counter = energy.NvmlCounter(0, bus)  # CUDA ordinal 0 may be NVML's second GPU (CUDA_VISIBLE_DEVICES)
    assert counter.describe()["gpu"] == "NVIDIA A100" and counter.describe()["pci_bus_id"] == bus
    assert counter.joules([1000], [3500]) == 2.5  # NVML counts mJ
    with pytest.raises(energy.EnergyUnavailable, match=r"NVML: Not Found \(00000000:AF:00.0\)"):
        energy.NvmlCounter(0, energy.pci_bus_id(0, 0xAF, 0))
    with pytest.raises(energy.EnergyUnavailable, match="NVML sees 2 GPU"):
        energy.NvmlCounter(5)
    counters = energy.counters_for("cuda:0", "/nonexistent", gpu_pci_bus_id=bus)
    assert isinstance(counters["gpu"], energy.NvmlCounter) and "no /nonexistent" in counters["cpu"]


def test_profiler_activities_include_cuda_only_on_cuda(monkeypatch):
    """What the shapes and profiling passes ask the profiler to record (the CUDA activity on GPUs)."""
    from ngbench.backends import torch_eager

    assert [a.name for a in torch_eager.profiler_activities("cpu")] == ["CPU"]
    assert [a.name for a in torch_eager.profiler_activities("cuda:0")] == ["CPU", "CUDA"]


# -- the whole TensorRT run with a stand-in TensorRT that calls our profiler as TensorRT does ---------------
def fake_tensorrt_runtime(layer_ms: dict[str, list[float]], deserializes=True):
    """A TensorRT whose engine has the FakeEngine's I/O and whose context calls the attached IProfiler's
    ``report_layer_time(layer_name, ms)`` for each layer on every enqueue (TensorRT's contract)."""
    runs = {"enqueues": 0}

    class ILogger:
        def __init__(self):
            pass

    class IProfiler:
        def __init__(self):
            pass

    class Context(FakeContext):
        profiler = None

        def execute_async_v3(self, handle):
            assert isinstance(handle, int)  # TensorRT takes the stream as an integer handle
            if self.profiler is not None:
                for name, times in layer_ms.items():
                    self.profiler.report_layer_time(name, times[runs["enqueues"] % len(times)])
            runs["enqueues"] += 1
            return True

    class Engine(FakeEngine):
        def create_engine_inspector(self):
            return types.SimpleNamespace(get_engine_information=lambda fmt: json.dumps({"Layers": list(layer_ms)}))

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            assert isinstance(logger, ILogger)

        def deserialize_cuda_engine(self, plan):
            return Engine() if deserializes else None

    trt = types.SimpleNamespace(
        __version__="10.16.1.11", ILogger=ILogger, IProfiler=IProfiler, Runtime=Runtime,
        TensorIOMode=FakeTrt.TensorIOMode, LayerInformationFormat=types.SimpleNamespace(JSON="JSON"),
    )  # fmt: skip
    return trt, runs


class IntHandleCudart(FakeCudart):
    def __getattr__(self, name):
        call = super().__getattr__(name)
        if name == "cudaStreamCreate":
            return lambda *a: (0, 7)  # a stream handle int() accepts
        if name == "cudaEventElapsedTime":
            return lambda *a: (0, 0.5)
        return call


def test_a_tensorrt_run_writes_the_profile_and_layers_our_parser_reads(monkeypatch, tmp_path):
    from ngbench.traces import trt as trt_trace

    layer_ms = {"conv1 + relu1": [0.2, 0.4], "fc": [0.1, 0.1]}
    trt, runs = fake_tensorrt_runtime(layer_ms)
    cudart = IntHandleCudart()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_backend, "_cudart", lambda: cudart)
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    record = trt_backend.run(plan, {"x": np.ones((2, 3), np.float32)}, trace_dir=tmp_path / "t", warmup=1,
                             iterations=3, profile_iterations=2, use_cuda_graph=True)  # fmt: skip
    # warm-up 1 + capture 1 (plain enqueue inside the capture) + profiled 2; timed steps replay the graph
    assert runs["enqueues"] == 4 and len(cudart.called("cudaGraphLaunch")) == 1 + 3  # upload + 3 timed
    assert record["cuda_graph"] and record["latency_samples_ms"] == [0.5] * 3
    df, info = trt_trace.normalize(tmp_path / "t" / "profile.json", tmp_path / "t" / "layers.json")
    ops = df[df.group != "Idle"].set_index("node")
    # per layer: the mean of the two profiled enqueues, in us
    assert ops.loc["conv1 + relu1", "time_us"] == pytest.approx((0.2 + 0.4) / 2 * 1e3)
    assert ops.loc["fc", "time_us"] == pytest.approx(0.1 * 1e3)
    # every buffer, stream, event and graph made is released
    assert len(cudart.called("cudaFree")) == len(cudart.called("cudaMalloc")) == 2
    assert cudart.called("cudaStreamDestroy") == [(7,)]
    assert len(cudart.called("cudaGraphExecDestroy")) == len(cudart.called("cudaGraphDestroy")) == 1


def test_an_engine_tensorrt_cannot_load_is_one_error(monkeypatch, tmp_path):
    trt, _ = fake_tensorrt_runtime({"fc": [0.1]}, deserializes=False)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_backend, "_cudart", lambda: IntHandleCudart())
    (tmp_path / "m.plan").write_bytes(b"plan")
    with pytest.raises(RuntimeError, match="m.plan: TensorRT could not deserialize the engine"):
        trt_backend.run(tmp_path / "m.plan", {}, trace_dir=tmp_path / "t", warmup=1, iterations=1, profile_iterations=1)
