"""Check the GPU invariants of a study's results (after config/gpu-smoke.yaml, or any study with a CUDA
platform):

    snakemake --cores all --configfile config/gpu-smoke.yaml && python benchmarks/gpu_check.py

For every run on a CUDA platform (``results/ops/<platform>/<backend>/<model>/bs<bs>.parquet`` and the run
record embedded in it), and every energy record of one:

* device activity present: Kineto runs saw kernels, ORT runs saw Kernel events or are marked host-timed,
  TensorRT runs have per-layer device times;
* every kernel joined to an op (Kineto: no device time without a launching op);
* closure per iteration (``table.check``: op rows + Idle = the iteration, finite, not negative);
* the profiled iteration within ``--latency-tolerance`` (15%) of the unprofiled latency (catches profiler
  clock drift across many short sessions and iteration windows that are not the iteration);
* TorchInductor: every generated (Triton) kernel attributed to its graph's ops through provenance;
* energy finite and above idle, the counter's update interval measured, each block many updates long.

Runs that were skipped (no GPU, a library missing) or failed are listed with their reasons. Exit code 0
when every check on every run that ran passes (or when no GPU run exists: then it says why), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ngbench import table as optable  # noqa: E402
from ngbench.errors import InputError  # noqa: E402

KINETO_BACKENDS = ("torch", "inductor", "torch-int8")


def check_run(path: Path, tolerance: float) -> tuple[str, list[str], list[str]]:
    """(status, failed checks, passed checks) of one CUDA run's op table."""
    meta = optable.read_run_metadata(path)
    status = meta.get("status", "ok")
    if status != "ok":
        return f"{status}: {meta.get('reason', '')}", [], []
    failed, passed = [], []

    def expect(ok: bool, what: str) -> None:
        (passed if ok else failed).append(what)

    try:
        df = optable.read(path)  # runs table.check: closure, finite and non-negative times
        optable.check(df, source=str(path))
        expect(True, "closure per iteration")
    except InputError as exc:
        return "ok", [f"closure: {exc}"], passed
    info = meta.get("normalize") or {}
    backend = meta.get("backend")
    if backend in KINETO_BACKENDS:
        expect(bool(info.get("device_activity")), "device activity in the trace")
        unowned = info.get("device_time_without_launching_op_us", 0.0)
        total = info.get("device_time_us") or 0.0
        expect(total > 0 and unowned <= 0.01 * total, f"kernels joined to ops ({unowned:.0f} of {total:.0f} us not)")
    elif backend in ("ort", "ort-opt"):
        timed = bool(info.get("device_activity")) or bool(info.get("host_timed_on_device"))
        expect(timed, "ORT device time, or the run marked host-timed")
        if info.get("host_timed_on_device"):
            passed.append("note: ORT times are host-side (no Kernel events from this onnxruntime-gpu build)")
    elif backend == "trt":
        expect(df.loc[df.group != "Idle", "device_time_us"].fillna(0).gt(0).any(), "TensorRT per-layer device times")
    run = meta.get("run") or {}
    latency = (run.get("latency") or {}).get("median_ms")
    iteration = df.groupby("iteration").iteration_time_us.first().median() / 1e3 if len(df) else None
    if backend != "trt" and latency and iteration:  # TensorRT's layer-by-layer sum is not an iteration
        ratio = iteration / latency
        expect(abs(ratio - 1) <= tolerance, f"profiled iteration {iteration:.2f} ms vs unprofiled {latency:.2f} ms")
    if backend == "inductor":
        ind = info.get("inductor") or {}
        done, kernels = ind.get("kernels_with_provenance"), ind.get("kernels", 0)
        expect(kernels > 0 and done == kernels, f"Inductor kernels attributed ({done} of {kernels})")
    return "ok", failed, passed


def check_energy(path: Path) -> tuple[str, list[str], list[str]]:
    record = json.loads(path.read_text())
    gpu = record.get("gpu") or {}
    if record.get("status") != "ok" or gpu.get("status") != "ok":
        return f"{gpu.get('status', record.get('status'))}: {gpu.get('reason') or record.get('reason', '')}", [], []
    failed, passed = [], []
    above = gpu.get("joules_per_inference_above_idle_median")
    (passed if above is not None and math.isfinite(above) and above > 0 else failed).append(
        f"energy above idle {above} J/inference"
    )
    updates = gpu.get("counter_updates_per_block")
    (passed if updates is not None and updates >= 10 else failed).append(f"{updates} counter updates per block")
    return "ok", failed, passed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=REPO / "results")
    ap.add_argument("--latency-tolerance", type=float, default=0.15)
    args = ap.parse_args()
    runs = sorted(p for p in (args.results / "ops").glob("*/*/*/bs*.parquet"))
    cuda_runs = [p for p in runs if optable.read_run_metadata(p).get("device", "").startswith("cuda")]
    energy = [
        p for p in sorted((args.results / "energy").glob("*/*/bs*.json"))
        if json.loads(p.read_text()).get("device", "").startswith("cuda")
    ]  # fmt: skip
    if not cuda_runs and not energy:
        print(f"no runs on a CUDA platform under {args.results}: nothing to check (is a cuda platform configured?)")
        return 0
    ran, bad = 0, 0
    for path, (status, failed, passed) in [(p, check_run(p, args.latency_tolerance)) for p in cuda_runs] + [
        (p, check_energy(p)) for p in energy
    ]:
        label = path.relative_to(args.results)
        if status != "ok":
            print(f"{label}: {status}")
            continue
        ran += 1
        bad += bool(failed)
        print(f"{label}: {'FAILED' if failed else 'ok'}")
        for line in failed:
            print(f"    FAIL {line}")
        for line in passed:
            print(f"    ok   {line}")
    if not ran:
        print("every CUDA run was skipped or failed (reasons above): no GPU invariant could be checked")
        return 0
    print(f"\n{ran - bad} of {ran} GPU runs pass every check")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
