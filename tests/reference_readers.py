"""Small, separate reference readers: the oracle for the robustness tests.

Each reads a (possibly damaged) profile with nothing but ``json`` and arithmetic, and returns either the
reason the file is invalid or what the normalizer's table must show: per iteration, its measured time and
the time the ops cover (the union of the intervals that count, clipped to the iteration), plus the rows'
names where the format names them. They share no code with ``ngbench.traces``: the rules are restated from
the formats (Chrome trace events as PyTorch's Kineto, ONNX Runtime and trtexec write them).
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from pathlib import Path

MAX_DURATION_US = 1e12  # the limits the normalizers document (errors.py): beyond them a time is damage
MAX_TIMESTAMP_US = 1e17
STEP = re.compile(r"^ProfilerStep#(\d+)$")
DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
STEP_CATS = {"cpu_op", "user_annotation", "python_function", "Operator"}
STEP_OVERLAP_US = 1.0  # PyTorch's step ranges may touch by up to this much: clipped, not an error


class Invalid(Exception):
    """The file cannot give a table: the normalizer must raise its one-line error."""


class Unreadable(Invalid):
    """Not JSON at all. A streaming reader that reads only ``traceEvents`` may still read such a file when
    the damage lies outside the events: its table must then be the undamaged file's."""


class Uncovered(Exception):
    """A valid file of a kind this reader does not model: the caller falls back to weaker checks."""


def _load(path: Path):
    raw = path.read_bytes()
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # zlib/gzip damage, bad JSON, bad UTF-8
        raise Unreadable(f"unreadable: {exc}") from exc


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -math.inf
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def _event_time(e: dict) -> tuple[float, float]:
    """(ts, dur) of a complete (timed) event, or Invalid: both are required."""
    if "ts" not in e or "dur" not in e:
        raise Invalid("a complete event without ts or dur")
    ts, dur = e["ts"], e["dur"]
    if not (_number(ts) and _number(dur)):
        raise Invalid(f"non-numeric time {ts!r}/{dur!r}")
    ts, dur = float(ts), float(dur)
    if not (0.0 <= dur < MAX_DURATION_US and -MAX_TIMESTAMP_US < ts < MAX_TIMESTAMP_US):
        raise Invalid(f"implausible time ts={ts} dur={dur}")
    return ts, dur


def kineto(path: Path) -> dict[int, tuple[float, float]]:
    """A PyTorch profiler trace with device activity -> {step number: (iteration time, device busy time)}.

    Iterations are the ``ProfilerStep#N`` ranges (without any, one iteration 0 spanning every recorded event),
    clipped to the ``Record Window End`` instant; a step number
    seen twice, or steps overlapping by more than 1 us, are invalid. The busy time is the union of every
    kernel, memcpy and memset interval inside the iteration: the ops' rows together must cover exactly it."""
    data = _load(path)
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise Invalid("no traceEvents list")
    steps, device, record_end = [], [], math.inf
    first, last = math.inf, -math.inf
    for e in events:
        if not isinstance(e, dict):
            raise Invalid("an event that is not an object")
        if e.get("ph") == "i" and e.get("name") == "Record Window End":
            ts = e.get("ts", 0.0)
            if _number(ts) and math.isfinite(ts):
                record_end = float(ts)
        if e.get("ph") != "X" or e.get("cat") == "Trace":
            continue
        ts, dur = _event_time(e)
        name, cat = e.get("name", ""), e.get("cat")
        if not isinstance(name, str) or not isinstance(cat, str | None):
            raise Invalid("a name or category that is not a string")
        if cat in STEP_CATS and STEP.match(name):
            steps.append((ts, ts + dur, int(STEP.match(name).group(1))))
            continue
        first, last = min(first, ts), max(last, ts + dur)
        if cat in DEVICE_CATS:
            device.append((ts, ts + dur))
    if not device:
        raise Uncovered("no device activity (this reader covers device traces only)")
    if not steps:
        return {0: (last - first, _union(device))}
    numbers = [n for _, _, n in steps]
    if len(set(numbers)) != len(numbers):
        raise Invalid("a step number appears twice")
    windows = []
    for ts, end, n in sorted(steps, key=lambda s: (s[0], -s[1])):
        end = min(end, record_end)
        if end > ts or (end == ts and ts < record_end):
            windows.append([ts, end, n])
    if not windows:
        raise Invalid("no iteration inside the record window")
    for prev, cur in zip(windows, windows[1:]):
        if cur[0] < prev[1]:
            if prev[1] - cur[0] > STEP_OVERLAP_US:
                raise Invalid("steps overlap")
            prev[1] = cur[0]
    out = {}
    for ts, end, n in windows:
        inside = [(max(s, ts), min(e, end)) for s, e in device if s < end and e > ts]
        out[n] = (end - ts, _union(inside))
    return out


def onnxruntime_cpu(path: Path, skip_runs: int) -> list[tuple[float, list[str], float]]:
    """An ORT profile without device kernels -> per kept run: (run time, node names in start order, busy
    time). Runs are the ``model_run`` Session events; a run's nodes are the ``<node>_kernel_time`` Node
    events starting inside it; busy is the union of those nodes' intervals clipped to the run."""
    events = _load(path)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Invalid("not a JSON array of events")
    seen, runs, nodes = set(), [], []
    for e in events:
        if e.get("cat") not in ("Session", "Node", "Kernel"):
            continue
        if e.get("cat") == "Kernel":
            raise Uncovered("device kernels (this reader covers CPU profiles only)")
        name = e.get("name", "")
        if not isinstance(name, str):
            raise Invalid("a name that is not a string")
        ts, dur = _event_time(e)
        if (e["cat"], name, ts, dur) in seen:
            raise Invalid("an event written twice")
        seen.add((e["cat"], name, ts, dur))
        if e["cat"] == "Session" and name == "model_run":
            runs.append((ts, ts + dur))
        elif e["cat"] == "Node" and name.endswith("_kernel_time"):
            nodes.append((ts, ts + dur, name[: -len("_kernel_time")]))
    runs.sort()
    if not runs or any(b[0] < a[1] for a, b in zip(runs, runs[1:])) or skip_runs >= len(runs):
        raise Invalid("no runs, overlapping runs, or every run skipped")
    nodes.sort(key=lambda n: n[0])
    out = []
    for ws, we in runs[skip_runs:]:
        mine = [n for n in nodes if ws <= n[0] < we]
        out.append((we - ws, [n[2] for n in mine], _union([(max(s, ws), min(e, we)) for s, e, _ in mine])))
    return out


def tensorrt(profile: Path) -> list[tuple[str, float]]:
    """A trtexec per-layer profile -> [(layer name, average time in us)] in file order; the optional
    leading ``{"count": N}`` record is no layer."""
    data = _load(profile)
    if not isinstance(data, list):
        raise Invalid("not a JSON array")
    out = []
    for rec in data:
        if isinstance(rec, dict) and set(rec) == {"count"}:
            if not (isinstance(rec["count"], int) and not isinstance(rec["count"], bool) and rec["count"] >= 0):
                raise Invalid("a bad count")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str) or not _number(rec.get("averageMs")):
            raise Invalid("a record without a string name and a numeric averageMs")
        average = float(rec["averageMs"])
        if not (math.isfinite(average) and 0 <= average and average * 1e3 < MAX_DURATION_US):
            raise Invalid("an implausible averageMs")
        out.append((rec["name"], average * 1e3))
    if not out:
        raise Invalid("no layer records")
    return out
