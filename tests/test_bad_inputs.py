"""Every class of bad input seen on real and damaged files gets one clean line naming the file (or the
argument) and what was expected: no traceback, no partial or stale output, no silently wrong table.

Each test reproduces one class from the robustness issue; the expected numbers of the tables that do come
out are worked out by hand in the comments."""

import gzip
import json
import subprocess
import sys
import tempfile

import pandas as pd
import pytest
from conftest import REPO, run_ngbench

from ngbench import onnx_graph
from ngbench import table as optable
from ngbench.analysis import shares
from ngbench.errors import InputError
from ngbench.traces import kineto, ort, trt


def ngbench(*args):
    return run_ngbench(*args, cwd=tempfile.mkdtemp(prefix="ngbench-cli-"))  # a relative --out lands there


def assert_one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if not ln.startswith(("INFO ", "WARNING "))]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def X(name, ts, dur, cat="cpu_op", tid=1, **args):
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": args}


def write_trace(path, events, **extra):
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events, **extra}, indent=2))
    return path


GOOD = [X("ProfilerStep#0", 0, 100, cat="user_annotation"), X("aten::mm", 10, 20), X("aten::relu", 40, 10)]


# -- Kineto ----------------------------------------------------------------------------------------------------
def test_corrupt_gzip_is_named(tmp_path):
    data = bytearray(gzip.compress(json.dumps({"traceEvents": GOOD}).encode()))
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the deflate stream
    bad = tmp_path / "corrupt.json.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt.json.gz"):
        kineto.normalize(bad)
    res = ngbench("normalize", "--trace", str(bad), "--out", str(tmp_path / "o.parquet"))
    assert_one_line_error(res, "corrupt.json.gz")


def test_bad_iteration_marker_regex(tmp_path):
    trace = write_trace(tmp_path / "t.json", GOOD)
    res = ngbench("normalize", "--trace", str(trace), "--iteration-marker", "(", "--out", str(tmp_path / "o.parquet"))
    assert_one_line_error(res, "--iteration-marker", "not a valid regular expression")


def test_out_naming_a_directory(tmp_path):
    trace = write_trace(tmp_path / "t.json", GOOD)
    res = ngbench("normalize", "--trace", str(trace), "--out", str(tmp_path))
    assert_one_line_error(res, "is a directory")


@pytest.mark.parametrize("dur", [1e308, 1e13, -5, "NaN", "Infinity"])
def test_impossible_durations_never_reach_the_writer(tmp_path, dur):
    events = [*GOOD, X("aten::add", 60, 1)]
    text = json.dumps({"traceEvents": events}, indent=2).replace('"dur": 1,', f'"dur": {dur},')
    bad = tmp_path / "dur.json"
    bad.write_text(text)  # NaN is what Python's json writes for float("nan"); it is not JSON
    with pytest.raises(InputError, match="dur.json"):
        kineto.normalize(bad)


def test_ts_near_the_float_limit(tmp_path):
    bad = write_trace(tmp_path / "ts.json", [*GOOD, X("aten::add", 1.7e308, 1e308)])
    with pytest.raises(InputError, match=r"ts.json: event 3 \('aten::add'"):
        kineto.normalize(bad)


def test_partly_overlapping_top_level_ops_keep_the_outer_op(tmp_path):
    # aten::a [10, 40] and aten::b [30, 60] on one thread: b cannot outlive a (one thread's ranges nest), so
    # b is a's child; the row is a (30 us), nothing is counted twice, idle = 100 - 30.
    trace = write_trace(tmp_path / "p.json", [GOOD[0], X("aten::a", 10, 30), X("aten::b", 30, 30)])
    df, _ = kineto.normalize(trace)
    rows = df.set_index("op")
    assert list(rows.index) == ["aten::a", optable.IDLE_OP]
    assert rows.loc["aten::a", "time_us"] == 30 and rows.loc[optable.IDLE_OP, "time_us"] == 70


def test_a_negative_duration_is_an_error_not_an_empty_thread(tmp_path):
    bad = write_trace(tmp_path / "neg.json", [GOOD[0], X("aten::mm", 10, -20), X("aten::relu", 40, 10)])
    with pytest.raises(InputError, match=r"neg.json: event 1 \('aten::mm'.*dur=-20"):
        kineto.normalize(bad)


def test_a_chrome_trace_from_another_tool(tmp_path):
    other = write_trace(
        tmp_path / "chrome.json",
        [X("v8.compile", 0, 100, cat="v8"), X("Layout", 10, 20, cat="blink"), {"ph": "M", "name": "thread_name"}],
    )
    with pytest.raises(InputError, match="chrome.json: no PyTorch operator or device events"):
        kineto.normalize(other)


def test_an_ort_profile_given_as_a_kineto_trace_gets_a_hint(tmp_path):
    p = tmp_path / "profile.json"
    p.write_text(json.dumps([X("model_run", 0, 10, cat="Session"), X("a_kernel_time", 1, 5, cat="Node")]))
    with pytest.raises(InputError, match="looks like an ONNX Runtime profile"):
        kineto.normalize(p)


@pytest.mark.parametrize(
    "content, match",
    [
        ("[1, 2, 3]", "traceEvents"),  # the array format, but its items are no events
        ('{"schemaVersion": 1, "deviceProperties": []}', r"no 'traceEvents' array \(top-level keys: 'schemaVersion'"),
        ('{"traceEvents": 5}', "'traceEvents' is a JSON number, expected an array"),
        ('"hello"', "the file is a JSON string"),
        ('{"traceEvents": [{"ph": "X", "name": 3}]}', "not a readable Kineto/Chrome trace"),
    ],
)
def test_traces_of_the_wrong_shape_say_what_was_expected(tmp_path, content, match):
    p = tmp_path / "shape.json"
    p.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        kineto.normalize(p)
    assert "shape.json" in str(err.value) and "\n" not in str(err.value)


def test_the_array_format_of_the_trace_event_spec_is_read(tmp_path):
    p = tmp_path / "array.json"
    p.write_text(json.dumps(GOOD))
    df, _ = kineto.normalize(p)
    assert df.loc[df.op == "aten::mm", "time_us"].item() == 20


def test_repeated_and_overlapping_steps(tmp_path):
    twice = write_trace(tmp_path / "twice.json", [*GOOD, X("ProfilerStep#0", 200, 50, cat="user_annotation")])
    with pytest.raises(InputError, match="ProfilerStep#0 appears twice"):
        kineto.normalize(twice)
    overlap = write_trace(tmp_path / "overlap.json", [*GOOD, X("ProfilerStep#1", 50, 100, cat="user_annotation")])
    with pytest.raises(InputError, match="overlap by 50.000 us"):
        kineto.normalize(overlap)


def test_a_failing_run_leaves_no_stale_output(tmp_path):
    out = tmp_path / "ops.parquet"
    good = write_trace(tmp_path / "good.json", GOOD)
    assert ngbench("normalize", "--trace", str(good), "--out", str(out)).returncode == 0
    assert out.is_file()
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert_one_line_error(ngbench("normalize", "--trace", str(bad), "--out", str(out)), "bad.json")
    assert not out.exists()  # the older table is gone: nothing that looks like this run's result
    assert not list(tmp_path.glob(".ops.parquet.*"))  # nor a temporary file


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    res = ngbench("normalize", "--debug", "--trace", str(bad), "--out", str(tmp_path / "o.parquet"))
    assert res.returncode != 0 and "Traceback" in res.stderr and "InputError" in res.stderr


# -- TensorRT --------------------------------------------------------------------------------------------------
@pytest.fixture
def mobilenet(fixtures_dir):
    base = fixtures_dir / "tensorrt" / "mobilenet_qat"
    return json.loads(base.with_suffix(".profile.json").read_text()), json.loads(
        base.with_suffix(".graph.json").read_text()
    )


@pytest.mark.parametrize(
    "record, value, match",
    [
        (0, {"count": None}, "'count' is None, expected a whole number"),
        (0, {"count": [3]}, "'count' is \\[3\\], expected a whole number"),
        (1, {"averageMs": None}, "'averageMs': expected a number, got null"),
        (1, {"averageMs": "fast"}, "'averageMs': expected a number, got string 'fast'"),
        (1, {"averageMs": [1.0]}, "'averageMs': expected a number, got array"),
        (1, {"averageMs": float("inf")}, "expected a finite number, got inf"),
        (1, {"averageMs": 1e306}, "'averageMs' is 1e\\+306: expected less than 1e\\+09 ms"),
        (1, {"averageMs": -1.0}, "expected a number >= 0"),
        (1, {"name": None}, "'name' is None, expected a string"),
        (1, {"name": 7}, "'name' is 7, expected a string"),
    ],
)
def test_trt_profile_fields_are_validated(tmp_path, mobilenet, record, value, match):
    profile, graph = mobilenet
    profile = [dict(r) for r in profile]
    profile[record].update(value)
    p, g = tmp_path / "prof.json", tmp_path / "graph.json"
    p.write_text(json.dumps(profile))  # Python's json writes inf as Infinity, as some tools do
    g.write_text(json.dumps(graph))
    with pytest.raises(InputError, match=match) as err:
        trt.normalize(p, g)
    assert "prof.json" in str(err.value)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("Name", None, "'Name' is None, expected a string"),
        ("Name", ["a"], "'Name' is \\['a'\\], expected a string"),
        ("LayerType", 5, "'LayerType' is number '5', expected string"),
        ("Inputs", "x", "'Inputs' is string 'x', expected array"),
        ("Inputs", [5], "each of 'Inputs' must be an object"),
        ("Metadata", {"a": 1}, "'Metadata' is object \"{'a': 1}\", expected string"),
    ],
)
def test_trt_layer_info_fields_are_validated(tmp_path, mobilenet, key, value, match):
    profile, graph = mobilenet
    graph = {**graph, "Layers": [dict(layer) for layer in graph["Layers"]]}
    graph["Layers"][3][key] = value
    p, g = tmp_path / "prof.json", tmp_path / "graph.json"
    p.write_text(json.dumps(profile))
    g.write_text(json.dumps(graph))
    with pytest.raises(InputError, match=match) as err:
        trt.normalize(p, g)
    assert "graph.json: layer 3" in str(err.value)


def test_trt_files_that_are_not_utf8_are_named(tmp_path, mobilenet):
    p = tmp_path / "prof.json"
    p.write_bytes(b'[{"name": "\xff\xfe", "averageMs": 1}]')
    with pytest.raises(InputError, match="prof.json: the TensorRT per-layer profile is not valid JSON"):
        trt.normalize(p)


def test_trt_layer_info_of_another_engine(tmp_path, mobilenet):
    profile, graph = mobilenet
    p, g = tmp_path / "prof.json", tmp_path / "other.json"
    p.write_text(json.dumps(profile))
    g.write_text(json.dumps({"Layers": [{"Name": "x", "LayerType": "Reformat"}], "Bindings": []}))
    with pytest.raises(InputError, match=r"other.json: names 0 of the 73 layers of .*prof.json; missing e.g."):
        trt.normalize(p, g)
    # most layers present: a warning and the names in the info, not an error
    some = {**graph, "Layers": graph["Layers"][:-3]}
    g.write_text(json.dumps(some))
    df, info = trt.normalize(p, g)
    assert len(info["layers_missing_from_layer_info"]) == 3


# -- ONNX Runtime ----------------------------------------------------------------------------------------------
def _ev(name, cat, ts, dur, **args):
    return {"cat": cat, "pid": 1, "tid": 1, "dur": dur, "ts": ts, "ph": "X", "name": name, "args": args}


RUNS = [
    _ev("model_run", "Session", 0, 100),
    _ev("a_kernel_time", "Node", 10, 30, op_name="MatMul"),
    _ev("model_run", "Session", 200, 100),
    _ev("a_kernel_time", "Node", 210, 30, op_name="MatMul"),
]


def test_ort_duplicated_events(tmp_path):
    p = tmp_path / "dup.json"
    p.write_text(json.dumps(RUNS + RUNS[2:]))
    with pytest.raises(InputError, match=r"dup.json: event 4 \('model_run'\) repeats event 2"):
        ort.normalize(p)


def test_ort_negative_skip_runs(tmp_path):
    p = tmp_path / "prof.json"
    p.write_text(json.dumps(RUNS))
    with pytest.raises(InputError, match="skip_runs is -2"):
        ort.normalize(p, skip_runs=-2)
    res = ngbench("normalize", "--backend", "ort", "--trace", str(p), "--skip-runs", "-2", "--out", "x.parquet")
    assert res.returncode == 2 and "expected a whole number >= 0" in res.stderr and "Traceback" not in res.stderr


def test_ort_model_run_swallowing_the_others(tmp_path):
    p = tmp_path / "prof.json"
    p.write_text(json.dumps([{**RUNS[0], "dur": 1e6}, *RUNS[1:]]))
    with pytest.raises(InputError, match="model_run events .* overlap"):
        ort.normalize(p)


def test_ort_impossible_times(tmp_path):
    p = tmp_path / "prof.json"
    p.write_text(json.dumps([RUNS[0], {**RUNS[1], "dur": -3}]))
    with pytest.raises(InputError, match=r"prof.json: event 1 \('a_kernel_time'.*dur=-3"):
        ort.normalize(p)


def test_ort_nodes_file_that_is_a_list(tmp_path):
    p = tmp_path / "prof.json"
    p.write_text(json.dumps(RUNS))
    nodes = tmp_path / "nodes.json"
    nodes.write_text("[1, 2]")
    with pytest.raises(InputError, match="nodes.json: a JSON list, expected a node table object"):
        onnx_graph.read_nodes(nodes)
    res = ngbench("normalize", "--backend", "ort", "--trace", str(p), "--nodes", str(nodes), "--out", "x.parquet")
    assert_one_line_error(res, "nodes.json")


@pytest.mark.parametrize("scope", ["'just a string'", "5", "[unbalanced"])
def test_onnx_scope_metadata_that_is_not_a_list(scope):
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    for key, value in ((onnx_graph.NAME_SCOPES, scope), (onnx_graph.CLASS_HIERARCHY, "['torch.nn.ReLU', 'relu']")):
        entry = node.metadata_props.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph([node], "g", [x], [helper.make_tensor_value_info("y", 1, [2])]))
    with pytest.raises(InputError, match=f"ONNX node 'r': metadata '{onnx_graph.NAME_SCOPES}'"):
        onnx_graph.node_modules(model)


# -- readers: a broken table never becomes shares --------------------------------------------------------------
def _table(tmp_path, times, measured):
    df, _ = kineto.normalize(write_trace(tmp_path / "t.json", GOOD))
    df["time_us"] = times
    df["iteration_time_us"] = measured
    path = tmp_path / "broken.parquet"
    df.to_parquet(path)  # written by hand: ngbench's own writer would refuse it
    return path


@pytest.mark.parametrize(
    "times, measured, match",
    [
        ([20.0, 10.0, 1e10], 100.0, "closure violated"),
        ([20.0, float("inf"), 70.0], 100.0, "time_us is inf for op 'aten::relu'"),
        ([20.0, float("nan"), 70.0], 100.0, "time_us is nan for op 'aten::relu'"),
        ([20.0, 10.0, 70.0], float("inf"), "iteration_time_us is inf"),
    ],
)
def test_shares_refuse_a_broken_table(tmp_path, times, measured, match):
    path = _table(tmp_path, times, measured)
    with pytest.raises(InputError, match=match):
        shares.aggregate([path])
    assert_one_line_error(ngbench("shares", str(path)), "broken.parquet")


def _one_iteration_table() -> pd.DataFrame:
    """One iteration of 10 us by hand: a 7 us op and its 3 us Idle row (7 + 3 = 10, so it closes)."""
    cols = {c: [] for c in optable.COLUMNS}
    op = {"op": "aten::relu", "node": "", "module": "m", "module_type": "ReLU", "group": "Activation"}
    op |= {"group_source": "module", "is_gemm": False, "time_us": 7.0, "device_time_us": None}
    op |= {"host_time_us": 7.0, "input_shapes": "", "fused_ops": []}
    op |= {"bytes": 8.0, "flops": 2.0, "work_source": "tensors", "layout": "contiguous"}
    for key, value in op.items():
        cols[key].append(value)
    optable.append_idle_row(cols, 3.0)
    cols["seq"] = [0, 1]
    labels = {"platform": "cpu", "device": "cpu", "backend": "torch", "model": "m", "batch_size": 1}
    return optable.frame(cols, **labels, seq_len=None, iteration=0, iteration_time_us=10.0)


@pytest.mark.parametrize(
    "column, row, value, message",
    [
        ("time_us", 0, float("inf"), "time_us is inf for op 'aten::relu' in iteration 0: expected a finite number"),
        ("time_us", 0, float("nan"), "time_us is nan for op 'aten::relu'"),
        ("iteration_time_us", 1, float("nan"), "iteration_time_us is nan"),
        ("host_time_us", 0, float("-inf"), "host_time_us is -inf"),
        ("host_time_us", 0, -1.0, "negative host_time_us -1.000 for op 'aten::relu' in iteration 0: times cannot"),
        ("bytes", 0, -8.0, "negative bytes -8.000 for op 'aten::relu' in iteration 0: work cannot be negative"),
        # the Idle row absorbs what ops do not cover: a negative one means ops were counted twice
        ("time_us", 1, -2.0, "negative time_us -2.000 for op 'idle/unattributed' in iteration 0: ops were"),
    ],
)
def test_check_rejects_non_finite_and_negative_times(column, row, value, message):
    good = _one_iteration_table()
    optable.check(good)  # the undamaged table passes, so each failure below is the damage's
    bad = good.copy()
    bad[column] = bad[column].astype(object)
    bad.at[row, column] = value
    if column == "time_us" and row == 1:
        bad.at[0, "time_us"] = 12.0  # keep the sum at 10 so only the sign is wrong
    with pytest.raises(optable.ClosureError) as err:
        optable.check(bad, types=False)
    assert str(err.value).startswith("op table: ") and message in str(err.value), str(err.value)


def test_check_allows_unknown_device_time_and_work():
    table = _one_iteration_table()
    table["device_time_us"] = None  # a CPU-only run: no device time, which is not a bad value
    table["bytes"] = None
    optable.check(table, types=False)


def test_reading_a_file_that_is_not_parquet_is_one_error():
    with pytest.raises(InputError, match="not a readable op table"):
        optable.read(__file__)


def test_workflow_jobs_report_bad_input_in_one_line(tmp_path):
    # what every workflow script runs first (ngbench.bridge.start), then a normalizer on a missing trace
    log = tmp_path / "job.log"
    code = (
        "from ngbench.bridge import start\n"
        f"class S: log = [{str(log)!r}]\n"
        "start(S)\n"
        "from ngbench.traces import kineto\n"
        f"kineto.normalize({str(tmp_path / 'missing.json')!r})\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2
    assert log.read_text().strip() == f"error: {tmp_path / 'missing.json'}: no such trace file"


def test_a_truncated_minified_trace_is_one_line(tmp_path):
    # another tool's minified layout goes through ijson, whose parse errors draw a multi-line caret diagram
    data = json.dumps({"traceEvents": GOOD}, separators=(",", ":"))
    bad = tmp_path / "minified.json"
    bad.write_text(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        kineto.normalize(bad)
    assert "minified.json" in str(err.value) and "\n" not in str(err.value)
    assert_one_line_error(ngbench("normalize", "--trace", str(bad), "--out", str(tmp_path / "o.parquet")))


def test_a_damaged_key_is_an_error_not_a_default(tmp_path):
    """msgspec skips keys it does not know without checking their bytes: a "dur" key damaged into invalid
    UTF-8 read as absent, and the node's time defaulted to 0. Now the bytes are checked, and a complete event
    without its times is an error in every reader."""
    events = [
        {"cat": "Session", "name": "model_run", "ph": "X", "ts": 0, "dur": 100, "args": {}},
        {"cat": "Node", "name": "mm_kernel_time", "ph": "X", "ts": 10, "dur": 50, "args": {"op_name": "MatMul"}},
    ]
    raw = json.dumps(events).encode().replace(b'"dur": 50', b'"d\x80r": 50')
    damaged = tmp_path / "ort.json"
    damaged.write_bytes(raw)
    with pytest.raises(InputError, match="ort.json: not valid JSON: .*utf-8"):
        ort.normalize(damaged)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps([events[0], {k: v for k, v in events[1].items() if k != "dur"}]))
    message = r"missing.json: event 1 \('mm_kernel_time', cat 'Node'\) has ts=10.0, dur=nan"
    with pytest.raises(InputError, match=message):
        ort.normalize(missing)
    # PyTorch's own layout (the msgspec fast path) and a minified one (ijson): both refuse the damaged key
    step, mm = X("ProfilerStep#1", 0, 100, cat="user_annotation"), X("aten::mm", 10, 50)
    blocks = ",\n".join("  {\n    " + json.dumps(e)[1:-1] + "\n  }" for e in (step, mm))
    for layout, text in (
        ("pytorch", '{\n  "schemaVersion": 1,\n  "traceEvents": [\n' + blocks + "\n  ]\n}"),
        ("minified", json.dumps({"traceEvents": [step, mm]})),
    ):
        trace = tmp_path / f"{layout}.json"
        trace.write_bytes(text.encode().replace(b'"dur": 50', b'"d\xffr": 50'))
        with pytest.raises(InputError, match=f"(?i){layout}.json: .*utf-?8"):
            kineto.normalize(trace)
        trace.write_text(text)
        assert len(kineto.normalize(trace)[0]) == 2  # undamaged: the op and the Idle row
