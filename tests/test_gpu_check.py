"""benchmarks/gpu_check.py on results made from a real A100 trace (no GPU needed to check its invariants)."""

import json
import subprocess
import sys

import pandas as pd
from conftest import REPO

from ngbench import table as optable
from ngbench.traces import kineto

CHECK = REPO / "benchmarks" / "gpu_check.py"


def _run(results):
    return subprocess.run([sys.executable, str(CHECK), "--results", str(results)], capture_output=True, text=True)


def _write_cuda_run(results, fixtures_dir, model, latency_ms):
    df, info = kineto.normalize(
        fixtures_dir / "torch-profiler" / "a100_alexnet.json.gz", iteration_marker=r"\|measure\|forward\]$"
    )
    meta = {"status": "ok", "device": "cuda", "backend": "torch", "platform": "gpu", "model": model,
            "batch_size": 1, "normalize": info, "run": {"latency": {"median_ms": latency_ms}}}  # fmt: skip
    optable.write(df, results / "ops" / "gpu" / "torch" / model / "bs1.parquet", run=meta)


def test_checks_pass_and_fail_on_a_real_a100_trace(tmp_path, fixtures_dir):
    # the AlexNet iteration is 36.356 ms long (the inner measure range): 36 ms unprofiled is within 15%,
    # 20 ms is not (what profiler clock drift or a stretched window would look like)
    _write_cuda_run(tmp_path, fixtures_dir, "alexnet", 36.0)
    res = _run(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 of 1 GPU runs pass every check" in res.stdout and "kernels joined to ops" in res.stdout
    _write_cuda_run(tmp_path, fixtures_dir, "alexnet-drift", 20.0)
    res = _run(tmp_path)
    assert res.returncode == 1 and "FAIL profiled iteration 36.36 ms vs unprofiled 20.00 ms" in res.stdout


def test_skipped_gpu_platform_is_reported_not_failed(tmp_path):
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in optable.COLUMNS}).astype(optable.INT_COLUMNS)
    meta = {"status": "skipped", "reason": "device 'cuda': no CUDA GPU is visible on this machine", "device": "cuda"}
    optable.write(empty, tmp_path / "ops" / "gpu" / "torch" / "swin-t" / "bs1.parquet", run=meta)
    (tmp_path / "energy" / "gpu" / "swin-t").mkdir(parents=True)
    (tmp_path / "energy" / "gpu" / "swin-t" / "bs1.json").write_text(
        json.dumps({"status": "ok", "device": "cuda", "gpu": {"status": "n/a", "reason": "NVML: Driver Not Loaded"}})
    )
    res = _run(tmp_path)
    assert res.returncode == 0
    assert (
        "skipped: device 'cuda': no CUDA GPU is visible" in res.stdout and "n/a: NVML: Driver Not Loaded" in res.stdout
    )
    assert "no GPU invariant could be checked" in res.stdout
