"""Runs you can trust: each measurement judged against stated bounds, disturbed ones measured again and the
rest marked, never dropped."""

import subprocess
import sys
import time

import pandas as pd
import pytest

from ngbench.analysis import failures
from ngbench.backends.load import measured_phase
from ngbench.jobs import trust

BOUNDS = {"min_overhead_ratio": 0.8, "max_overhead_ratio": 3.0, "max_spread": 1.5, "min_judged_ms": 5.0,
          "max_other_cpu_cores": 0.5, "retries": 2}  # fmt: skip


def record(latency, profiled, others=0.0):
    lat, prof = sorted(latency), sorted(profiled)
    return {
        "latency_samples_ms": latency,
        "profiled_samples_ms": profiled,
        "latency": {"median_ms": lat[len(lat) // 2]},
        "profiler_overhead_ratio": prof[len(prof) // 2] / lat[len(lat) // 2],
        "load": {"unprofiled": {"others_cpu_cores": others}, "profiled": {"others_cpu_cores": 0.0}},
    }


def test_the_issues_examples_are_disturbed():
    # unprofiled 2.5 s against 0.94 s profiled: ratio 0.38
    assert "profiled/unprofiled latency 0.38" in trust.judge(record([2500] * 3, [940] * 3), BOUNDS)[0]
    # an iteration 3x its siblings
    reasons = trust.judge(record([100, 100, 300, 100], [110, 110, 110]), BOUNDS)
    assert any("unprofiled iteration 3.0x the median" in r for r in reasons)
    # another process busy on 1.2 cores while the latency was measured
    assert any(
        "1.20 cores during the unprofiled phase" in r for r in trust.judge(record([100] * 3, [110] * 3, 1.2), BOUNDS)
    )
    assert trust.judge(record([100, 101, 99], [110, 112, 111]), BOUNDS) == []
    # sub-5 ms iterations: jitter, not judged by spread or ratio
    assert trust.judge(record([1, 1, 3], [0.2, 0.2, 0.2]), BOUNDS) == []


def test_a_disturbed_run_is_measured_again_then_marked():
    attempts = iter([record([100, 100, 300], [110] * 3), record([100] * 3, [110] * 3)])
    resets = []
    rec, verdict = trust.measure(lambda: next(attempts), BOUNDS, "test", reset=lambda: resets.append(1))
    assert verdict["status"] == "ok" and verdict["attempts"] == 2 and len(verdict["earlier_attempts"]) == 1
    assert resets == [1]  # what the first attempt wrote was cleared
    always = record([2500] * 3, [940] * 3)
    rec, verdict = trust.measure(lambda: always, {**BOUNDS, "retries": 1}, "test")
    assert verdict["status"] == "disturbed" and verdict["attempts"] == 2 and verdict["reasons"]


def test_other_processes_cpu_is_measured(quiet_machine):
    """The phase's "other processes" figure rises by what a spinner we start really used (its own CPU time,
    read from the OS), over a baseline phase without it: not just any load on a busy machine."""
    import psutil

    quiet: dict = {}
    with measured_phase(quiet, "phase"):
        time.sleep(1.0)
    idle_cores = quiet["phase"]["cpu_count"] - quiet["phase"]["others_cpu_cores"]
    if idle_cores < 1.5:  # a spinner could only displace other work: the rise would mean nothing
        pytest.skip(f"this machine is busy ({idle_cores:.1f} idle cores): no room to measure a spinner")
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        time.sleep(0.5)
        proc = psutil.Process(spinner.pid)
        before = sum(proc.cpu_times()[:2])
        load: dict = {}
        with measured_phase(load, "phase"):
            time.sleep(1.5)  # we idle; the spinner keeps one core busy
        spun = (sum(proc.cpu_times()[:2]) - before) / load["phase"]["wall_s"]
    finally:
        spinner.wait()
    assert spun > 0.5  # the spinner ran (else the machine is too loaded for this check to mean anything)
    rise = load["phase"]["others_cpu_cores"] - quiet["phase"]["others_cpu_cores"]
    assert rise == pytest.approx(spun, abs=0.3), (rise, spun, quiet, load)
    assert load["phase"]["own_cpu_cores"] < 0.3
    assert load["phase"]["wall_s"] == pytest.approx(1.5, abs=0.3)


def test_trust_csv_lists_disturbed_runs_and_batch_inversions():
    base = {"platform": "cpu", "backend": "torch", "status": "ok", "level": "group", "group": "GEMM"}
    shares = pd.DataFrame([
        {**base, "model": "a", "batch_size": 1, "latency_ms_median": 50.0, "trust": "ok", "trust_reasons": ""},
        {**base, "model": "a", "batch_size": 2, "latency_ms_median": 40.0, "trust": "ok", "trust_reasons": ""},
        {**base, "model": "b", "batch_size": 1, "latency_ms_median": 5.0, "trust": "disturbed",
         "trust_reasons": "profiled/unprofiled latency 0.38 outside [0.8, 3.0]"},
    ])  # fmt: skip
    table = failures.untrusted(shares).set_index(["model", "check"])
    assert table.loc[("a", "batch order"), "reason"] == "bs1 took 50.0 ms, longer than bs2's 40.0 ms"
    assert "0.38" in table.loc[("b", "run"), "reason"] and len(table) == 2
