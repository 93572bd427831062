"""The normalizer on two real Kineto traces published by HolisticTraceAnalysis (MIT; see
tests/fixtures/README.md for provenance).

Expected values were computed independently of ngbench, not copied from its output:
- a100_alexnet: by ``tests/alexnet_oracle.py``, a brute-force script that joins device activity to runtime
  calls through the trace's ``ac2g`` flow events (``s``/``f`` pairs by id, not ``args.correlation``), finds
  top-level ops by O(n^2) interval containment, and measures busy time as the count of distinct integer
  microseconds covered (this trace's timestamps are integers). The trace has two ``[...|measure|forward]``
  ranges, one inside the other (79,678 us around 36,356 us, with the same top-level ops): the inner one is
  the iteration.
- a100_inductor_triton: by hand from the 13 non-metadata events (listed in the comments below).
"""

import gzip
import json

import alexnet_oracle
import pytest
from conftest import normalized

from ngbench.traces import kineto

MARKER = r"\|measure\|forward\]$"


@pytest.fixture
def alexnet(fixtures_dir):
    return fixtures_dir / "torch-profiler" / "a100_alexnet.json.gz"


@pytest.fixture
def triton(fixtures_dir):
    return fixtures_dir / "torch-profiler" / "a100_inductor_triton.json.gz"


def test_alexnet_iterations_from_marker_ranges(alexnet):
    df, info = kineto.normalize(alexnet, iteration_marker=MARKER)
    # the enclosing measure range is a phase, not a second iteration (it would count the same ops twice)
    assert info["iterations"] == 1 and info["marker_ranges_enclosing_others"] == 1
    assert info["device_activity"] is True
    per_iter = df.groupby("iteration").agg(rows=("op", "size"), measured=("iteration_time_us", "first"))
    # 22 top-level ops (+1 idle row); the window is the inner marker's duration
    assert per_iter["rows"].tolist() == [23]
    assert per_iter["measured"].tolist() == pytest.approx([36356.0])


def test_the_alexnet_oracle_gives_the_numbers_below(alexnet):
    # the constants in these tests are the oracle's output (python tests/alexnet_oracle.py)
    oracle = alexnet_oracle.read(alexnet)
    assert oracle["iteration_us"] == 36356 and oracle["top_level_ops"] == 22 and oracle["busy_us"] == 5282
    assert oracle["device_us_per_op"] == {
        "aten::adaptive_avg_pool2d": 136,
        "aten::conv2d": 3142,
        "aten::dropout": 17,
        "aten::linear": 1324,  # 820 + 400 + 104: the last Linear's 2 us cudaMemsetAsync counts as its time
        "aten::max_pool2d": 322,
        "aten::relu_": 341,
    }


def test_alexnet_device_time_per_op_type(alexnet):
    df, _ = kineto.normalize(alexnet, iteration_marker=MARKER)
    dev = df.groupby("op")["device_time_us"].sum()
    # per-op union of kernel intervals, from the flow-event join
    assert dev["aten::conv2d"] == pytest.approx(3142.0)
    assert dev["aten::linear"] == pytest.approx(1324.0)
    assert dev["aten::relu_"] == pytest.approx(341.0)
    assert dev["aten::max_pool2d"] == pytest.approx(322.0)
    assert dev["aten::adaptive_avg_pool2d"] == pytest.approx(136.0)
    assert dev["aten::dropout"] == pytest.approx(17.0)
    assert dev["aten::flatten"] == 0.0
    # closure: busy time 5282 us (distinct covered microseconds) + idle = window
    idle = df.loc[df.group == "Idle", "time_us"].item()
    assert df.loc[df.group != "Idle", "time_us"].sum() == pytest.approx(5282.0)
    assert idle == pytest.approx(df.iteration_time_us.iloc[0] - 5282.0)


def test_alexnet_groups_follow_the_taxonomy(alexnet):
    df, _ = kineto.normalize(alexnet, iteration_marker=MARKER)
    by_group = df.groupby("group")["time_us"].sum()
    assert by_group["GEMM"] == pytest.approx(3142.0 + 1324.0)
    assert by_group["Activation"] == pytest.approx(341.0)
    assert by_group["Pooling"] == pytest.approx(322.0 + 136.0)


def test_alexnet_without_marker_is_one_iteration(alexnet):
    df, info = kineto.normalize(alexnet)
    assert info["iterations"] == 1
    assert "whole trace" in info["iteration_source"]
    # whole-trace window: first to last recorded activity (Trace span excluded)
    events = json.loads(gzip.decompress(alexnet.read_bytes()))["traceEvents"]
    xs = [e for e in events if e.get("ph") == "X" and e.get("cat") != "Trace"]
    span = max(e["ts"] + e["dur"] for e in xs) - min(e["ts"] for e in xs)
    assert df["iteration_time_us"].iloc[0] == pytest.approx(span)


def test_triton_trace_by_hand(triton):
    # ProfilerStep#1 starts at 2413669096090.1; its recorded dur (13.3 s) outlives the record window, so the
    # window ends at the "Record Window End" instant, 2413669097927.433: 1837.333 us.
    df, info = kineto.normalize(triton)
    assert info["iteration_source"] == "ProfilerStep#N ranges"
    assert df["iteration"].unique().tolist() == [1]
    assert df["iteration_time_us"].iloc[0] == pytest.approx(1837.333, abs=1e-3)
    ops = df[df.group != "Idle"].set_index("op")
    # "Torch-Compiled Region: 0/0" is a wrapper: its child, the Triton launch op, is the row
    assert sorted(ops.index) == ["TorchDynamo Cache Lookup", "triton_poi_fused_add_cos_sin_0"]
    tri = ops.loc["triton_poi_fused_add_cos_sin_0"]
    assert tri.device_time_us == pytest.approx(1.76, abs=1e-3)  # the one kernel, correlation 35
    assert tri.time_us == pytest.approx(1.76, abs=1e-3)
    assert tri.host_time_us == pytest.approx(95.812, abs=1e-3)
    assert tri.group == "Elementwise"  # fused add/cos/sin
    assert tri.node == "0/0"  # the compile id of its "Torch-Compiled Region: 0/0": joins it to its graph
    assert ops.loc["TorchDynamo Cache Lookup"].group == "Runtime"  # framework work, no operator: kept, counted
    assert ops.loc["TorchDynamo Cache Lookup"].time_us == 0.0  # no device work
    idle = df.loc[df.group == "Idle", "time_us"].item()
    assert idle == pytest.approx(1837.333 - 1.76, abs=1e-3)


# -- training traces whose GPU work is launched from two threads (forward: main thread; backward: autograd's
# device thread). Expected busy time per step is computed here straight from the JSON: the union of every
# device interval (cat kernel, gpu_memcpy, gpu_memset) clipped to the ProfilerStep range, no ngbench code.
def _device_union_per_step(path):
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    steps = {
        e["name"]: (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("ph") == "X" and e.get("cat") == "user_annotation" and e.get("name", "").startswith("ProfilerStep#")
    }
    device = [
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    ]
    out = {}
    for name, (a, b) in steps.items():
        clipped = sorted((max(s, a), min(e, b)) for s, e in device if s < b and e > a)
        total, cur_s, cur_e = 0.0, None, None
        for s, e in clipped:
            if cur_e is None or s > cur_e:
                total += (cur_e - cur_s) if cur_e is not None else 0.0
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        total += (cur_e - cur_s) if cur_e is not None else 0.0
        out[int(name.split("#")[1])] = (total, b - a)
    return out


@pytest.mark.parametrize("name", ["hta_trace_diff_control_two_threads.json.gz", "mi250_rocm_train_two_threads.json.gz"])
def test_two_thread_traces_keep_every_threads_device_work(fixtures_dir, name):
    path = fixtures_dir / "torch-profiler" / name
    expected = _device_union_per_step(path)
    df, info = normalized(name)
    assert info["threads_launching_device_work"] == 2
    assert sorted(df.iteration.unique()) == sorted(expected)
    for it, (busy, window) in expected.items():
        sub = df[df.iteration == it]
        # closure against the step itself: the window is the ProfilerStep range, never stretched
        assert sub.iteration_time_us.iloc[0] == pytest.approx(window)
        # exact: HTA's trace has 1256 us of memsets (0.3% of its busy time), which a looser bound would hide
        assert sub.loc[sub.group != "Idle", "time_us"].sum() == pytest.approx(busy, rel=1e-9, abs=1e-6)
    # the sum over iterations never exceeds the steps: no two iterations share time
    assert df.groupby("iteration").iteration_time_us.first().sum() == pytest.approx(
        sum(w for _, w in expected.values())
    )


def test_hta_two_thread_trace_rows_come_from_both_threads(fixtures_dir):
    path = fixtures_dir / "torch-profiler" / "hta_trace_diff_control_two_threads.json.gz"
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    # backward ops run on autograd's thread: their evaluate_function wrappers are top-level ops there
    backward = {e["name"] for e in events if e.get("cat") == "cpu_op" and e["name"].startswith("autograd::engine")}
    df, info = normalized(path.name)
    assert backward & set(df.op)
    assert info["device_time_without_launching_op_us"] == 0.0
    # a composite op the taxonomy does not know is grouped by the kernels it launched, not left in Other
    by_kernels = df[df.group_source == "kernels"]
    assert len(by_kernels) and (by_kernels.group != "Other").all()
    assert df.loc[df.op == "record_param_comms", "group"].eq("Communication").all()
