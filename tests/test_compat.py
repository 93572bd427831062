"""The original study's metric (``compat``) on a small trace whose values are worked out by hand from the
original's rules (../shared/reference/original-nongemm-bench.md section 2.1)."""

import json

import pandas as pd
import pytest

from ngbench.errors import InputError
from ngbench.traces import compat


def X(name, ts, dur, cat="cpu_op", corr=None, tid=1):
    e = {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid}
    if corr is not None:
        e["args"] = {"correlation": corr}
    return e


EVENTS = [
    X("ProfilerStep#1", 0, 1000, cat="user_annotation"),
    X("aten::linear", 10, 100),  # GEMM; its child addmm is hidden, its kernel counts for it
    X("aten::addmm", 20, 80),
    X("cudaLaunchKernel", 30, 10, cat="cuda_runtime", corr=1),
    X("gemm_kernel", 35, 50, cat="kernel", corr=1, tid=7),
    X("ngb.module::backbone.bn1::FrozenBatchNorm2d", 200, 100, cat="user_annotation"),  # a pseudo-op
    X("aten::mul", 210, 30),
    X("cudaLaunchKernel", 215, 5, cat="cuda_runtime", corr=2),
    X("mul_kernel", 220, 20, cat="kernel", corr=2, tid=7),
    X("aten::add", 250, 30),
    X("ngb.module::blocks.0::Block", 400, 300, cat="user_annotation"),  # an ordinary module: no event of its own
    X("aten::view", 410, 5),
    X("aten::gelu", 420, 80),
    X("cudaLaunchKernel", 430, 5, cat="cuda_runtime", corr=3),
    X("gelu_kernel", 440, 30, cat="kernel", corr=3, tid=7),
    X("aten::triu", 510, 20),  # in no list of the original
    X("aten::softmax", 800, 50),
    X("aten::relu", 1100, 10),  # after the step: not measured
]


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "trace.0.json"
    path.write_text(json.dumps({"traceEvents": EVENTS}))
    return path


def test_per_op_latency_is_inclusive_host_plus_device(trace):
    ops, _ = compat.shares([trace])
    ops = ops.set_index("name")
    # by hand: linear 100 us host (addmm inside it) + the 50 us kernel its child launched
    assert ops.loc["aten::linear", ["host_us", "device_us", "latency_us"]].tolist() == [100, 50, 150]
    assert ops.loc["frozenbatchnorm2d_prof", "latency_us"] == 100 + 20  # mul and add hidden inside it
    assert ops.loc["aten::gelu", "latency_us"] == 80 + 30 and ops.loc["aten::view", "latency_us"] == 5
    assert "aten::addmm" not in ops.index and "aten::mul" not in ops.index and "aten::relu" not in ops.index
    assert ops.loc["aten::linear", "class"] == "gemm" and pd.isna(ops.loc["aten::triu", "group"])


def test_groups_leave_unknown_names_and_frozen_bn_out_of_the_denominator(trace):
    _, view = compat.shares([trace])
    pct = view[view.view == "pct"].set_index("group")
    denominator = 150 + 5 + 110 + 50  # GEMM + memory (view) + activation (gelu) + logit (softmax)
    assert pct.loc["gemm", "pct"] == pytest.approx(100 * 150 / denominator)
    assert pct.loc["activation", "pct"] == pytest.approx(100 * 110 / denominator)
    assert pct.loc["memory", "pct"] == pytest.approx(100 * 5 / denominator)
    assert pct.loc["ungrouped", "latency_us"] == 120 + 20  # FrozenBN and triu: counted nowhere
    assert "normalization" not in pct.index
    gng = view[view.view == "gng"].set_index("group")
    assert gng.loc["non_gemm", "latency_us"] == 120 + 5 + 110 + 20 + 50  # gng keeps every non-GEMM name
    assert gng.loc["gemm", "pct"] == pytest.approx(100 * 150 / 455)


def test_each_flaw_has_its_switch(trace):
    off = compat.Switches(frozen_bn_nowhere=False, drop_unknown=False)
    _, view = compat.shares([trace], off)
    pct = view[view.view == "pct"].set_index("group")
    assert pct.loc["normalization", "latency_us"] == 120 and pct.loc["other", "latency_us"] == 20
    assert pct.loc["gemm", "pct"] == pytest.approx(100 * 150 / 455)  # now the two views agree
    device_only = compat.Switches(host_plus_device=False)
    ops, _ = compat.shares([trace], device_only)
    assert ops.set_index("name").loc["aten::linear", "latency_us"] == 50  # its kernels alone
    assert ops.set_index("name").loc["aten::view", "latency_us"] == 5  # no kernel: its host time
    self_time = compat.Switches(inclusive=False)
    ops, _ = compat.shares([trace], self_time)
    assert ops.set_index("name").loc["aten::linear", "host_us"] == 100 - 80
    assert ops.set_index("name").loc["frozenbatchnorm2d_prof", "host_us"] == 100 - 30 - 30


def test_attention_counts_as_gemm_unless_switched_off():
    assert compat.classify("aten::scaled_dot_product_attention") == ("gemm", None)
    assert compat.classify("aten::_native_multi_head_attention", compat.Switches(attention_as_gemm=False)) == (
        "non_gemm",
        "other",
    )
    assert compat.classify("segformerdwconv_prof")[0] == "gemm"  # the original's substring rule
    assert compat.classify("profilerstep#3")[0] == "dropped"


def test_sums_over_iterations(trace, tmp_path):
    ops, _ = compat.shares([trace, trace])
    assert ops.set_index("name").loc["aten::gelu", "count"] == 2


def test_a_trace_without_host_ops_is_a_one_line_error(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"traceEvents": [X("ProfilerStep#1", 0, 10, cat="user_annotation")]}))
    with pytest.raises(InputError, match="no host operator"):
        compat.shares([path])


def test_the_devices_copy_of_a_step_is_no_window(tmp_path):
    """CUDA traces repeat ProfilerStep#N as gpu_user_annotation over the step's device work: it ends at the
    last kernel, before the host's step does; the host op after it is still inside the step."""
    events = [*EVENTS[:-1], X("ProfilerStep#1", 30, 450, cat="gpu_user_annotation", tid=7)]
    path = tmp_path / "cuda.json"
    path.write_text(json.dumps({"traceEvents": events}))
    ops, _ = compat.shares([path])
    assert ops.set_index("name").loc["aten::softmax", "latency_us"] == 50  # at 800 us: in the host's step


def test_the_command_line(trace, tmp_path):
    from conftest import run_ngbench

    out = tmp_path / "compat.csv"
    cmd = ["normalize", "--metric", "compat", "--trace", str(trace), "--out", str(out)]
    res = run_ngbench(*cmd, "--compat-off", "frozen_bn_nowhere", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "normalization" in res.stdout and pd.read_csv(out).set_index("name").loc["aten::gelu", "latency_us"] == 110
    res = run_ngbench(*cmd, "--backend", "ort", cwd=tmp_path)
    assert res.returncode == 2 and "--metric compat reads PyTorch profiler traces" in res.stderr


def test_a_runs_compat_shares_sit_beside_ours(trace):
    from ngbench.analysis import compat as compat_shares

    meta = {"platform": "cpu", "device": "cpu", "backend": "torch", "model": "m", "batch_size": 1, "status": "ok"}
    df = compat_shares.run_frame(trace.parent, {**meta})
    assert df.empty  # trace.0.json is not a trace.<k>.json.gz of a run directory
    run_dir = trace.parent / "run"
    run_dir.mkdir()
    import gzip

    (run_dir / "trace.0.json.gz").write_bytes(gzip.compress(trace.read_bytes()))
    df = compat_shares.run_frame(run_dir, meta)
    by = df.set_index(["level", "group"])
    assert by.loc[("class", "GEMM"), "pct"] == pytest.approx(100 * 150 / 315)
    assert by.loc[("class", "non-GEMM"), "pct"] == pytest.approx(100 * 165 / 315)
    ops = df[df.level == "op"].set_index("name")
    assert ops.loc["aten::gelu", "group"] == "activation" and ops.loc["aten::gelu", "latency_us"] == 110
    ort = compat_shares.run_frame(run_dir, {**meta, "backend": "ort"})
    assert ort.empty  # ONNX Runtime profiles are not the original's PyTorch metric
