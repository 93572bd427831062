"""The TensorRT backend against the real TensorRT Python API, without a GPU.

TensorRT cannot be imported here (its -libs wheels come only from NVIDIA), but NVIDIA's
``tensorrt-cu12-bindings`` wheels on PyPI hold the real compiled module (``tensorrt.so``, ~1 MB), whose
string table lists every class, method and enum member name the bindings define. Every TensorRT name
``ngbench/backends/trt.py`` uses must be there, in the oldest and newest 10.x and the newest 11.x we support;
``BuilderFlag.FP16`` must be absent from 11.x (TensorRT 11 removed weakly typed precision flags), which is
why the backend builds strongly typed networks. The wheels are fetched once with pip (PyPI) into a cache
folder; where pip cannot reach PyPI the test skips and says so.
"""

import ast
import os
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from ngbench.backends import trt as trt_backend

SUPPORTED = ["10.4.0", "10.16.1.11", "11.4.0.106"]  # requirements-trt.txt: tensorrt-cu12>=10.4,<12
CACHE = Path(os.environ.get("NGBENCH_CACHE", Path.home() / ".cache" / "ngbench")) / "tensorrt-bindings"
SOURCE = Path(trt_backend.__file__)

# attribute names in trt.py that belong to Python, numpy, pathlib, cuda-python or our own helpers
NOT_TENSORRT = {
    "__init__", "__name__", "__version__", "_alloc", "_bind", "append", "ascontiguousarray", "clear", "close",
    "ctypes", "cudart", "data", "dtype", "dumps", "file", "free", "is_file", "items", "itemsize", "join",
    "median", "mkdir", "name", "nbytes", "parent", "perf_counter", "pointers", "prod", "read_bytes",
    "setdefault", "shape", "values", "write", "write_bytes", "write_text",
}  # fmt: skip
ONLY_BEFORE_11 = {"FP16"}  # BuilderFlag.FP16: used only with typing=weak, guarded by hasattr


def tensorrt_names_used() -> set[str]:
    ours = ("names",)  # ngbench.names: the run directory's file names
    attrs = [n for n in ast.walk(ast.parse(SOURCE.read_text())) if isinstance(n, ast.Attribute)]
    used = {n.attr for n in attrs if not (isinstance(n.value, ast.Name) and n.value.id in ours)}
    return {n for n in used if n not in NOT_TENSORRT and not n.startswith("cuda")}


def bindings_module(version: str) -> bytes:
    so = CACHE / version / "tensorrt_bindings" / "tensorrt.so"
    if not so.is_file():
        wheel_dir = CACHE / version / "wheel"
        res = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
             "3.11", "-d", str(wheel_dir), f"tensorrt-cu12-bindings=={version}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        wheels = list(wheel_dir.glob("*.whl"))
        if res.returncode != 0 or not wheels:
            pytest.skip(f"pip could not fetch tensorrt-cu12-bindings=={version}: {res.stderr.strip()[-200:]}")
        with zipfile.ZipFile(wheels[0]) as whl:
            whl.extract("tensorrt_bindings/tensorrt.so", CACHE / version)
    return so.read_bytes()


def defined(module: bytes, name: str) -> bool:
    """A name the bindings register: a NUL-terminated string literal (the linker may store it as the tail of
    a longer literal, so only its end is anchored)."""
    return re.search(re.escape(name.encode()) + rb"\x00", module) is not None


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_tensorrt_name_the_backend_uses_exists(version):
    module = bindings_module(version)
    used = tensorrt_names_used()
    assert {"STRONGLY_TYPED", "execute_async_v3", "set_input_shape", "create_engine_inspector"} <= used
    missing = sorted(n for n in used - ONLY_BEFORE_11 if not defined(module, n))
    assert not missing, f"TensorRT {version} bindings lack {missing}"
    assert defined(module, "FP16") == version.startswith("10."), "BuilderFlag.FP16: in 10.x, gone in 11.x"


# -- the build logic with a stand-in module that records what the backend asks of TensorRT ----------------
def fake_tensorrt(version: str, calls: list):
    flags = {"TF32": 3, "STRONGLY_TYPED": 5}
    if version.startswith("10."):
        flags["FP16"] = 0

    class Rec:
        def __init__(self, name):
            self._name = name

        def __getattr__(self, attr):
            return Rec(f"{self._name}.{attr}")

        def __call__(self, *args, **kwargs):
            calls.append((self._name, args))
            if self._name.endswith("parse_from_file"):
                return True
            if self._name.endswith("build_serialized_network"):
                return b"plan"
            if self._name.endswith("serialize"):
                return b"cache"
            return Rec(self._name + "()")

        def __int__(self):
            return 0

    trt = types.SimpleNamespace(
        __version__=version,
        BuilderFlag=types.SimpleNamespace(**flags),
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=0),
        ProfilingVerbosity=types.SimpleNamespace(DETAILED="DETAILED"),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        ILogger=type("ILogger", (), {"__init__": lambda self: None}),
        Builder=Rec("Builder"),
        OnnxParser=Rec("OnnxParser"),
    )
    return trt


@pytest.mark.parametrize("version", ["10.16.1.11", "11.4.0.106"])
def test_fp16_engines_are_strongly_typed_from_the_fp16_copy(tmp_path, monkeypatch, version):
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version, calls))
    record = trt_backend.build_engine(tmp_path / "m.fp16.onnx", tmp_path / "m.plan", precision="fp16")
    assert record["typing"] == "strong" and (tmp_path / "m.plan").read_bytes() == b"plan"
    create = [args for name, args in calls if name.endswith("create_network")]
    assert create == [(1 << 0,)]  # the STRONGLY_TYPED creation flag
    assert [args for name, args in calls if name.endswith("parse_from_file")] == [(str(tmp_path / "m.fp16.onnx"),)]
    assert not [args for name, args in calls if name.endswith("set_flag")]  # no precision flag: the types decide


def test_weak_typing_needs_tensorrt_10(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.16.1.11", calls))
    trt_backend.build_engine(tmp_path / "m.onnx", tmp_path / "m.plan", precision="fp16", typing="weak")
    assert [args for name, args in calls if name.endswith("set_flag")] == [(0,)]  # BuilderFlag.FP16
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("11.4.0.106", []))
    with pytest.raises(trt_backend.TensorRTVersionError, match="BuilderFlag.FP16 was removed in TensorRT 11"):
        trt_backend.build_engine(tmp_path / "m.onnx", tmp_path / "m.plan", precision="fp16", typing="weak")


def test_the_first_cuda_graph_launch_is_not_a_timed_sample():
    """cudaGraphLaunch's first call uploads the graph: the latency loop launches once untimed, then times
    each replay between two events (a fake cuda-python records the order of calls)."""
    calls = []

    class FakeCudart:
        def __getattr__(self, name):
            def call(*args):
                calls.append(name)
                return (0, 1.25) if name == "cudaEventElapsedTime" else (0, object())

            return call

    cudart = FakeCudart()

    def step():
        calls.append("step")

    created = []
    samples = trt_backend._timed_samples(cudart, "stream", step, 3, created)
    assert samples == [1.25] * 3 and len(created) == 2
    first_record = calls.index("cudaEventRecord")
    assert calls[:2] == ["step", "cudaStreamSynchronize"] and calls.index("step") < first_record
    assert calls.count("step") == 4  # one upload launch, three timed replays
    timed = calls[first_record:]
    assert timed[:4] == ["cudaEventRecord", "step", "cudaEventRecord", "cudaEventSynchronize"]
