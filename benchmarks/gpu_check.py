"""Check the GPU invariants of a study's results (after config/gpu-smoke.yaml, or any study with a CUDA
platform):

    snakemake --cores all --configfile config/gpu-smoke.yaml gpu_smoke && python benchmarks/gpu_check.py

Its verdict, per run on a CUDA platform (``results/ops/<platform>/<backend>/<model>/bs<bs>.parquet`` and the
run record embedded in it) and per energy record of one: **ran**, **skipped** (why) or **failed** (why).
For each run that ran:

* closure per iteration (``table.check``: op rows + Idle = the iteration, finite, not negative);
* Kineto runs: device activity present; every kernel joined to an op; **device busy = kernel union**: per
  iteration, the op rows' time equals the union of the kernel/memcpy/memset intervals inside the
  ``ProfilerStep`` window, recomputed here from the raw trace by a reader of its own; **device time
  outside iterations** (what profiler clock drift looks like: device work sliding out of the windows, the
  host clock's steps staying put) at most 1% of the device time;
* the profiled iteration within ``--latency-tolerance`` (15%) of the unprofiled latency (host clocks: a
  window that is not the iteration);
* ORT: Kernel events, or the run marked host-timed; TensorRT: per-layer device times;
* TorchInductor: every generated kernel attributed to its graph's ops through provenance;
* energy: finite and above idle, the counter's update interval measured, at least 10 updates per block.

Exit code 1 when any run failed, any check failed, or nothing was checked (a smoke that checked nothing has
not passed); 0 otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ngbench import catalog, names  # noqa: E402
from ngbench import table as optable  # noqa: E402
from ngbench.errors import InputError  # noqa: E402

OUTSIDE_MAX = 0.01  # device time outside every iteration window, as a share of the device time
MIN_UPDATES = 10  # energy counter updates per measured block
_STEP = re.compile(r"^ProfilerStep#(\d+)$")
_DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}
_HOST_STEP_CATS = {"cpu_op", "user_annotation"}  # CUDA traces repeat the step as gpu_user_annotation


def kernel_union_per_step(trace_files: list[Path]) -> dict[int, float]:
    """Per ``ProfilerStep#N`` (host ranges only), the union of the device intervals inside it, in us: an
    independent reading of the raw traces (plain json, no normalizer code)."""
    out: dict[int, float] = {}
    for path in trace_files:
        raw = path.read_bytes()
        events = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        events = events["traceEvents"] if isinstance(events, dict) else events
        steps, device = [], []
        for e in events:
            if e.get("ph") != "X":
                continue
            m = _STEP.match(str(e.get("name", "")))
            if m and e.get("cat") in _HOST_STEP_CATS:
                steps.append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), int(m.group(1))))
            elif e.get("cat") in _DEVICE_CATS:
                device.append((float(e["ts"]), float(e["ts"]) + float(e["dur"])))
        device.sort()
        for start, end, number in steps:
            busy, reach = 0.0, start
            for s, e in device:
                s, e = max(s, reach), min(e, end)
                if e > s:
                    busy += e - s
                    reach = e
            out[number] = busy
    return out


def check_run(path: Path, results: Path, tolerance: float) -> tuple[str, list[str], list[str]]:
    """(status: ran / skipped: why / failed: why, failed checks, passed checks) of one CUDA run."""
    meta = optable.read_run_metadata(path)
    status = meta.get("status", names.STATUS_OK)
    if status != names.STATUS_OK:
        return f"{status}: {meta.get('reason', '')}", [], []
    failed, passed = [], []

    def expect(ok: bool, what: str) -> None:
        (passed if ok else failed).append(what)

    try:
        df = optable.read(path)
        optable.check(df, source=str(path))
        expect(True, "closure per iteration")
    except InputError as exc:
        return "ran", [f"closure: {exc}"], passed
    info = meta.get("normalize") or {}
    backend = str(meta.get("backend"))
    trace_format = catalog.get(backend).trace_format if backend in catalog.BACKENDS else ""
    if trace_format == "kineto":
        total = info.get("device_time_us") or 0.0
        expect(bool(info.get("device_activity")) and total > 0, "device activity in the trace")
        unowned = info.get("device_time_without_launching_op_us", 0.0)
        expect(total > 0 and unowned <= 0.01 * total, f"kernels joined to ops ({unowned:.0f} of {total:.0f} us not)")
        outside = info.get("device_time_outside_iterations_us")
        expect(
            outside is not None and total > 0 and outside <= OUTSIDE_MAX * total,
            f"device time outside the iterations {outside if outside is None else round(outside)} of {total:.0f} us "
            f"(at most {OUTSIDE_MAX:.0%}: more is profiler clock drift)",
        )
        trace_dir = results / "traces" / path.parent.parent.parent.name / backend / path.parent.name / path.stem
        traces = sorted(trace_dir.glob(names.KINETO_TRACE_GLOB))
        if not traces:
            failed.append(f"device busy = kernel union: no raw trace under {trace_dir} to check against")
        else:
            union = kernel_union_per_step(traces)
            busy = df[df["group"] != "Idle"].groupby("iteration")["time_us"].sum()
            worst = max((abs(busy.get(i, 0.0) - u) for i, u in union.items()), default=math.inf)
            expect(worst <= 0.01 + 1e-6 * max(union.values(), default=0),
                   f"device busy = kernel union per iteration (largest difference {worst:.3f} us)")  # fmt: skip
    elif trace_format == "ort":
        timed = bool(info.get("device_activity")) or bool(info.get("host_timed_on_device"))
        expect(timed, "ORT device time, or the run marked host-timed")
        if info.get("host_timed_on_device"):
            passed.append("note: ORT times are host-side (no Kernel events from this onnxruntime-gpu build)")
    elif trace_format == "trt":
        expect(df.loc[df.group != "Idle", "device_time_us"].fillna(0).gt(0).any(), "TensorRT per-layer device times")
    run = meta.get("run") or {}
    latency = (run.get("latency") or {}).get("median_ms")
    iteration = df.groupby("iteration").iteration_time_us.first().median() / 1e3 if len(df) else None
    if trace_format != "trt" and latency and iteration:  # TensorRT's layer-by-layer sum is not an iteration
        ratio = iteration / latency
        expect(abs(ratio - 1) <= tolerance, f"profiled iteration {iteration:.2f} ms vs unprofiled {latency:.2f} ms")
    ind = info.get("inductor")  # the normalizer's Inductor attribution, where it ran
    if ind is not None:
        done, kernels = ind.get("kernels_with_provenance"), ind.get("kernels", 0)
        expect(kernels > 0 and done == kernels, f"Inductor kernels attributed ({done} of {kernels})")
    return "ran", failed, passed


def check_energy(path: Path) -> tuple[str, list[str], list[str]]:
    record = json.loads(path.read_text())
    gpu = record.get("gpu") or {}
    if record.get("status") == names.STATUS_FAILED:
        return f"failed: {record.get('reason', '')}", [], []
    if record.get("status") != names.STATUS_OK or gpu.get("status") != names.STATUS_OK:
        return (
            f"skipped: {gpu.get('status', record.get('status'))}: {gpu.get('reason') or record.get('reason', '')}",
            [],
            [],
        )
    failed, passed = [], []
    above = gpu.get("joules_per_inference_above_idle_median")
    (passed if above is not None and math.isfinite(above) and above > 0 else failed).append(
        f"energy above idle {above} J/inference"
    )
    interval = (gpu.get("counter_resolution") or {}).get("update_interval_s")
    (passed if interval else failed).append(f"counter update interval measured ({interval} s)")
    updates = gpu.get("counter_updates_per_block")
    (passed if updates is not None and updates >= MIN_UPDATES else failed).append(
        f"{updates if updates is None else round(updates, 1)} counter updates per block (at least {MIN_UPDATES})"
    )
    return "ran", failed, passed


def verdict(results: Path, tolerance: float) -> tuple[int, list[str]]:
    """(exit code, report lines) over every CUDA run and energy record under ``results``."""
    runs = sorted(p for p in (results / "ops").glob("*/*/*/bs*.parquet"))
    cuda_runs = [p for p in runs if names.is_cuda(optable.read_run_metadata(p).get("device", ""))]
    energy = [
        p for p in sorted((results / "energy").glob("*/*/bs*.json"))
        if names.is_cuda(json.loads(p.read_text()).get("device", ""))
    ]  # fmt: skip
    lines, counts = [], {"ran": 0, "skipped": 0, "failed": 0, "broken": 0}
    checks = [(p, check_run(p, results, tolerance)) for p in cuda_runs] + [(p, check_energy(p)) for p in energy]
    for path, (status, failed, passed) in checks:
        label = path.relative_to(results)
        kind = status.split(":")[0]
        if kind != "ran":
            counts["failed" if kind == names.STATUS_FAILED else "skipped"] += 1
            shown = f"FAILED:{status.partition(':')[2]}" if kind == names.STATUS_FAILED else status
            lines.append(f"{label}: {shown}")
            continue
        counts["ran"] += 1
        counts["broken"] += bool(failed)
        lines.append(f"{label}: ran, {'FAILED CHECKS' if failed else 'every check passes'}")
        lines += [f"    FAIL {line}" for line in failed] + [f"    ok   {line}" for line in passed]
    summary = (f"{len(checks)} GPU runs and energy records: {counts['ran']} ran ({counts['broken']} with failed "
               f"checks), {counts['skipped']} skipped, {counts['failed']} failed")  # fmt: skip
    if not checks:
        return 1, [f"no run on a CUDA platform under {results}: nothing was checked, so the smoke has not passed"]
    if not counts["ran"]:
        return 1, [*lines, "", summary, "no GPU run ran: nothing was checked, so the smoke has not passed"]
    bad = counts["failed"] or counts["broken"]
    return (1 if bad else 0), [*lines, "", summary, "FAILED" if bad else "passed"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=REPO / "results")
    ap.add_argument("--latency-tolerance", type=float, default=0.15)
    args = ap.parse_args()
    code, lines = verdict(args.results, args.latency_tolerance)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
