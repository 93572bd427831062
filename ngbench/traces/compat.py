"""The original NonGEMM Bench's metric, computed from our own Kineto traces (no new profiling): ``compat``.

The original's per-op latency (``../shared/reference/original-nongemm-bench.md`` section 2.1) is, for every
top-level op of the inference range and each of 8 module pseudo-ops (``<class>_prof``, their aten ops
hidden inside), inclusive host time + inclusive device time of the kernels it or its descendants launched,
summed over iterations and per lower-cased name. GEMM by its list and substring rules; names holding
``profiler``, ``inference`` or ``cuda`` dropped; the non-GEMM groups by its lists; any non-GEMM name in no
list left out of the groups' denominator (so FrozenBatchNorm2d counts nowhere). Each of those choices is a
documented flaw with a switch (:class:`Switches`) that turns it off on its own. Our module-scope ranges
(``ngb.module::<path>::<Class>``) stand in for the original's ``record_function`` pseudo-ops.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from ngbench import names
from ngbench.errors import InputError, bad_event_time, implausible_time
from ngbench.traces.kineto_reader import iter_event_batches

DATA_PATH = Path(__file__).resolve().parents[1] / "compat.yaml"
GEMM, NON_GEMM, UNGROUPED = "gemm", "non_gemm", "ungrouped"
OP_CATS = {"cpu_op", "Operator"}
LAUNCH_CATS = {"cuda_runtime", "cuda_driver", "hip_runtime", "hip_driver", "Runtime", "Driver"}
KERNEL_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
STEP_CATS = {"cpu_op", "user_annotation", "Operator"}  # the host's ProfilerStep ranges


@dataclass(frozen=True)
class Switches:
    """The original's choices, each on by default (reproduce it); turn one off to see what it changes."""

    host_plus_device: bool = True  # latency = host + device time of the same op (off: device time where any)
    inclusive: bool = True  # an op's time includes its children's (off: host self time)
    drop_unknown: bool = True  # non-GEMM names in no list leave the groups' denominator (off: group "other")
    frozen_bn_nowhere: bool = True  # frozenbatchnorm2d_prof is in no group (off: normalization)
    attention_as_gemm: bool = True  # SDPA / fused MHA count whole as GEMM (off: non-GEMM, group "other")


@cache
def lists() -> dict:
    data = yaml.safe_load(DATA_PATH.read_text())
    data["group_of"] = {op: g for g, ops in data["groups"].items() for op in ops}
    return data


def classify(name: str, switches: Switches = Switches()) -> tuple[str, str | None]:
    """(gemm | non_gemm | dropped, group or None) of a lower-cased compat name, by the original's rules."""
    data = lists()
    if any(s in name for s in data["dropped_substrings"]):
        return "dropped", None
    attention = "attention" in name
    if attention and not switches.attention_as_gemm:
        return NON_GEMM, "other"
    stem = name.removesuffix("_prof")
    if (
        name in data["gemm_exact"]
        or any(s in name for s in data["gemm_substrings"])
        or (name.endswith("_prof") and any(stem in g for g in data["gemm_exact"]))
    ):
        return GEMM, None
    group = data["group_of"].get(name)
    if name == "frozenbatchnorm2d_prof" and not switches.frozen_bn_nowhere:
        group = "normalization"
    if group is None and not switches.drop_unknown:
        group = "other"
    return NON_GEMM, group


def _events(path: Path):
    """Host ops, module ranges and launches of the dispatching thread, kernels by correlation, steps."""
    _, batches = iter_event_batches(path)
    host: dict = defaultdict(list)  # tid -> (ts, -dur, kind, name, correlation)
    kernels: dict[int, float] = defaultdict(float)
    steps = []
    index = 0
    for batch in batches:
        for e in batch:
            index += 1
            if e.ph != "X":
                continue
            if implausible_time(e.ts, e.dur):  # also a complete event without its times (NaN)
                raise bad_event_time(path, index - 1, e.name, e.cat, e.ts, e.dur)
            if e.cat in KERNEL_CATS:
                if e.args is not None and e.args.correlation is not None:
                    kernels[e.args.correlation] += e.dur
            elif e.name.startswith("ProfilerStep#"):
                if e.cat in STEP_CATS:  # CUDA traces repeat each step as gpu_user_annotation: not a window
                    steps.append((e.ts, e.ts + e.dur))
            elif e.name.startswith(names.MODULE_SCOPE_PREFIX):  # cpu_op or user_annotation, by torch version
                host[(e.pid, e.tid)].append((e.ts, -e.dur, 0, e.name, None))
            elif e.cat in OP_CATS:
                host[(e.pid, e.tid)].append((e.ts, -e.dur, 1, e.name, None))
            elif e.cat in LAUNCH_CATS and e.args is not None and e.args.correlation is not None:
                host[(e.pid, e.tid)].append((e.ts, -e.dur, 2, e.name, e.args.correlation))
    return host, kernels, steps


def _pseudo_op(scope: str, custom: set[str]) -> str | None:
    cls = scope[len(names.MODULE_SCOPE_PREFIX) :].rpartition("::")[2]
    return f"{cls.lower()}_prof" if cls.lower() in custom else None


def op_times(path: str | Path, switches: Switches = Switches()) -> dict[str, list[float]]:
    """Per compat name of one trace: [host us, device us, count] summed over its measured steps (the whole
    trace where it has no ProfilerStep)."""
    path = Path(path)
    host, kernels, steps = _events(path)
    custom = set(lists()["custom_ops"])
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    steps.sort()
    starts = [s for s, _ in steps]

    def in_step(ts: float) -> bool:
        if not steps:
            return True
        i = bisect.bisect_right(starts, ts) - 1
        return i >= 0 and ts < steps[i][1]

    for events in host.values():
        events.sort()
        stack: list[list] = []  # open frames: [end, name or None (transparent), host us, device us, child us]

        def close(frame):
            if frame[1] is None:
                return
            time_host = frame[2] if switches.inclusive else frame[2] - frame[4]
            row = out[frame[1]]
            row[0] += time_host
            row[1] += frame[3]
            row[2] += 1

        for ts, neg_dur, kind, name, correlation in events:
            while stack and ts >= stack[-1][0]:
                close(stack.pop())
            counted = next((f for f in reversed(stack) if f[1] is not None), None)
            if kind == 2:  # a launch: its kernels belong to the counted op around it
                if counted is not None:
                    counted[3] += kernels.get(correlation, 0.0)
                continue
            if counted is not None:  # inside a counted op or pseudo-op: hidden (its child time noted)
                if kind == 1 and stack[-1] is counted:
                    counted[4] += -neg_dur
                stack.append([ts - neg_dur, None, 0.0, 0.0, 0.0])
                continue
            if not in_step(ts):
                continue
            label = name.lower() if kind == 1 else _pseudo_op(name, custom)
            stack.append([ts - neg_dur, label, -neg_dur if label else 0.0, 0.0, 0.0])
        while stack:
            close(stack.pop())
    if not out:
        raise InputError(f"{path}: no host operator inside a profiler step; expected a PyTorch profiler trace")
    return dict(out)


def shares(traces: Iterable[str | Path], switches: Switches = Switches()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-name table over all traces, shares): the original's ``pct`` view (GEMM + the non-GEMM groups,
    denominator as its switches say) and its ``gng`` view (GEMM vs every non-GEMM name)."""
    total: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for path in traces:
        for name, (h, d, n) in op_times(path, switches).items():
            row = total[name]
            row[0], row[1], row[2] = row[0] + h, row[1] + d, row[2] + n
    rows = []
    for name, (h, d, n) in sorted(total.items()):
        cls, group = classify(name, switches)
        latency = h + d if switches.host_plus_device or d == 0 else d
        rows.append({"name": name, "host_us": h, "device_us": d, "latency_us": latency, "count": n,
                     "class": cls, "group": group})  # fmt: skip
    ops = pd.DataFrame(rows)
    kept = ops[ops["class"] != "dropped"]
    gemm = kept.loc[kept["class"] == GEMM, "latency_us"].sum()
    grouped = kept[(kept["class"] == NON_GEMM) & kept["group"].notna()].groupby("group")["latency_us"].sum()
    pct_total = gemm + grouped.sum()
    view = [{"view": "pct", "group": "gemm", "latency_us": gemm, "pct": 100 * gemm / pct_total if pct_total else None}]
    view += [{"view": "pct", "group": g, "latency_us": t, "pct": 100 * t / pct_total} for g, t in grouped.items()]
    ungrouped = kept[(kept["class"] == NON_GEMM) & kept["group"].isna()]
    view.append({"view": "pct", "group": UNGROUPED, "latency_us": ungrouped["latency_us"].sum(), "pct": None})
    non_gemm = kept.loc[kept["class"] == NON_GEMM, "latency_us"].sum()
    gng_total = gemm + non_gemm
    for g, t in (("gemm", gemm), ("non_gemm", non_gemm)):
        view.append({"view": "gng", "group": g, "latency_us": t, "pct": 100 * t / gng_total if gng_total else None})
    return ops, pd.DataFrame(view)
