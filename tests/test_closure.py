"""Attribution and closure on small hand-written traces whose answers are worked out in the comments."""

import gzip
import json

import pandas as pd
import pytest

from ngbench import table as optable
from ngbench.errors import InputError
from ngbench.traces import kineto


def X(name, ts, dur, cat="cpu_op", tid=1, **args):
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": args}


def write_trace(path, events, gz=False):
    data = json.dumps({"schemaVersion": 1, "traceEvents": events}).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


CPU_EVENTS = [
    X("ProfilerStep#0", 0, 100, cat="user_annotation"),
    X("ngb.module::<root>::Net", 1, 98, cat="user_annotation"),
    X("ngb.module::act::NewGELUActivation", 10, 30, cat="user_annotation"),
    X("aten::mul", 11, 5, **{"Input Dims": [[2, 8], [2, 8]]}),
    X("aten::empty", 12, 1),  # child of mul: not a row
    X("aten::tanh", 20, 10),
    X("ngb.module::fc::Linear", 49, 22, cat="user_annotation"),
    X("aten::linear", 50, 20),
    X("aten::t", 51, 2),
    X("aten::addmm", 54, 15),
    X("aten::view", 80, 2),
    X("my range", 85, 5, cat="user_annotation"),  # a user's own range: neither op nor scope
    X("ProfilerStep#1", 200, 50, cat="user_annotation"),
    X("aten::softmax", 210, 10),
    X("aten::add", 5, 3, tid=2),  # another thread: overlaps the dispatcher, not a row, counted
]


def test_cpu_trace_rows_groups_and_idle(tmp_path):
    path = write_trace(tmp_path / "t.json", CPU_EVENTS)
    df, info = kineto.normalize(path, model="net", batch_size=2)
    assert info["iterations"] == 2 and info["ops_on_other_threads"] == 1 and not info["device_activity"]
    it0 = df[df.iteration == 0].set_index("op")
    assert list(it0.index) == ["aten::mul", "aten::tanh", "aten::linear", "aten::view", "idle/unattributed"]
    assert it0["time_us"].tolist() == [5, 10, 20, 2, 100 - 37]
    assert it0.loc["aten::mul", "group"] == "Activation"  # inside NewGELUActivation
    assert it0.loc["aten::mul", "module"] == "act"
    assert it0.loc["aten::mul", "input_shapes"] == "[[2,8],[2,8]]"
    assert it0.loc["aten::linear", "module_type"] == "Linear"
    assert it0.loc["aten::view", "module"] == "<root>" and it0.loc["aten::view", "group"] == "Memory"
    assert it0.loc["idle/unattributed", "group"] == "Idle"
    assert it0["device_time_us"].isna().all()
    it1 = df[df.iteration == 1].set_index("op")
    assert it1["time_us"].tolist() == [10, 40]
    assert it1.loc["aten::softmax", "group"] == "Logit"


def test_gzip_and_plain_parse_alike(tmp_path):
    a, _ = kineto.normalize(write_trace(tmp_path / "a.json", CPU_EVENTS))
    b, _ = kineto.normalize(write_trace(tmp_path / "b.json.gz", CPU_EVENTS, gz=True))
    pd.testing.assert_frame_equal(a, b)


GPU_EVENTS = [
    X("ProfilerStep#5", 0, 100, cat="user_annotation"),
    X("aten::mm", 10, 10),
    X("cudaLaunchKernel", 12, 3, cat="cuda_runtime", correlation=1),
    X("aten::add", 30, 10),
    X("cudaLaunchKernel", 32, 3, cat="cuda_runtime", correlation=2),
    X("aten::view", 50, 2),
    X("cudaLaunchKernel", 70, 3, cat="cuda_runtime", correlation=3),  # launched outside any op
    X("cudaDeviceSynchronize", 75, 5, cat="cuda_runtime", correlation=4),  # no device work: no row
    {**X("ampere_sgemm_64x64_nn", 20, 40, cat="kernel", tid=7, correlation=1), "pid": 0},
    {**X("add_kernel", 40, 40, cat="kernel", tid=8, correlation=2), "pid": 0},
    {**X("void at::native::vectorized_elementwise_kernel<4>", 90, 30, cat="kernel", tid=7, correlation=3), "pid": 0},
]


def test_gpu_trace_splits_overlap_and_never_adds_host_time(tmp_path):
    # window: the step itself, 0..100 (device work past its end is not stretched into it). Busy union in the
    # window: [20,80] + [90,100] = 70. [20,40] mm alone 20; [40,60] mm and add 10 each; [60,80] add 20;
    # [90,100] the kernel launched outside any op 10 (its [100,120] lies outside every iteration).
    df, info = kineto.normalize(write_trace(tmp_path / "g.json", GPU_EVENTS))
    assert info["device_activity"]
    rows = df.set_index("op")
    assert (rows["iteration_time_us"] == 100).all()
    assert rows.loc["aten::mm", "time_us"] == 30 and rows.loc["aten::mm", "device_time_us"] == 40
    assert rows.loc["aten::add", "time_us"] == 30 and rows.loc["aten::add", "device_time_us"] == 40
    assert rows.loc["aten::view", "time_us"] == 0 and rows.loc["aten::view", "host_time_us"] == 2
    orphan = rows.loc["void at::native::vectorized_elementwise_kernel<4>"]
    assert orphan.time_us == 10 and orphan.device_time_us == 10 and orphan.group == "Elementwise"
    assert rows.loc["idle/unattributed", "time_us"] == 30
    assert rows.loc["aten::mm", "group"] == "GEMM"
    assert len(df) == 5
    assert info["device_time_us"] == 40 + 40 + 30 and info["device_time_outside_iterations_us"] == 20


def _table(times, measured):
    n = len(times)
    return pd.DataFrame(
        {
            "platform": ["p"] * n,
            "device": ["cpu"] * n,
            "backend": ["torch"] * n,
            "model": ["m"] * n,
            "batch_size": pd.array([1] * n, dtype="int32"),
            "seq_len": pd.array([None] * n, dtype="Int32"),
            "iteration": pd.array([0] * n, dtype="int32"),
            "seq": pd.array(range(n), dtype="int32"),
            "op": ["a"] * (n - 1) + [optable.IDLE_OP],
            "node": [""] * n,
            "module": [""] * n,
            "module_type": [""] * n,
            "group": ["GEMM"] * (n - 1) + ["Idle"],
            "group_source": ["op"] * n,
            "is_gemm": [True] * (n - 1) + [False],
            "time_us": times,
            "device_time_us": [None] * n,
            "host_time_us": times,
            "iteration_time_us": [measured] * n,
            "input_shapes": [""] * n,
            "fused_ops": [[] for _ in range(n)],
        }
    )


def test_closure_check_catches_double_counting_and_mismatch(tmp_path):
    optable.check(_table([60.0, 40.0], 100.0))
    with pytest.raises(optable.ClosureError, match="negative"):
        optable.check(_table([120.0, -20.0], 100.0))
    with pytest.raises(optable.ClosureError, match="closure violated"):
        optable.check(_table([60.0, 30.0], 100.0))
    with pytest.raises(optable.ClosureError, match="Idle"):
        bad = _table([60.0, 40.0], 100.0)
        bad.loc[1, "group"] = "GEMM"
        optable.check(bad)


def test_parquet_round_trip_keeps_schema_and_metadata(tmp_path):
    df = _table([60.0, 40.0], 100.0)
    out = tmp_path / "ops.parquet"
    optable.write(df, out, run={"status": "ok", "note": "x"})
    back = optable.read(out)
    assert back["time_us"].sum() == 100.0 and list(back.columns) == optable.COLUMNS
    assert optable.read_run_metadata(out)["note"] == "x"


def test_unreadable_trace_names_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"traceEvents": [ {"ph": "X", ')
    with pytest.raises(InputError, match="broken.json"):
        kineto.normalize(bad)
    with pytest.raises(InputError, match="no such trace"):
        kineto.normalize(tmp_path / "missing.json")


def test_composite_attention_ops_are_transparent(tmp_path):
    # torchvision's MHA fast path: its children (GEMMs, softmax, layout) are the rows, not one GEMM blob
    events = [
        X("ProfilerStep#0", 0, 100, cat="user_annotation"),
        X("ngb.module::encoder.layer0.attn::MultiheadAttention", 1, 60, cat="user_annotation"),
        X("aten::_native_multi_head_attention", 2, 58),
        X("aten::mm", 3, 20),
        X("aten::_transform_bias_rescale_qkv", 24, 5),
        X("aten::bmm", 30, 10),
        X("aten::_softmax", 41, 8),
        X("aten::bmm", 50, 9),
        X("aten::scaled_dot_product_attention", 70, 20),
        X("aten::_scaled_dot_product_flash_attention_for_cpu", 71, 18),  # a fused kernel: one GEMM row
    ]
    df, _ = kineto.normalize(write_trace(tmp_path / "mha.json", events))
    rows = df[df.group != "Idle"]
    assert rows.op.tolist() == [
        "aten::mm",
        "aten::_transform_bias_rescale_qkv",
        "aten::bmm",
        "aten::_softmax",
        "aten::bmm",
        "aten::_scaled_dot_product_flash_attention_for_cpu",
    ]
    assert rows.group.tolist() == ["GEMM", "Elementwise", "GEMM", "Logit", "GEMM", "GEMM"]
    assert rows.module_type.tolist()[:5] == ["MultiheadAttention"] * 5
    assert df[df.group == "Idle"].time_us.item() == 100 - (20 + 5 + 10 + 8 + 9 + 18)


def _kernel(name, ts, dur, corr, stream=7):
    return {**X(name, ts, dur, cat="kernel", tid=stream, correlation=corr), "pid": 0}


def test_device_work_straddling_a_step_boundary_is_split_at_it(tmp_path):
    # step 0 [0,100], step 1 [100,200]. aten::mm (step 0) launches a kernel [80,130]: 20 us in step 0 and
    # 30 us in step 1, both on mm's row; step 1's own aten::add launches [140,150]. A second thread (the
    # backward thread of a training loop) launches [60,70] from its own top-level op.
    events = [
        X("ProfilerStep#0", 0, 100, cat="user_annotation"),
        X("ProfilerStep#1", 100, 100, cat="user_annotation"),
        X("aten::mm", 10, 10),
        X("cudaLaunchKernel", 12, 2, cat="cuda_runtime", correlation=1),
        X("aten::add", 120, 5),
        X("cudaLaunchKernel", 121, 2, cat="cuda_runtime", correlation=2),
        X("autograd::engine::evaluate_function: MulBackward0", 50, 5, tid=2),
        X("cudaLaunchKernel", 51, 2, cat="cuda_runtime", tid=2, correlation=3),
        _kernel("ampere_sgemm_128x64_nn", 80, 50, 1),
        _kernel("vectorized_elementwise_kernel<add>", 140, 10, 2),
        _kernel("vectorized_elementwise_kernel<mul>", 60, 10, 3),
    ]
    df, info = kineto.normalize(write_trace(tmp_path / "s.json", events))
    optable.check(df)
    assert info["threads_launching_device_work"] == 2
    s0 = df[df.iteration == 0].set_index("op")
    s1 = df[df.iteration == 1].set_index("op")
    assert (s0.iteration_time_us == 100).all() and (s1.iteration_time_us == 100).all()  # never stretched
    assert s0.loc["aten::mm", "time_us"] == 20 and s0.loc["aten::mm", "host_time_us"] == 10
    assert s1.loc["aten::mm", "time_us"] == 30 and s1.loc["aten::mm", "host_time_us"] == 0  # host time once
    assert s1.loc["aten::add", "time_us"] == 10
    backward = s0.loc["autograd::engine::evaluate_function: MulBackward0"]
    assert backward.time_us == 10 and backward.group == "Elementwise" and backward.group_source == "kernels"
    assert s0.loc[optable.IDLE_OP, "time_us"] == 100 - 30 and s1.loc[optable.IDLE_OP, "time_us"] == 100 - 40
    assert df.groupby("iteration").time_us.sum().tolist() == [100, 100]


def test_unknown_composite_op_takes_its_kernels_group(tmp_path):
    # vllm::moe_forward launches a GEMM kernel (40 us) and a routing kernel (10 us): GEMM by device time.
    # A kernel with no launch in the trace (no runtime event carries its correlation) is its own row.
    events = [
        X("ProfilerStep#0", 0, 200, cat="user_annotation"),
        X("vllm::moe_forward", 10, 20),
        X("cudaLaunchKernel", 12, 2, cat="cuda_runtime", correlation=1),
        X("cudaLaunchKernel", 16, 2, cat="cuda_runtime", correlation=2),
        X("my::custom_op", 40, 5),
        X("cudaLaunchKernel", 41, 2, cat="cuda_runtime", correlation=3),
        _kernel("moe_align_block_size_kernel", 20, 10, 1),
        _kernel("fused_moe_kernel", 30, 40, 2),
        _kernel("mystery_kernel", 80, 10, 3),
        _kernel("ncclDevKernel_AllReduce_Sum_f16_RING_LL", 100, 50, 99),
    ]
    df, info = kineto.normalize(write_trace(tmp_path / "v.json", events))
    rows = df.set_index("op")
    assert rows.loc["vllm::moe_forward", "group"] == "GEMM" and rows.loc["vllm::moe_forward", "time_us"] == 50
    assert rows.loc["my::custom_op", "group"] == "Other"  # its kernel says nothing either: truly unknown
    nccl = rows.loc["ncclDevKernel_AllReduce_Sum_f16_RING_LL"]
    assert nccl.group == "Communication" and nccl.time_us == 50 and pd.isna(nccl.host_time_us)
    assert info["device_time_without_launching_op_us"] == 50
    assert rows.loc[optable.IDLE_OP, "time_us"] == 200 - 50 - 10 - 50


def test_cpu_trace_reports_other_threads_time(tmp_path):
    df, info = kineto.normalize(write_trace(tmp_path / "t.json", CPU_EVENTS))
    assert info["ops_on_other_threads"] == 1 and info["other_threads_op_time_us"] == 3  # aten::add on tid 2
