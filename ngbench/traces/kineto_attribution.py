"""Time attribution: each iteration window's top-level ops -> op-table rows whose times, with the Idle row,
add up to the window.

- CPU-only trace: rows come from the *dispatching* thread (most top-level op time in the window) and
  ``time_us`` is the op's host time. Ops of other threads overlap it; they are counted, never added.
- Trace with device activity: every device interval inside the window counts, joined to the top-level op
  that launched it (by correlation id, on any thread). Device work that straddles a window boundary is split
  at it; device work with no launching op becomes a row named after the kernel. ``time_us`` splits the union
  of the window's device intervals among the rows active at each instant, so it sums to the device busy
  time; ``device_time_us`` is the union of the row's own intervals.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from typing import Any, NamedTuple

from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench import work
from ngbench.traces.intervals import split_busy_time, union_length
from ngbench.traces.kineto_events import EPS, ParsedTrace
from ngbench.traces.kineto_nesting import TopLevelOp
from ngbench.traces.kineto_windows import Window

NO_ARGS = work.unknown("the trace recorded no input types (record_shapes off)")
Rows = dict[Any, list[TopLevelOp]]  # per host thread, its top-level ops sorted by start


class Decision(NamedTuple):
    group: str
    source: str  # how the group was decided (taxonomy rule, "kernels", ...)
    is_gemm: bool


class Decider:
    """Group decisions, cached: the taxonomy's rule, then (for ops it does not know) the group of the
    kernels the op launched, weighted by their device time."""

    def __init__(self, taxonomy: tax.Taxonomy, work_from_args: bool = True):
        self.taxonomy = taxonomy
        self.work_from_args = work_from_args
        self.cache: dict[tuple, Decision] = {}
        self.kernel_cache: dict[str, str] = {}
        self.work_notes: Counter[str] = Counter()  # why an op's work is unknown, per reason

    def work(self, row: TopLevelOp, group: str) -> work.Work:
        """The op's work from its recorded arguments (a trace recorded with shapes), else unknown."""
        if not self.work_from_args:
            return work.NONE
        if not row.args or not row.host:
            if row.host:
                self.work_notes[NO_ARGS.note] += 1
            return NO_ARGS
        from ngbench.traces import torch_work

        found = torch_work.from_args(row.op, row.args, group)
        if found.note:
            self.work_notes[found.note] += 1
        return found

    def kernel_group(self, name: str) -> str:
        group = self.kernel_cache.get(name)
        if group is None:
            group = self.kernel_cache[name] = self.taxonomy.classify(name, (), kind="kernel").group
        return group

    def __call__(self, op: str, module_types: tuple[str, ...], kernels: dict[str, float] | None) -> Decision:
        key = (op, module_types)
        decision = self.cache.get(key)
        if decision is None:
            d = self.taxonomy.classify(op, module_types, kind="torch")
            decision = self.cache[key] = Decision(d.group, d.source, self.taxonomy.is_gemm(d.group))
        if decision.source != "unknown" or not kernels:
            return decision
        by_group: dict[str, float] = defaultdict(float)
        for name, time in kernels.items():
            by_group[self.kernel_group(name)] += time
        by_group.pop(tax.OTHER, None)
        if not by_group:
            return decision
        best = max(by_group, key=lambda g: (by_group[g], g))
        return Decision(best, "kernels", self.taxonomy.is_gemm(best))


def in_window(rows: list[TopLevelOp], starts: list[float], w: Window) -> list[TopLevelOp]:
    lo = bisect.bisect_left(starts, w.start - EPS)
    hi = bisect.bisect_left(starts, w.end)
    return rows[lo:hi]


def host_iterations(windows: list[Window], thread_rows: Rows, decide: Decider, cols: dict) -> dict[str, Any]:
    """CPU-only: per window, the dispatching thread's top-level ops, each its host time in the window."""
    row_starts = {key: [r.ts for r in rows] for key, rows in thread_rows.items()}
    other_ops, other_time = 0, 0.0
    for w in windows:
        candidates = []
        for key, rows in thread_rows.items():
            rows = in_window(rows, row_starts[key], w)
            times, covered, w_end = [], w.start, w.end  # ops may touch within 1 ns: no instant counted twice
            for r in rows:
                start = r.ts if r.ts > covered else covered
                end = r.end if r.end < w_end else w_end
                if end > start:
                    times.append(end - start)
                    covered = end
                else:
                    times.append(0.0)
            candidates.append((sum(times), len(rows), str(key), rows, times))
        candidates.sort(key=lambda c: (c[0], c[1], c[2]), reverse=True)
        _, _, _, rows, times = candidates[0] if candidates else (0, 0, "", [], [])
        for busy, n, _, _, _ in candidates[1:]:
            other_ops += n
            other_time += busy
        none = [None] * len(rows)
        emit(cols, w, rows, times, none, [r.end - r.ts for r in rows], decide, none)
    return {"ops_on_other_threads": other_ops, "other_threads_op_time_us": other_time}


class _Piece(NamedTuple):
    """Device work inside one window, owned by a top-level op (its index in ``all_rows``) or, when no op
    launched it, by its kernel's name (``row`` -1)."""

    start: float
    end: float
    row: int
    kernel: str


def device_iterations(pt: ParsedTrace, windows: list[Window], thread_rows: Rows, decide: Decider, cols: dict):
    """With device activity: every device interval inside a window, attributed to its launching op."""
    row_starts = {key: [r.ts for r in rows] for key, rows in thread_rows.items()}
    owners = _launches(pt, thread_rows)
    split = _split_by_window(pt, windows, owners.corr_owner)
    other_ops, other_time = 0, 0.0
    launching_set = set(owners.launching)
    for j, w in enumerate(windows):
        for key, krows in thread_rows.items():
            if key not in launching_set:
                mine = in_window(krows, row_starts[key], w)
                other_ops += len(mine)
                other_time += sum(max(0.0, min(r.end, w.end) - max(r.ts, w.start)) for r in mine)
        _window_rows(pt, w, split.pieces[j], owners, thread_rows, row_starts, decide, cols)
    return {
        "ops_on_other_threads": other_ops,
        "other_threads_op_time_us": other_time,
        "threads_launching_device_work": len(owners.launching),
        "device_time_us": split.total,
        "device_time_outside_iterations_us": max(0.0, split.total - split.inside),
        "device_time_without_launching_op_us": split.unowned,
    }


class _Launches(NamedTuple):
    all_rows: list[TopLevelOp]  # every thread's top-level ops, thread by thread
    row_index: dict[int, int]  # id(op) -> its index in all_rows
    corr_owner: dict[int, int]  # correlation id -> the index of the op that launched it
    launching: list[Any]  # the threads that launched device work
    kernels_by_row: dict[int, dict[str, float]]  # per launching op: its kernels' device time by name


def _launches(pt: ParsedTrace, thread_rows: Rows) -> _Launches:
    """Which top-level op launched each piece of device work (by correlation id), and on which threads."""
    all_rows: list[TopLevelOp] = []
    corr_owner: dict[int, int] = {}
    launching: list[Any] = []
    for key, rows in thread_rows.items():
        launches = False
        for r in rows:
            for c in r.correlations:
                if c in pt.device:
                    corr_owner[c] = len(all_rows)
                    launches = True
            all_rows.append(r)
        if launches:
            launching.append(key)
    kernels_by_row: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for corr, ivs in pt.device.items():
        owner = corr_owner.get(corr, -1)
        if owner >= 0:
            for s, e, name in ivs:
                kernels_by_row[owner][name] += e - s
    row_index = {id(r): i for i, r in enumerate(all_rows)}
    return _Launches(all_rows, row_index, corr_owner, launching, kernels_by_row)


class _Split(NamedTuple):
    pieces: list[list[_Piece]]  # per window: the device work inside it
    total: float  # all device time in the trace
    inside: float  # of which inside some window
    unowned: float  # of which no op launched


def _split_by_window(pt: ParsedTrace, windows: list[Window], corr_owner: dict[int, int]) -> _Split:
    """Every device interval, owned by its launching op's index or -1 (no launch found: its kernel owns it),
    cut at the window boundaries it straddles."""
    intervals: list[_Piece] = []
    for corr, ivs in pt.device.items():
        owner = corr_owner.get(corr, -1)
        intervals.extend(_Piece(s, e, owner, name) for s, e, name in ivs)
    intervals.extend(_Piece(s, e, -1, name) for s, e, name in pt.orphan_device)
    starts = [w.start for w in windows]
    pieces: list[list[_Piece]] = [[] for _ in windows]
    total = inside = unowned = 0.0
    for s, e, owner, name in intervals:
        total += e - s
        if owner < 0:
            unowned += e - s
        j = max(0, bisect.bisect_right(starts, s) - 1)
        while j < len(windows) and windows[j].start <= e:
            w = windows[j]
            lo, hi = max(s, w.start), min(e, w.end)
            if lo < hi or (lo == hi == s and w.start <= s < w.end):
                pieces[j].append(_Piece(lo, hi, owner, name))
                inside += hi - lo
            j += 1
    return _Split(pieces, total, inside, unowned)


def _window_rows(pt, w: Window, pieces: list[_Piece], owners: _Launches, thread_rows: Rows, row_starts,
                 decide: Decider, cols: dict) -> None:  # fmt: skip
    """One window's rows: the launching threads' ops in it, plus the ops and kernels that own device work in
    it; each row's share of the window's device busy time."""
    all_rows, row_index, kernels_by_row = owners.all_rows, owners.row_index, owners.kernels_by_row
    rows: list[TopLevelOp] = []
    local: dict[int, int] = {}  # owning row's index -> its position among this window's rows
    local_kernels: dict[str, int] = {}  # an unlaunched kernel -> the position of the row named after it
    for key in owners.launching:
        for r in in_window(thread_rows[key], row_starts[key], w):
            local[row_index[id(r)]] = len(rows)
            rows.append(r)
    owned: list[tuple[float, float, int]] = []
    for lo, hi, owner, kernel in pieces:
        idx = local.get(owner) if owner >= 0 else local_kernels.get(kernel)
        if idx is None:
            idx = len(rows)
            if owner >= 0:
                local[owner] = idx
                rows.append(all_rows[owner])
            else:  # device work no op launched: a row named after its kernel
                local_kernels[kernel] = idx
                rows.append(TopLevelOp(kernel, lo, lo, "", (), "", [], host=False))
        owned.append((lo, hi, idx))
    own_ivs: list[list[tuple[float, float]]] = [[] for _ in rows]
    for lo, hi, idx in owned:
        own_ivs[idx].append((lo, hi))
    share = split_busy_time(owned)
    order = sorted(range(len(rows)), key=lambda i: (rows[i].ts, i))
    ordered = [rows[i] for i in order]
    for r in ordered:
        if not r.op:  # a launch outside any op: name it after its kernel(s)
            kernel_names = [n for c in r.correlations for (_, _, n) in pt.device.get(c, ())]
            r.op = kernel_names[0] if kernel_names else "unattributed launch"
    host_times = [(r.end - r.ts if w.start - EPS <= r.ts < w.end else 0.0) if r.host else None for r in ordered]
    kernels = [kernels_by_row.get(row_index[id(r)]) if r.host else {r.op: 1.0} for r in ordered]
    emit(
        cols,
        w,
        ordered,
        [share.get(i, 0.0) for i in order],
        [union_length(own_ivs[i]) for i in order],
        host_times,
        decide,
        kernels,
    )


def emit(cols: dict, w: Window, rows: list[TopLevelOp], times, device_times, host_times, decide: Decider,
         kernels) -> None:  # fmt: skip
    """One iteration's rows, whole columns at a time, and its Idle row (``optable.append_iteration``)."""
    cache = decide.cache
    decisions = [
        (None if k else cache.get((r.op, r.module_types))) or decide(r.op, r.module_types, k)  # cached: no call
        for r, k in zip(rows, kernels)
    ]
    works = [decide.work(r, d.group) for r, d in zip(rows, decisions)]
    ops = {
        "op": [r.op for r in rows],
        "node": [r.node for r in rows],
        "module": [r.module for r in rows],
        "module_type": [r.module_types[0] if r.module_types else "" for r in rows],
        "group": [d.group for d in decisions],
        "group_source": [d.source for d in decisions],
        "is_gemm": [d.is_gemm for d in decisions],
        "time_us": times,
        "device_time_us": device_times,
        "host_time_us": host_times,
        "input_shapes": [r.shapes for r in rows],
        "fused_ops": [()] * len(rows),  # eager ops fuse nothing
        "bytes": [w.bytes for w in works],
        "flops": [w.flops for w in works],
        "work_source": [w.source for w in works],
        "layout": [w.layout for w in works],
    }
    optable.append_iteration(cols, w.iteration, w.end - w.start, ops)
