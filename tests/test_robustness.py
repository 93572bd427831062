"""Property-based robustness of the three normalizers (hypothesis).

Inputs: the real fixtures (HTA's A100, MI250 and Triton Kineto traces, an excerpt of the two-thread training
trace, NVIDIA's TensorRT MobileNet profile and layer information) and an ONNX Runtime profile made here by
onnxruntime itself, each damaged the ways files get damaged: truncated, bytes flipped (inside the gzip
stream too), keys deleted, values swapped for another type, extreme numbers (NaN, +-inf, 1e308, huge
integers), items duplicated or reordered.

The property, against an oracle (``reference_readers``: small readers that share no code with the
normalizers): where the reference finds the damaged file invalid (bad times, a step or event written twice,
overlapping iterations, unreadable bytes), the normalizer raises :class:`InputError` whose message is one
line naming the file; where the reference reads it, the normalizer either returns the table the reference
predicts (each iteration's time, the time its ops cover, the rows' names where the format names them) or
rejects the file in one line (it checks field types the reference does not model). Every returned table
also closes (``table.check`` with the schema's types) with finite times; never another exception.

Examples are new in every run (no database; no deadline): a failure prints the seed to rerun it with
``pytest --hypothesis-seed=N``. ``test_the_oracle_is_not_vacuous`` guards against the oracle passing because
every file was rejected.
"""

import copy
import gzip
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import reference_readers as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngbench import table as optable
from ngbench.errors import InputError
from ngbench.traces import kineto, ort, trt

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SETTINGS = {
    "database": None,
    "print_blob": True,
    "deadline": None,  # timings on a shared 2-core machine vary; the first example also reads its source
    # the module-scoped ORT profiles are read-only: sharing them across examples is safe
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
}

NASTY = st.one_of(
    st.sampled_from([None, [], {}, "", "fast", True, False, [1, 2], {"a": 1}, {"correlation": "x"}]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e306, 5e-324, -1.0, 0.0, 2**63, -(2**63), 10**30]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=6),
)


def _paths(obj, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, prefix + (i,))
    return out


def _mutate_json(data, obj):
    """1-3 structural damages at paths drawn from the whole document."""
    obj = copy.deepcopy(obj)
    for _ in range(data.draw(st.integers(1, 3), label="damages")):
        paths = _paths(obj)
        if not paths:
            return obj
        path = paths[data.draw(st.integers(0, len(paths) - 1), label="path")]
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = data.draw(st.sampled_from(["delete", "swap", "swap", "duplicate", "move"]), label="action")
        if action == "delete":
            del parent[key]
        elif action == "swap":
            parent[key] = data.draw(NASTY, label="value")
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif action == "move" and isinstance(parent, list) and len(parent) > 1:
            parent.insert(data.draw(st.integers(0, len(parent) - 1), label="to"), parent.pop(key))
    return obj


def _mutate_bytes(data, raw: bytes) -> bytes:
    if data.draw(st.booleans(), label="truncate"):
        return raw[: data.draw(st.integers(0, max(0, len(raw) - 1)), label="cut")]
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        out[data.draw(st.integers(0, len(out) - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
    return bytes(out)


def _damaged_file(data, obj, directory: Path, name: str) -> Path:
    """``obj`` damaged structurally or byte-wise, written plain or gzipped."""
    gz = name.endswith(".gz")
    how = data.draw(st.sampled_from(["json", "json", "bytes"]), label="how")
    if how == "json":
        raw = json.dumps(_mutate_json(data, obj), indent=data.draw(st.sampled_from([None, 2]))).encode()
        raw = gzip.compress(raw) if gz else raw
    else:
        raw = json.dumps(obj, indent=2).encode()
        raw = _mutate_bytes(data, gzip.compress(raw) if gz else raw)
    path = directory / name
    path.write_bytes(raw)
    return path


def _holds(run, reference, *files: Path, undamaged=None) -> str:
    """Check one damaged input against the oracle; say how it ended (for the non-vacuity test).
    ``undamaged``: the reference's reading of the file before damage, for damage outside what is read."""
    try:
        expected = reference()
    except ref.Unreadable:
        expected = undamaged() if undamaged is not None else ref.Invalid
    except ref.Invalid:
        expected = ref.Invalid
    except ref.Uncovered:
        expected = None
    try:
        df, _ = run(expected if expected is not ref.Invalid else None)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert any(f.name in message for f in files), message
        return "rejected"
    assert expected is not ref.Invalid, "a table from a file the reference reader finds invalid"
    optable.check(df)  # closure, one Idle row per iteration, the schema's types
    for column in optable.TIME_COLUMNS:
        values = df[column].dropna().to_numpy(dtype=float)
        assert np.isfinite(values).all() and (values >= -1e-6).all(), column
    assert all(math.isfinite(t) for t in df.groupby("iteration").time_us.sum())
    return "unchecked" if expected is None else "compared"


def _per_iteration(df):
    """{iteration: (iteration time, time its op rows cover, node names of its op rows)} of a table."""
    ops = df[df.group != "Idle"]
    out = {}
    for it, rows in df.groupby("iteration"):
        mine = ops[ops.iteration == it]
        out[int(it)] = (float(rows.iteration_time_us.iloc[0]), float(mine.time_us.sum()), list(mine.node))
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


_UNDAMAGED: dict[str, dict] = {}


def _undamaged_kineto(name: str) -> dict:
    if name not in _UNDAMAGED:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"{name}.json"
            path.write_text(json.dumps(KINETO_SOURCES[name]))
            _UNDAMAGED[name] = ref.kineto(path)
    return _UNDAMAGED[name]


def _kineto_agrees(path: Path, source: str | None = None) -> str:
    def compare(expected):
        df, info = kineto.normalize(path)
        if expected is None:
            return df, info
        got = _per_iteration(df)
        assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
        for it, (iteration_time, busy) in expected.items():
            assert _close(got[it][0], iteration_time), (it, got[it][0], iteration_time)
            assert _close(got[it][1], busy), (it, got[it][1], busy)
        return df, info

    undamaged = (lambda: _undamaged_kineto(source)) if source else None
    return _holds(compare, lambda: ref.kineto(path), path, undamaged=undamaged)


def _ort_agrees(path: Path, skip: int) -> str:
    def compare(expected):
        df, info = ort.normalize(path, skip_runs=skip)
        if expected is None:
            return df, info
        got = _per_iteration(df)
        assert len(got) == len(expected)
        for (run_time, busy, nodes), (run_time_ref, nodes_ref, busy_ref) in zip(got.values(), expected):
            assert _close(run_time, run_time_ref) and _close(busy, busy_ref) and nodes == nodes_ref
        return df, info

    return _holds(compare, lambda: ref.onnxruntime_cpu(path, skip), path)


def _trt_agrees(profile: Path, layers: Path) -> str:
    def compare(expected):
        df, info = trt.normalize(profile, layers)
        if expected is None:
            return df, info
        (_, busy, nodes), *more = _per_iteration(df).values()
        assert not more and nodes == [name for name, _ in expected]
        times = df[df.group != "Idle"].time_us.tolist()
        assert all(_close(t, e) for t, (_, e) in zip(times, expected)) and len(times) == len(expected)
        return df, info

    return _holds(compare, lambda: ref.tensorrt(profile), profile, layers)


def _load_gz(name):
    return json.load(gzip.open(FIXTURES / "torch-profiler" / name))


def _two_thread_excerpt():
    """The HTA two-thread training trace cut to the start of its first ProfilerStep (fast enough for many
    examples)."""
    trace = _load_gz("hta_trace_diff_control_two_threads.json.gz")
    step = next(e for e in trace["traceEvents"] if e.get("name") == "ProfilerStep#1009")
    lo, hi = step["ts"], step["ts"] + step["dur"]
    meta = [e for e in trace["traceEvents"] if e.get("ph") == "M"]
    timed = sorted(
        (e for e in trace["traceEvents"] if e.get("ph") != "M" and lo <= e.get("ts", lo) < hi), key=lambda e: e["ts"]
    )
    return {**trace, "traceEvents": meta + timed[:4000]}  # the earliest 4000: host ops and their kernels


class _Sources(dict):
    """The Kineto sources, read on first use (not when pytest collects this module)."""

    LOADERS = {
        "a100_alexnet": lambda: _load_gz("a100_alexnet.json.gz"),
        "a100_triton": lambda: _load_gz("a100_inductor_triton.json.gz"),
        "mi250_two_threads": lambda: _load_gz("mi250_rocm_train_two_threads.json.gz"),
        "a100_two_threads_excerpt": _two_thread_excerpt,
    }

    def __missing__(self, name):
        self[name] = self.LOADERS[name]()
        return self[name]

    def names(self):
        return sorted(self.LOADERS)


KINETO_SOURCES = _Sources()


@pytest.mark.slow  # a few hundred damaged files: in the full run; the oracle's own check below is quick
@settings(max_examples=100, **SETTINGS)  # new examples every run: coverage grows run by run
@given(data=st.data())
def test_kineto_on_damaged_real_traces(data):
    name = data.draw(st.sampled_from(KINETO_SOURCES.names()), label="source")
    suffix = data.draw(st.sampled_from([".json", ".json.gz"]), label="suffix")
    with tempfile.TemporaryDirectory() as d:
        path = _damaged_file(data, KINETO_SOURCES[name], Path(d), f"{name}{suffix}")
        _kineto_agrees(path, name)


TRT_PROFILE = json.loads((FIXTURES / "tensorrt" / "mobilenet_qat.profile.json").read_text())
TRT_LAYERS = json.loads((FIXTURES / "tensorrt" / "mobilenet_qat.graph.json").read_text())


@pytest.mark.slow
@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_tensorrt_on_damaged_real_profiles(data):
    with tempfile.TemporaryDirectory() as d:
        damaged = data.draw(st.sampled_from(["profile", "layers"]), label="which")
        if damaged == "profile":
            profile = _damaged_file(data, TRT_PROFILE, Path(d), "mobilenet.profile.json")
            layers = Path(d) / "mobilenet.graph.json"
            layers.write_text(json.dumps(TRT_LAYERS))
        else:
            profile = Path(d) / "mobilenet.profile.json"
            profile.write_text(json.dumps(TRT_PROFILE))
            layers = _damaged_file(data, TRT_LAYERS, Path(d), "mobilenet.graph.json")
        _trt_agrees(profile, layers)


@pytest.fixture(scope="module")
def ort_profiles(tmp_path_factory):
    """A real ONNX Runtime profile (3 runs of a MatMul/Add/Relu/Softmax graph) and one with CUDA-profiling
    ``Kernel`` events in ORT's documented layout."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    d = tmp_path_factory.mktemp("ort")
    w = numpy_helper.from_array(np.full((8, 8), 0.5, dtype=np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
        helper.make_node("Add", ["a", "x"], ["b"], name="add"),
        helper.make_node("Relu", ["b"], ["c"], name="relu"),
        helper.make_node("Softmax", ["c"], ["y"], name="softmax"),
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 8]) for n in ("x", "y")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", io[:1], io[1:], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(d / "cpu")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, {"x": np.ones((4, 8), dtype=np.float32)})
    cpu = json.loads(Path(session.end_profiling()).read_text())

    def ev(name, cat, ts, dur, **args):
        return {"cat": cat, "pid": 1, "tid": 1, "dur": dur, "ts": ts, "ph": "X", "name": name, "args": args}

    cuda = [
        ev("model_run", "Session", 0, 200),
        ev("mm_kernel_time", "Node", 10, 5, op_name="MatMul", provider="CUDAExecutionProvider"),
        ev("sm80_xmma_gemm", "Kernel", 20, 60),
        ev("relu_kernel_time", "Node", 16, 4, op_name="Relu", provider="CUDAExecutionProvider"),
        ev("relu_kernel", "Kernel", 90, 10, parent_name="relu"),
        ev("model_run", "Session", 300, 200),
        ev("mm_kernel_time", "Node", 310, 5, op_name="MatMul", provider="CUDAExecutionProvider"),
        ev("sm80_xmma_gemm", "Kernel", 320, 60),
    ]
    return {"cpu": cpu, "cuda": cuda}


@pytest.mark.slow
@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_onnxruntime_on_damaged_profiles(ort_profiles, data):
    which = data.draw(st.sampled_from(sorted(ort_profiles)), label="source")
    skip = data.draw(st.integers(0, 2), label="skip_runs")
    with tempfile.TemporaryDirectory() as d:
        path = _damaged_file(data, ort_profiles[which], Path(d), f"{which}_profile.json")
        _ort_agrees(path, skip) if which == "cpu" else _holds(
            lambda _: ort.normalize(path, skip_runs=skip), lambda: None, path
        )


def _plausible_damages(obj):
    """Damage that leaves a valid file with other numbers: the last kernel halved, the first memset deleted, a
    step's end moved earlier. The table must follow each (the oracle predicts the new numbers)."""
    events = obj["traceEvents"]
    kernels = [i for i, e in enumerate(events) if e.get("cat") == "kernel"]
    kernel = max(kernels, key=lambda i: events[i]["ts"] + events[i]["dur"])  # the last to end: nothing hides it
    memset = next((i for i, e in enumerate(events) if e.get("cat") == "gpu_memset"), None)
    step = next((i for i, e in enumerate(events) if str(e.get("name", "")).startswith("ProfilerStep#")), None)
    shorter_kernel = copy.deepcopy(obj)
    shorter_kernel["traceEvents"][kernel]["dur"] *= 0.5
    yield "last kernel halved", shorter_kernel
    if memset is not None:
        yield "memset deleted", {**obj, "traceEvents": events[:memset] + events[memset + 1 :]}
    if step is not None:
        shorter = copy.deepcopy(obj)
        shorter["traceEvents"][step]["ts"] += 10
        shorter["traceEvents"][step]["dur"] -= 10
        yield "step starts 10us later", shorter


def test_the_oracle_is_not_vacuous(ort_profiles, tmp_path):
    """Every source, undamaged and plausibly damaged, gives a table the oracle compared (not rejected), and
    a damaged file's numbers differ from the undamaged one's: the comparison can fail."""
    for name in KINETO_SOURCES.names():
        obj = KINETO_SOURCES[name]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(obj))
        assert _kineto_agrees(path) == "compared", name
        undamaged = ref.kineto(path)
        for what, damaged in _plausible_damages(obj):
            path.write_text(json.dumps(damaged))
            assert _kineto_agrees(path) == "compared", (name, what)
            assert ref.kineto(path) != undamaged, (name, what)
    path = tmp_path / "cpu_profile.json"
    path.write_text(json.dumps(ort_profiles["cpu"]))
    assert _ort_agrees(path, 1) == "compared"
    profile = FIXTURES / "tensorrt" / "mobilenet_qat.profile.json"
    assert _trt_agrees(profile, FIXTURES / "tensorrt" / "mobilenet_qat.graph.json") == "compared"
    assert len(ref.tensorrt(profile)) == 73  # 73 layer records after the count record
