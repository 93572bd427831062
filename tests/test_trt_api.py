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

# Which class or enum owns each TensorRT name the backend uses, as NVIDIA's Python API reference lists them
# (docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/: Core/Builder, Core/BuilderConfig,
# Core/Runtime, Core/Engine, Core/ExecutionContext, Core/EngineInspector, Core/Profiler, Core/Logger,
# Parsers/Onnx/pyOnnx, FoundationalTypes/DataType; the enums' full member lists, so that a name borrowed from
# another enum fails). The bindings are then searched for each name in every supported version, and where
# they keep the symbol of the member's docstring (``tensorrt::<Owner>Doc::<member>``) the owner is confirmed
# from the compiled module itself.
OWNERS = {
    "ProfilingVerbosity": {"LAYER_NAMES_ONLY", "DETAILED", "NONE"},
    "BuilderFlag": {
        "FP16", "BF16", "INT8", "INT4", "FP8", "FP4", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE",
        "EDITABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS",
        "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE",
        "EXCLUDE_LEAN_RUNTIME", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN", "REFIT_IDENTICAL",
        "WEIGHT_STREAMING", "REFIT_INDIVIDUAL", "STRICT_NANS", "MONITOR_MEMORY", "DISTRIBUTIVE_INDEPENDENCE",
    },
    "NetworkDefinitionCreationFlag": {"EXPLICIT_BATCH", "STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS",
                                      "PREFER_JIT_PYTHON_PLUGINS"},
    "MemoryPoolType": {"WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM", "TACTIC_DRAM",
                       "TACTIC_SHARED_MEMORY"},
    "LayerInformationFormat": {"ONELINE", "JSON"},
    "TensorIOMode": {"NONE", "INPUT", "OUTPUT"},
    # classes: the methods and properties the backend calls on their instances
    "Builder": {"create_network", "create_builder_config", "build_serialized_network"},
    "OnnxParser": {"parse_from_file", "get_error", "num_errors"},
    "IBuilderConfig": {"profiling_verbosity", "set_flag", "clear_flag", "set_memory_pool_limit",
                       "create_timing_cache", "set_timing_cache", "get_timing_cache"},
    "ITimingCache": {"serialize"},
    "INetworkDefinition": {"num_layers"},
    "Runtime": {"deserialize_cuda_engine"},
    "ICudaEngine": {"create_engine_inspector", "create_execution_context", "num_io_tensors", "get_tensor_name",
                    "get_tensor_mode", "get_tensor_dtype", "serialize"},
    "EngineInspector": {"get_engine_information"},
    "IExecutionContext": {"execute_async_v3", "set_input_shape", "set_tensor_address", "get_tensor_shape",
                          "profiler"},
    "IProfiler": {"report_layer_time"},  # callbacks TensorRT calls on our subclasses
    "ILogger": {"log"},
}  # fmt: skip


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


def enum_members_used(source: str) -> set[tuple[str, str]]:
    """(Enum, MEMBER) for every ``trt.Enum.MEMBER`` chain in ``source``."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            base = node.value.value
            if isinstance(base, ast.Name) and base.id == "trt" and node.value.attr[:1].isupper():
                if node.attr.isupper() or node.attr == "__init__":
                    out.add((node.value.attr, node.attr))
    return {(owner, member) for owner, member in out if member != "__init__"}


def misplaced_members(source: str) -> list[str]:
    return sorted(f"{o}.{m}" for o, m in enum_members_used(source) if m not in OWNERS.get(o, ()))


def test_every_enum_member_belongs_to_its_enum():
    used = enum_members_used(SOURCE.read_text())
    assert ("ProfilingVerbosity", "DETAILED") in used and ("TensorIOMode", "INPUT") in used
    assert not misplaced_members(SOURCE.read_text())
    # a name that exists in the bindings under another owner is caught (EXPLICIT_ROUND_UP is a padding mode)
    assert misplaced_members("trt.ProfilingVerbosity.ROUND_UP\ntrt.BuilderFlag.WORKSPACE") == [
        "BuilderFlag.WORKSPACE",
        "ProfilingVerbosity.ROUND_UP",
    ]


def test_every_tensorrt_name_the_backend_uses_has_a_known_owner():
    used = tensorrt_names_used()
    owned = set(OWNERS) | set().union(*OWNERS.values())
    assert not sorted(used - owned), "add the owner of each new TensorRT name to OWNERS (from NVIDIA's docs)"


def _doc_symbol(owner: str, member: str) -> bytes:
    """The mangled name of ``tensorrt::<owner>Doc::<member>``, the docstring constant of a bound member."""
    doc = f"{owner}Doc"
    return f"_ZN8tensorrt{len(doc)}{doc}L{len(member)}{member}E".encode()


@pytest.mark.parametrize("version", SUPPORTED)
def test_methods_and_callbacks_belong_to_their_class(version):
    """Where the compiled module keeps a class's docstring symbols, each method we call must be documented
    under that class; every callback we override must match the signature the bindings document."""
    module = bindings_module(version)
    confirmed, wrong = [], []
    for owner, members in OWNERS.items():
        if not re.search(rb"_ZN8tensorrt\d+" + owner.encode() + rb"DocL", module):
            continue  # this version's module kept none of the class's docstring symbols
        for member in members:
            if _doc_symbol(owner, member) in module:
                confirmed.append(f"{owner}.{member}")
            elif any(_doc_symbol(other, member) in module for other in OWNERS if other != owner):
                wrong.append(f"{owner}.{member}")
    assert not wrong, f"documented under another class in TensorRT {version}: {wrong}"
    assert "IExecutionContext.execute_async_v3" in confirmed and "IExecutionContext.set_input_shape" in confirmed
    # the callbacks TensorRT calls: our overrides' parameters as the bindings' docstrings spell them
    for cls in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(cls, ast.ClassDef) and any(ast.unparse(b).startswith("trt.I") for b in cls.bases):
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and fn.name != "__init__":
                    signature = f"def {fn.name}({', '.join(a.arg for a in fn.args.args)}):".encode()
                    assert signature in module, (version, signature)


@pytest.mark.parametrize("version", SUPPORTED)
def test_keyword_arguments_are_the_bindings_own(version):
    module = bindings_module(version)
    keywords = {
        kw.arg
        for node in ast.walk(ast.parse(SOURCE.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        for kw in node.keywords
        if node.func.attr in set().union(*OWNERS.values())
    }
    assert "ignore_mismatch" in keywords  # set_timing_cache(cache, ignore_mismatch=False)
    assert not sorted(k for k in keywords if not defined(module, k) or f":arg {k}:".encode() not in module)


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
