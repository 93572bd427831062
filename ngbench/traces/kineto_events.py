"""Collecting a Kineto trace's events into what attribution needs: per host thread, its operators, module
scopes and runtime launches (:class:`ThreadEvents`); the device intervals by correlation id; the iteration
marker ranges; the recorded span. Each event is classified once per distinct (category, name) pair.
"""

from __future__ import annotations

import json
import math
import re
import sys
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ngbench import names
from ngbench import taxonomy as tax
from ngbench.errors import MAX_DURATION_US, MAX_TIMESTAMP_US, bad_event_time
from ngbench.traces.kineto_reader import EventArgs, iter_event_batches

EPS = 1e-3  # 1 ns: trace timestamps carry ns precision in us units
NN_MODULE = re.compile(r"^nn\.Module: (?P<cls>[A-Za-z_][\w]*?)(?:_\d+)?$")
PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "hip_runtime", "hip_driver", "Runtime", "Driver"}
HOST_CATS = {"cpu_op", "user_annotation", "python_function", "Operator"}


class Kind(IntEnum):
    """What an event is to the normalizer. Host kinds sort in tie-break order: at equal start and length, an
    enclosing range (marker, scope) comes before what it encloses."""

    SKIP = -1  # neither an op, a scope nor device work (user ranges, Python frames, other categories)
    MARKER = 0  # an iteration range: ProfilerStep#N or a range matching the iteration marker
    SCOPE = 1  # a module scope, compiled region or transparent op: sets the module of what it encloses
    OP = 2  # a PyTorch operator
    RUNTIME = 3  # a runtime or driver call that launches device work (joined by correlation id)
    DEVICE = 4  # device work: a kernel, memcpy or memset


class ThreadEvents:
    """One host thread's events, column by column (a trace holds millions: no object per event). ``shapes``,
    ``args`` and ``correlation`` are kept for the events that have them, by position."""

    __slots__ = ("ts", "dur", "kind", "name", "shapes", "args", "correlation")

    def __init__(self) -> None:
        self.ts = array("d")
        self.dur = array("d")
        self.kind = array("b")
        self.name: list[str] = []
        self.shapes: dict[int, str] = {}  # OP: its input shapes as compact JSON
        self.args: dict[int, str] = {}  # OP: [dims, types, strides, concrete inputs] as one JSON string
        self.correlation: dict[int, int] = {}  # RUNTIME: the id joining it to the device work it launched

    def sweep_order(self) -> tuple[list[int], list[float], list[int]]:
        """(positions, their start times, where each one's successors begin) in the order the nesting sweep
        needs: earlier first, at one start the longer (enclosing) range first, then by kind (a scope before
        what it encloses); exact ties by name, shapes, arguments and correlation id. The third list gives,
        per position in that order, the first later position starting at or after the event's end (less
        1 ns): where a sweep resumes after skipping the event's children."""
        ts, dur = np.frombuffer(self.ts), np.frombuffer(self.dur)
        order = np.argsort(ts, kind="stable")  # a profiler writes events nearly in order: this is quick
        same = np.diff(ts[order]) == 0
        out = order.tolist()
        if same.any():  # events starting together: each run sorted by what follows in the order
            for first in np.flatnonzero(same & ~np.concatenate(([False], same[:-1]))).tolist():
                last = first + 1
                while last < len(same) and same[last]:
                    last += 1
                out[first : last + 1] = sorted(out[first : last + 1], key=self._tie_key)
            order = np.array(out)
        starts = ts[order]
        after = np.searchsorted(starts, (starts + dur[order]) - EPS, side="left")
        return out, starts.tolist(), after.tolist()

    def _tie_key(self, i: int) -> tuple:
        return (-self.dur[i], self.kind[i], self.name[i], self.shapes.get(i, ""), self.args.get(i, ""),
                self.correlation.get(i) or 0)  # fmt: skip


class DeviceInterval(NamedTuple):
    start: float
    end: float
    kernel: str


class MarkerRange(NamedTuple):
    start: float
    end: float
    name: str


@dataclass
class ParsedTrace:
    threads: dict[tuple[Any, Any], ThreadEvents] = field(default_factory=lambda: defaultdict(ThreadEvents))
    device: dict[int, list[DeviceInterval]] = field(default_factory=lambda: defaultdict(list))  # by correlation
    orphan_device: list[DeviceInterval] = field(default_factory=list)  # device work without a correlation id
    markers: list[MarkerRange] = field(default_factory=list)
    last_end: float = float("-inf")
    first_ts: float = float("inf")
    record_end: float = float("inf")  # the profiler's "Record Window End" instant, when written
    n_events: int = 0
    n_ops: int = 0
    categories: set[str] = field(default_factory=set)
    launching_threads: set[tuple[Any, Any]] = field(default_factory=set)  # threads with runtime (launch) events
    parser: str = ""


def classify(cat: str | None, name: str, marker: re.Pattern | None, transparent: re.Pattern) -> Kind:
    """What a (category, name) pair is to the normalizer; cached per distinct pair by :func:`collect`."""
    if cat in DEVICE_CATS:
        return Kind.DEVICE
    if cat in RUNTIME_CATS:
        return Kind.RUNTIME
    if cat not in HOST_CATS:
        return Kind.SKIP
    if PROFILER_STEP.match(name) or (marker is not None and marker.search(name)):
        return Kind.MARKER
    if name.startswith(names.MODULE_SCOPE_PREFIX) or (cat == "python_function" and NN_MODULE.match(name)):
        return Kind.SCOPE
    if transparent.search(name):  # wrappers and composite ops: their children are the rows
        return Kind.SCOPE
    if cat in ("python_function", "user_annotation"):
        return Kind.SKIP  # user ranges and Python frames: neither ops nor module scopes
    return Kind.OP


def _shapes(args: EventArgs | None) -> str:
    dims = args.input_dims if args is not None else None
    return sys.intern(json.dumps(dims, separators=(",", ":"))) if dims else ""


def _recorded_args(args: EventArgs | None) -> str:
    """``[dims, types, strides, concrete]`` as one interned JSON string, when the trace recorded types."""
    if args is None or not args.input_type or args.input_dims is None:
        return ""
    if not all(isinstance(t, str) for t in args.input_type):  # a damaged record: no work from it
        return ""
    return sys.intern(
        json.dumps(
            [args.input_dims, args.input_type, args.input_strides or [], args.concrete_inputs or []],
            separators=(",", ":"),
        )
    )


def collect(path: str | Path, marker: re.Pattern | None = None, taxonomy: tax.Taxonomy | None = None) -> ParsedTrace:
    """Every event of the trace at ``path`` that attribution needs, classified (a bad time is an error)."""
    transparent = (taxonomy or tax.load()).transparent
    pt = ParsedTrace()
    kinds: dict[tuple[str | None, str], tuple[Kind, str]] = {}
    threads, device = pt.threads, pt.device
    first_ts, last_end = pt.first_ts, pt.last_end
    max_dur, max_ts = MAX_DURATION_US, MAX_TIMESTAMP_US  # locals: this loop runs once per event
    new = tuple.__new__  # a NamedTuple built without its Python-level __new__: this loop runs per event
    OP, SCOPE, RUNTIME, DEVICE, MARKER = Kind.OP, Kind.SCOPE, Kind.RUNTIME, Kind.DEVICE, Kind.MARKER
    n_ops = 0
    last_pid, last_tid, te = object(), object(), None  # nothing equals these: the first event looks its thread up
    pt.parser, batches = iter_event_batches(path)
    for batch in batches:
        for ev in batch:
            if ev.ph != "X":
                if ev.ph == "i" and ev.name == "Record Window End" and math.isfinite(ev.ts):
                    pt.record_end = ev.ts
                continue
            cat, name = ev.cat, ev.name
            if cat == "Trace":  # the profiler's own span: not an activity
                continue
            known = kinds.get((cat, name))
            if known is None:
                known = kinds[(cat, name)] = (classify(cat, name, marker, transparent), sys.intern(name))
                if cat:
                    pt.categories.add(cat)
            kind, name = known  # one shared string per distinct name: the event's own copy is freed
            ts, dur = ev.ts, ev.dur
            if not (0.0 <= dur < max_dur and -max_ts < ts < max_ts):  # also NaN: every comparison is False
                raise bad_event_time(path, pt.n_events + batch.index(ev), ev.name, ev.cat, ts, dur)
            end = ts + dur
            if kind == MARKER:  # markers are clipped to the recorded span instead of bounding it
                pt.markers.append(new(MarkerRange, (ts, end, name)))
                continue
            if ts < first_ts:  # every recorded activity bounds the whole-trace window
                first_ts = ts
            if end > last_end:
                last_end = end
            if kind == OP or kind == SCOPE or kind == RUNTIME:
                pid, tid = ev.pid, ev.tid
                if tid != last_tid or pid != last_pid:  # a thread's events come in runs: its columns stay at hand
                    last_pid, last_tid, te = pid, tid, threads[pid, tid]
                    add_ts, add_dur, add_kind, add_name = te.ts.append, te.dur.append, te.kind.append, te.name.append
                add_ts(ts)
                add_dur(dur)
                add_kind(kind)
                add_name(name)
                if kind == OP:
                    n_ops += 1
                    a = ev.args
                    if a is not None and a.input_dims is not None:  # recorded inputs (record_shapes on)
                        at = len(te.name) - 1
                        te.shapes[at], te.args[at] = _shapes(a), _recorded_args(a)
                elif kind == RUNTIME:
                    corr = ev.args.correlation if ev.args is not None else None
                    if corr is not None:
                        te.correlation[len(te.name) - 1] = corr
                    pt.launching_threads.add((pid, tid))
            elif kind == DEVICE:
                corr = ev.args.correlation if ev.args is not None else None
                interval = new(DeviceInterval, (ts, end, name))
                (device[corr] if corr is not None else pt.orphan_device).append(interval)
        pt.n_events += len(batch)
    pt.first_ts, pt.last_end, pt.n_ops = first_ts, last_end, n_ops
    return pt
