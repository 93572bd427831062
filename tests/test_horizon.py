"""The roofline per row, the per-run horizon and the platform roofs, with expected values worked by hand."""

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, normalized, run_ngbench

from ngbench import catalog
from ngbench import table as optable
from ngbench.analysis import horizon as hz
from ngbench.errors import InputError

# 10 GB/s up to 1 MiB, 1 GB/s from 1 GiB; 1 TFLOP/s fp32; the torch floor 1 us
LIMITS = {
    "format": "ngbench.platform-limits/1",
    "platform": "box",
    "status": "ok",
    "memory_bandwidth": [
        {"kernel": "copy", "working_set_bytes": 1 << 20, "gb_per_s": 10.0, "resolved": True},
        {"kernel": "triad", "working_set_bytes": 1 << 20, "gb_per_s": 8.0, "resolved": True},
        {"kernel": "copy", "working_set_bytes": 1 << 30, "gb_per_s": 1.0, "resolved": True},
        {"kernel": "copy", "working_set_bytes": 1 << 10, "gb_per_s": 500.0, "resolved": False},
    ],
    "peak_flops": {"float32": {"flops_per_s": 1e12}},
    "dispatch_floor_us": {"torch": {"us": 1.0}, "trt": {"us": None, "reason": "no GPU"}},
}


@pytest.fixture
def limits(tmp_path):
    path = tmp_path / "box.json"
    path.write_text(json.dumps(LIMITS))
    return hz.read_limits(path)


def test_bandwidth_curve_best_kernel_interpolated_on_log_size(limits):
    assert limits.bytes_per_us(1 << 20) == pytest.approx(10e3)  # best of copy and triad; bytes/us = GB/s x 1e3
    assert limits.bytes_per_us(100) == pytest.approx(10e3)  # below the first resolved size: its bandwidth
    assert limits.bytes_per_us(1 << 40) == pytest.approx(1e3)
    # halfway between 2^20 and 2^30 in log size (2^25): halfway in log bandwidth, sqrt(10 x 1) GB/s
    assert limits.bytes_per_us(1 << 25) == pytest.approx(math.sqrt(10) * 1e3)
    assert limits.floor_us("torch") == 1.0 and limits.floor_us("trt") is None


def _table(rows):
    """An op table of one iteration from (op, group, time_us, bytes, flops) rows, plus its Idle row."""
    cols = {c: [] for c in optable.COLUMNS}
    for op, group, t, b, f in rows:
        for key, value in {"op": op, "node": "", "module": "", "module_type": "", "group": group,
                           "group_source": "op", "is_gemm": group == "GEMM", "time_us": t, "device_time_us": None,
                           "host_time_us": t, "input_shapes": "", "fused_ops": [], "bytes": b, "flops": f,
                           "work_source": "none" if b is None else "shapes", "layout": ""}.items():  # fmt: skip
            cols[key].append(value)
    optable.append_idle_row(cols, 10.0)
    total = sum(r[2] for r in rows) + 10.0
    cols["seq"] = list(range(len(rows) + 1))
    return optable.frame(cols, platform="box", device="cpu", backend="torch", model="m", batch_size=1,
                         seq_len=None, iteration=0, iteration_time_us=total)  # fmt: skip


def test_roofline_per_row(limits):
    df = _table(
        [
            ("aten::add", "Elementwise", 100.0, 1 << 20, 1e3),  # 2^20 B at 10 GB/s = 104.8576 us
            ("aten::mm", "GEMM", 50.0, 1 << 20, 1e8),  # 1e8 FLOP at 1e6 FLOP/us = 100 us > 104.86? no: memory
            ("aten::mm", "GEMM", 500.0, 1 << 10, 4e8),  # 400 us of compute; 1 KiB is 0.1 us
            ("aten::view", "Memory", 1.5, 0.0, 0.0),  # moves nothing, 1.5 us <= 2 x 1 us floor: overhead
            ("aten::nonzero", "Other", 20.0, None, None),  # no work model
            ("aten::mul", "Elementwise", 50.0, 1000.0, 250.0),  # 0.1 us at 10 GB/s: under the 1 us floor
        ]
    )
    roof = hz.roofline(df, limits, dtype="float32", overhead_factor=2.0)
    add, mm_mem, mm_cpu, view, unknown, tiny, idle = roof.itertuples()
    assert add.attainable_us == pytest.approx(104.8576) and add.bound == "memory"
    assert add.efficiency == pytest.approx(1.048576) and add.headroom_us == pytest.approx(-4.8576)
    assert mm_mem.attainable_us == pytest.approx(104.8576) and mm_mem.bound == "memory"
    assert mm_cpu.attainable_us == pytest.approx(400.0) and mm_cpu.bound == "compute"
    assert mm_cpu.intensity == pytest.approx(4e8 / 1024)
    assert view.attainable_us == 0.0 and view.bound == "overhead" and view.headroom_us == pytest.approx(1.5)
    assert math.isnan(unknown.attainable_us) and unknown.bound == ""
    assert tiny.attainable_us == pytest.approx(0.1) and tiny.bound == "overhead"  # 50 us, but not its data's
    assert math.isnan(idle.attainable_us)


def test_run_summary_keeps_ops_without_work_and_drops_idle(limits):
    df = _table(
        [
            ("aten::add", "Elementwise", 200.0, 1 << 20, 0.0),  # roof 104.8576 us
            ("aten::mm", "GEMM", 500.0, 1 << 10, 4e8),  # roof 400 us
            ("aten::nonzero", "Other", 20.0, None, None),  # no work: stays 20 us at the roof
        ]
    )
    s = hz.run_summary(hz.roofline(df, limits))
    assert s["iteration_ms"] == pytest.approx(0.730)  # 200 + 500 + 20 + 10 idle
    assert s["non_gemm_ms"] == pytest.approx(0.220) and s["idle_ms"] == pytest.approx(0.010)
    assert s["non_gemm_roof_ms"] == pytest.approx((104.8576 + 20) / 1e3)
    assert s["gemm_roof_ms"] == pytest.approx(0.400)
    assert s["coverage"] == pytest.approx(200 / 220)
    assert s["non_gemm_share_at_roof"] == pytest.approx(124.8576 / 524.8576)
    assert s["speedup_at_roof"] == pytest.approx(730 / 524.8576)
    assert s["headroom_ms_by_group"]["Elementwise"] == pytest.approx((200 - 104.8576) / 1e3)
    assert s["ops_without_work"] == {"aten::nonzero": pytest.approx(0.020)}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d.update(status="skipped", reason="no GPU"), "not measured"),
        (lambda d: d.update(memory_bandwidth=[{"kernel": "copy"}]), "memory_bandwidth\\[0\\]"),
        (lambda d: d["memory_bandwidth"][0].update(gb_per_s=float("nan")), "expected a positive number"),
        (lambda d: d.update(peak_flops={}), "no peak_flops"),
        (lambda d: d["peak_flops"]["float32"].update(flops_per_s=-1), "peak_flops.float32"),
    ],
)
def test_a_damaged_limits_file_is_one_line_naming_the_key(tmp_path, damage, message):
    data = json.loads(json.dumps(LIMITS))
    damage(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as err:
        hz.read_limits(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_spec_sheet_by_gpu_name():
    a100 = hz.spec_sheet_limits("x", "NVIDIA A100-PG509-200")
    assert a100.source == "spec-sheet: A100" and a100.dram_gb_per_s == pytest.approx(1555)
    assert a100.flops_per_us("float16") == pytest.approx(312e6)
    assert hz.spec_sheet_limits("x", "NVIDIA H100 80GB HBM3").dram_gb_per_s == pytest.approx(3350)
    assert hz.spec_sheet_limits("x", "Some Future GPU") is None


def test_cli_horizon_on_a_users_gpu_trace_uses_the_spec_sheet(tmp_path):
    trace = FIXTURES / "torch-profiler" / "hta_trace_diff_control_two_threads.json.gz"
    res = run_ngbench("horizon", str(trace), "--figure", str(tmp_path / "h.png"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "spec-sheet: A100" in res.stdout and (tmp_path / "h.png").is_file()
    table = pd.read_csv(tmp_path / "h.csv")
    assert len(table) and (table["bytes"] >= 0).all()


def test_cli_horizon_on_a_cpu_trace_asks_for_the_roofs(tmp_path):
    trace = FIXTURES / "inductor" / "detr_masked_softmax" / "trace.0.json.gz"
    res = run_ngbench("horizon", str(trace), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--limits" in res.stderr


@pytest.mark.slow
def test_measured_dram_roof_matches_numpy_and_places_a_streaming_op_and_a_tiny_op(tmp_path, quiet_machine):
    """The DRAM bandwidth the limits job measures (STREAM add), against numpy's own add of the same size on
    one thread (numpy's copy is libc memcpy, whose non-temporal stores skip the write-allocate reads every
    regular store pays: no match for a torch op, so add, which both write with regular stores);
    then a real profiled add streaming far more than the last-level cache lands near the DRAM roof, and a
    one-element add is overhead-bound."""
    import torch

    from ngbench.backends import torch_eager
    from ngbench.jobs import platform_limits as pl
    from ngbench.normalize import RunFiles, kineto_run

    llc = pl.last_level_cache_bytes("cpu") or (32 << 20)
    big = max(4 * llc, 256 << 20)  # working set of the streaming op: far past the LLC
    params = {
        "platform": "t", "device": "cpu", "dtypes": ["float32"], "backends": ["torch"],
        "limits": {"threads": 1, "min_working_set_kib": big >> 11, "max_working_set_mib": big >> 20,
                   "max_auto_working_set_mib": 4096, "min_time_ms": 50, "trials": 2, "max_gemm_n": 256},
    }  # fmt: skip
    record = pl.measure(params, out=str(tmp_path / "t.json"))
    limits = hz.read_limits(tmp_path / "t.json")
    ours = max(
        r["gb_per_s"] for r in record["memory_bandwidth"] if r["kernel"] == "add" and r["working_set_bytes"] >= big // 2
    )
    # independent: numpy's add, one thread, bytes counted as STREAM does (two arrays read, one written)
    n = big // 12
    a, b, c = np.ones(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.float32)
    np.add(a, b, out=c)
    best = min(_timed(lambda: np.add(a, b, out=c)) for _ in range(3))
    numpy_gbps = 3 * 4 * n / best / 1e9
    assert 0.75 < ours / numpy_gbps < 1.33, (ours, numpy_gbps)

    class Stream(torch.nn.Module):
        def forward(self, x):  # in place: a fresh 1 GiB output would time the kernel's page faults too
            return x.add_(1.0)

    class Tiny(torch.nn.Module):
        def forward(self, one):
            for _ in range(20):
                one = one + one
            return one

    labels = dict(platform="t", backend="torch", model="s", batch_size=1, seq_len=None)
    torch_eager.run(Stream(), {"x": torch.ones(big // 8)}, device="cpu", trace_dir=tmp_path / "r", warmup=1,
                    iterations=1, profile_iterations=2, threads=1)  # fmt: skip
    roof = hz.roofline(kineto_run(RunFiles.of_run(tmp_path / "r", "torch"), labels)[0], limits)
    stream = roof[roof["op"] == "aten::add_"]
    assert (stream["bytes"] == 2 * 4 * (big // 8) + 8).all()  # read x, write it back; 1.0: a 0-dim f64 tensor
    assert stream["bound"].eq("memory").all() and stream["efficiency"].between(0.5, 1.5).all(), stream["efficiency"]
    torch_eager.run(Tiny(), {"one": torch.ones(1)}, device="cpu", trace_dir=tmp_path / "t", warmup=2, iterations=1,
                    profile_iterations=2, threads=1)  # fmt: skip
    roof = hz.roofline(kineto_run(RunFiles.of_run(tmp_path / "t", "torch"), labels)[0], limits)
    tiny = roof[roof["op"] == "aten::add"]
    assert len(tiny) == 40 and (tiny["bytes"] == 4 + 4).all()  # one element read (twice, once), one written
    assert tiny["bound"].eq("overhead").mean() >= 0.9, (tiny["time_us"].tolist(), limits.floor_us("torch"))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@pytest.mark.slow
def test_cli_limits_measures_this_machine_and_horizon_reads_it(tmp_path, quiet_machine):
    out = tmp_path / "here.json"
    small = ["--max-working-set-mib", "1", "--max-gemm-n", "256", "--backends", "torch", "ort"]
    res = run_ngbench("limits", "--out", str(out), *small, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    record = json.loads(out.read_text())
    assert {r["kernel"] for r in record["memory_bandwidth"]} == {"copy", "scale", "add", "triad", "update"}
    assert record["peak_flops"]["float32"]["flops_per_s"] > 0 and record["dispatch_floor_us"]["torch"]["us"] > 0
    assert max(r["working_set_bytes"] for r in record["memory_bandwidth"]) <= 1 << 20
    assert set(record["dispatch_floor_us"]) == {"torch", "ort"}  # --backends: only these floors
    trace = FIXTURES / "inductor" / "detr_masked_softmax" / "trace.0.json.gz"
    res = run_ngbench("horizon", str(trace), "--limits", str(out), "--figure", str(tmp_path / "h.png"), cwd=tmp_path)
    assert res.returncode == 0 and "measured (here.json)" in res.stdout, res.stderr[-2000:]


def test_study_horizon_on_a_copied_in_gpu_run_uses_its_spec_sheet_and_says_so(tmp_path):
    """A GPU platform's run with no limits file (copied in, or another project's trace) is set against its
    GPU's spec sheet; a CPU platform without measured roofs is reported missing, never guessed."""
    from ngbench.figures import horizon as report

    df, info = normalized("hta_trace_diff_control_two_threads.json.gz", platform="a100", model="hta", batch_size=1)
    gpu = tmp_path / "gpu.parquet"
    run = {"status": "ok", "platform": "a100", "backend": "torch", "model": "hta", "batch_size": 1}
    optable.write(df, gpu, run={**run, "environment": {"torch": {"gpu": "NVIDIA A100-PG509-200"}}})
    cpu = tmp_path / "cpu.parquet"
    optable.write(df.assign(platform="laptop"), cpu, run={"status": "ok", "platform": "laptop", "backend": "torch",
                                                          "model": "hta", "batch_size": 1})  # fmt: skip
    runs, inst = report.collect([gpu, cpu], {})
    by = runs.set_index("platform")
    assert by.loc["a100", "status"] == "ok" and by.loc["a100", "limits"] == "spec-sheet: A100"
    assert by.loc["laptop", "status"] == "missing" and "no roofs" in by.loc["laptop", "reason"]
    assert set(inst["platform"]) == {"a100"} and (inst["work_source"] == "shapes").all()
    # every instance's roof from the sheet: bytes / 1555 GB/s at the least
    assert (inst["attainable_us"] >= inst["bytes"] / 1555e3 - 1e-9).all()


def test_fusion_dividend_pairs_each_fusing_backend_with_its_unfused_runtime(tmp_path):
    from ngbench.figures import horizon as report

    def run(backend, nbytes, ms):
        return {"platform": "cpu", "backend": backend, "model": "m", "batch_size": 1, "status": "ok",
                "non_gemm_bytes": nbytes, "non_gemm_ms": ms, "non_gemm_roof_ms": ms / 10}  # fmt: skip

    runs = pd.DataFrame([run("torch", 1000.0, 10.0), run("ort", 4000.0, 20.0), run("ort-opt", 1000.0, 8.0),
                         run("inductor", 250.0, 5.0)])  # fmt: skip
    got = report.fusion_dividend(runs).set_index("backend")
    assert got.loc["ort-opt", "baseline"] == "ort" and got.loc["ort-opt", "bytes_removed_pct"] == pytest.approx(75.0)
    assert got.loc["inductor", "baseline"] == "torch" and got.loc["inductor", "bytes_removed_pct"] == pytest.approx(
        75.0
    )
    assert catalog.unfused_baseline("trt") == "torch" and set(got.index) == {"ort-opt", "inductor"}
    for column in report.RUN_COLUMNS:
        if column not in runs:
            runs[column] = "" if column in ("headroom_ms_by_group", "bound_ms", "ops_without_work", "reason") else 1.0
    out = {k: tmp_path / f"{k}.out" for k in ("md", "csv", "runs_csv", "fusion_csv")}
    report.write(runs, pd.DataFrame(columns=report.TOP_COLUMNS), **out,
                 instances_out=tmp_path / "i.parquet")  # fmt: skip
    assert "| cpu | m | 1 | ort-opt (ort) | 0.0 | 0.0 | 75% | 20.00 | 8.00 |" in out["md"].read_text()
