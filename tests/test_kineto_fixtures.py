"""The normalizer on two real Kineto traces published by HolisticTraceAnalysis (MIT; see
tests/fixtures/README.md for provenance).

Expected values were computed independently of ngbench, not copied from its output:
- a100_alexnet: by a separate brute-force script that joins kernels to runtime calls through the trace's
  ``ac2g`` flow events (``s``/``f`` pairs by id, not ``args.correlation``), finds top-level ops by O(n^2)
  interval containment, and measures busy time as the count of distinct integer microseconds covered
  (this trace's timestamps are integers). Iteration windows are the two ``[...|measure|forward]`` ranges.
- a100_inductor_triton: by hand from the 13 non-metadata events (listed in the comments below).
"""

import gzip
import json

import pytest

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
    assert info["iterations"] == 2
    assert info["device_activity"] is True
    per_iter = df.groupby("iteration").agg(rows=("op", "size"), measured=("iteration_time_us", "first"))
    # 25 and 22 top-level ops (+1 idle row); windows are the marker durations (no kernel outlives them)
    assert per_iter["rows"].tolist() == [26, 23]
    assert per_iter["measured"].tolist() == pytest.approx([79678.0, 36356.0])


def test_alexnet_device_time_per_op_type(alexnet):
    df, _ = kineto.normalize(alexnet, iteration_marker=MARKER)
    for it in (0, 1):
        sub = df[df.iteration == it]
        dev = sub.groupby("op")["device_time_us"].sum()
        # per-op union of kernel intervals, from the flow-event join
        assert dev["aten::conv2d"] == pytest.approx(3142.0)
        assert dev["aten::linear"] == pytest.approx(1324.0)
        assert dev["aten::relu_"] == pytest.approx(341.0)
        assert dev["aten::max_pool2d"] == pytest.approx(322.0)
        assert dev["aten::adaptive_avg_pool2d"] == pytest.approx(136.0)
        assert dev["aten::dropout"] == pytest.approx(17.0)
        assert dev["aten::flatten"] == 0.0
        # closure: busy time 5282 us (distinct covered microseconds) + idle = window
        idle = sub.loc[sub.group == "Idle", "time_us"].item()
        assert sub.loc[sub.group != "Idle", "time_us"].sum() == pytest.approx(5282.0)
        assert idle == pytest.approx(sub.iteration_time_us.iloc[0] - 5282.0)


def test_alexnet_groups_follow_the_taxonomy(alexnet):
    df, _ = kineto.normalize(alexnet, iteration_marker=MARKER)
    it0 = df[df.iteration == 0].groupby("group")["time_us"].sum()
    assert it0["GEMM"] == pytest.approx(3142.0 + 1324.0)
    assert it0["Activation"] == pytest.approx(341.0)
    assert it0["Pooling"] == pytest.approx(322.0 + 136.0)


def test_alexnet_without_marker_is_one_iteration(alexnet):
    df, info = kineto.normalize(alexnet)
    assert info["iterations"] == 1
    assert "whole trace" in info["iteration_source"]
    # whole-trace window: first to last recorded activity (Trace span excluded)
    events = json.load(gzip.open(alexnet))["traceEvents"]
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
    assert ops.loc["TorchDynamo Cache Lookup"].group == "Runtime"  # framework work, no operator: kept, counted
    assert ops.loc["TorchDynamo Cache Lookup"].time_us == 0.0  # no device work
    idle = df.loc[df.group == "Idle", "time_us"].item()
    assert idle == pytest.approx(1837.333 - 1.76, abs=1e-3)
