"""benchmarks/gpu_check.py on results made from real GPU traces (HTA's A100 trace: 6 ProfilerStep
iterations, two threads launching kernels), with planted faults: no GPU needed to check its verdicts."""

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import FIXTURES, REPO, normalized

from ngbench import table as optable
from ngbench.traces import kineto

CHECK = REPO / "benchmarks" / "gpu_check.py"
HTA = "hta_trace_diff_control_two_threads.json.gz"


def _run(results):
    return subprocess.run([sys.executable, str(CHECK), "--results", str(results)], capture_output=True, text=True)


def _write_cuda_run(results, trace, model="hta", latency_ms=None, tamper=None):
    """Results of one CUDA run as the workflow lays them out: the raw trace and the op table from it."""
    trace_dir = results / "traces" / "gpu" / "torch" / model / "bs1"
    trace_dir.mkdir(parents=True)
    shutil.copy(trace, trace_dir / "trace.0.json.gz")
    df, info = normalized(Path(trace).name) if Path(trace).parent == FIXTURES / "torch-profiler" else (None, None)
    if df is None:
        df, info = kineto.normalize(trace_dir / "trace.0.json.gz")
    info["trace"] = str(trace_dir / "trace.0.json.gz")
    if tamper:
        tamper(df)
    iteration = df.groupby("iteration").iteration_time_us.first().median() / 1e3
    meta = {"status": "ok", "device": "cuda", "backend": "torch", "platform": "gpu", "model": model,
            "batch_size": 1, "normalize": info, "run": {"latency": {"median_ms": latency_ms or iteration}}}  # fmt: skip
    optable.write(df, results / "ops" / "gpu" / "torch" / model / "bs1.parquet", run=meta)


def _failed_record(results, model, status, reason):
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in optable.COLUMNS}).astype(optable.INT_COLUMNS)
    meta = {"status": status, "reason": reason, "device": "cuda", "backend": "inductor"}
    optable.write(empty, results / "ops" / "gpu" / "inductor" / model / "bs1.parquet", run=meta)


def test_a_real_gpu_run_passes_every_check(tmp_path, fixtures_dir):
    _write_cuda_run(tmp_path, fixtures_dir / "torch-profiler" / HTA)
    res = _run(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "ops/gpu/torch/hta/bs1.parquet: ran, every check passes" in out
    for check in ("device busy = kernel union per iteration", "device time outside the iterations",
                  "kernels joined to ops", "closure per iteration"):  # fmt: skip
        assert f"ok   {check}" in out, check
    assert "1 ran (0 with failed checks), 0 skipped, 0 failed" in out and out.rstrip().endswith("passed")


def test_latency_far_from_the_profiled_iteration_fails(tmp_path, fixtures_dir):
    _write_cuda_run(tmp_path, fixtures_dir / "torch-profiler" / HTA, latency_ms=20.0)
    res = _run(tmp_path)
    assert res.returncode == 1 and "FAIL profiled iteration" in res.stdout and "vs unprofiled 20.00 ms" in res.stdout


def test_device_work_sliding_out_of_the_iterations_is_drift(tmp_path, fixtures_dir):
    """Planted drift: every device event 40 ms later (the device clock running ahead of the host's)."""
    data = json.loads(gzip.decompress((fixtures_dir / "torch-profiler" / HTA).read_bytes()))
    for e in data["traceEvents"]:
        if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            e["ts"] = e["ts"] + 40_000
    drifted = tmp_path / "drifted.json.gz"
    drifted.write_bytes(gzip.compress(json.dumps(data).encode()))
    _write_cuda_run(tmp_path / "r", drifted)
    res = _run(tmp_path / "r")
    assert res.returncode == 1 and "FAIL device time outside the iterations" in res.stdout


def test_op_times_that_are_not_the_kernel_union_fail(tmp_path, fixtures_dir):
    """Planted bug: a normalizer that dropped a row's device time into Idle (closure still holds)."""

    def drop_time(df):
        row = df[(df["iteration"] == df["iteration"].min()) & (df["group"] != "Idle")]["time_us"].idxmax()
        idle = df[(df["iteration"] == df["iteration"].min()) & (df["group"] == "Idle")].index[0]
        df.loc[idle, "time_us"] += df.loc[row, "time_us"]
        df.loc[row, "time_us"] = 0.0

    _write_cuda_run(tmp_path, fixtures_dir / "torch-profiler" / HTA, tamper=drop_time)
    res = _run(tmp_path)
    assert res.returncode == 1 and "FAIL device busy = kernel union" in res.stdout


def test_a_failed_run_fails_the_smoke_and_is_named(tmp_path, fixtures_dir):
    _write_cuda_run(tmp_path, fixtures_dir / "torch-profiler" / HTA)
    _failed_record(tmp_path, "swin-t", "failed", "RuntimeError: CUDA error: out of memory")
    res = _run(tmp_path)
    assert res.returncode == 1
    assert "ops/gpu/inductor/swin-t/bs1.parquet: FAILED: RuntimeError: CUDA error: out of memory" in res.stdout
    assert "1 ran (0 with failed checks), 0 skipped, 1 failed" in res.stdout


def test_a_smoke_where_every_gpu_run_was_skipped_has_not_passed(tmp_path):
    _failed_record(tmp_path, "swin-t", "skipped", "device 'cuda': no CUDA GPU is visible on this machine")
    (tmp_path / "energy" / "gpu" / "swin-t").mkdir(parents=True)
    (tmp_path / "energy" / "gpu" / "swin-t" / "bs1.json").write_text(
        json.dumps({"status": "ok", "device": "cuda", "gpu": {"status": "n/a", "reason": "NVML: Driver Not Loaded"}})
    )
    res = _run(tmp_path)
    assert res.returncode == 1
    assert "skipped: device 'cuda': no CUDA GPU is visible" in res.stdout and "NVML: Driver Not Loaded" in res.stdout
    assert "no GPU run ran: nothing was checked" in res.stdout


def test_no_cuda_run_at_all_has_not_passed(tmp_path):
    res = _run(tmp_path)
    assert res.returncode == 1 and "nothing was checked" in res.stdout


def _energy(results, **gpu):
    path = results / "energy" / "gpu" / "swin-t" / "bs1.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": "ok", "device": "cuda", "gpu": {"status": "ok", **gpu}}))


def test_energy_needs_a_measured_counter_interval_and_enough_updates_per_block(tmp_path, fixtures_dir):
    _write_cuda_run(tmp_path, fixtures_dir / "torch-profiler" / HTA)
    _energy(tmp_path, joules_per_inference_above_idle_median=0.4, counter_resolution={"update_interval_s": 0.1},
            counter_updates_per_block=25.0)  # fmt: skip
    res = _run(tmp_path)
    assert res.returncode == 0 and "ok   25.0 counter updates per block" in res.stdout, res.stdout
    _energy(tmp_path, joules_per_inference_above_idle_median=0.4, counter_resolution={"update_interval_s": 0.1},
            counter_updates_per_block=9.6)  # fmt: skip
    res = _run(tmp_path)
    assert res.returncode == 1 and "FAIL 9.6 counter updates per block (at least 10)" in res.stdout
    _energy(
        tmp_path, joules_per_inference_above_idle_median=0.4, counter_resolution=None, counter_updates_per_block=None
    )
    res = _run(tmp_path)
    assert res.returncode == 1 and "FAIL counter update interval measured (None s)" in res.stdout
