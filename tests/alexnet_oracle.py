"""The oracle of ``test_kineto_fixtures.py``'s AlexNet numbers: a brute-force reading of HTA's
``a100_alexnet.json.gz`` that shares nothing with ngbench's normalizer.

- Kernels join their launches through the trace's ``ac2g`` flow events: an ``s`` event at a runtime call's
  timestamp on its thread and an ``f`` event (same ``id``) at the kernel's (or memset's, memcpy's)
  timestamp; ``args.correlation`` is not read.
- Top-level ops are the ``cpu_op`` ranges on the launching thread inside the inner ``|measure|forward]``
  range (the outer one, 79,678 us, encloses it and is a phase) that no other ``cpu_op`` contains: found by
  O(n^2) interval containment.
- Times are counted as sets of integer microseconds (this trace's timestamps are integers): an op's device
  time is how many distinct microseconds its kernels, memsets and memcpys cover; the busy time is the same
  over every kernel, memcpy and memset inside the iteration.

Run it to print the numbers: ``python tests/alexnet_oracle.py``.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

TRACE = Path(__file__).resolve().parent / "fixtures" / "torch-profiler" / "a100_alexnet.json.gz"
INNER = "|measure|forward]"


def _micros(start: int, end: int) -> set[int]:
    return set(range(int(start), int(end)))


def read(path: Path = TRACE) -> dict:
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    measure = sorted(
        (e for e in events if e.get("cat") == "user_annotation" and e["name"].endswith(INNER)), key=lambda e: e["dur"]
    )[0]  # the innermost (shortest) measure range
    lo, hi = measure["ts"], measure["ts"] + measure["dur"]

    flows_s = {e["id"]: (e["tid"], e["ts"]) for e in events if e.get("cat") == "ac2g" and e["ph"] == "s"}
    flows_f = {e["id"]: e["ts"] for e in events if e.get("cat") == "ac2g" and e["ph"] == "f"}
    runtime = {(e["tid"], e["ts"]): e for e in events if e.get("cat") == "cuda_runtime" and e["ph"] == "X"}
    device = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and e["ph"] == "X"]
    launch_of = {}  # device activity's ts -> its runtime call
    for flow_id, (tid, ts) in flows_s.items():
        if flow_id in flows_f and (tid, ts) in runtime:
            launch_of[flows_f[flow_id]] = runtime[(tid, ts)]

    ops = [e for e in events if e.get("cat") == "cpu_op" and e["ph"] == "X" and lo <= e["ts"] < hi]
    top = [
        op
        for op in ops
        if not any(
            other is not op
            and other["tid"] == op["tid"]
            and other["ts"] <= op["ts"]
            and op["ts"] + op["dur"] <= other["ts"] + other["dur"]
            and (other["dur"] > op["dur"] or other["ts"] < op["ts"])
            for other in ops
        )
    ]
    per_op: dict[int, set[int]] = defaultdict(set)  # top-level op (by position) -> its covered microseconds
    for kernel in device:
        launch = launch_of.get(kernel["ts"])
        if launch is None:
            continue
        tid, ts = launch["tid"], launch["ts"]
        owner = [i for i, op in enumerate(top) if op["tid"] == tid and op["ts"] <= ts < op["ts"] + op["dur"]]
        if owner:
            per_op[owner[0]] |= _micros(kernel["ts"], kernel["ts"] + kernel["dur"])
    by_name: dict[str, int] = defaultdict(int)  # an op's device time is its own kernels' union, summed by name
    for i, us in per_op.items():
        by_name[top[i]["name"]] += len(us)
    busy: set[int] = set()
    for e in device:
        busy |= _micros(max(e["ts"], lo), min(e["ts"] + e["dur"], hi))
    return {
        "iteration_us": hi - lo,
        "top_level_ops": len(top),
        "device_us_per_op": dict(sorted(by_name.items())),
        "busy_us": len(busy),
    }


if __name__ == "__main__":
    print(json.dumps(read(), indent=2))
