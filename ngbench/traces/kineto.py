"""PyTorch profiler (Kineto) Chrome-trace JSON -> unified op table rows.

Streaming: events are read one at a time with ijson and only the fields we need are kept as tuples, so a
1 GB trace does not become 10 GB of Python dicts.

Attribution (DESIGN.md section 5, issue 3):
- Iterations are ``ProfilerStep#N`` ranges, else ranges whose name matches ``iteration_marker``, else the
  whole trace (first to last recorded activity). A range is clipped to the profiler's ``Record Window End``
  (some tools close step ranges long after recording stopped).
- Rows are *top-level* ops: ``cpu_op`` events on the dispatching thread with no enclosing ``cpu_op``.
  Module scopes (our ``ngb.module::`` ranges, or ``nn.Module: X_N`` python-function events of a user's
  ``with_stack`` trace) and compiled-region wrappers are transparent: they set the op's module, not a row.
- CPU-only trace: ``time_us`` is the op's host time. The idle row holds the rest of the iteration
  (Python between ops, hooks, allocator), so per iteration the rows sum to the measured window exactly.
- Trace with device activity (CUDA/ROCm kernels, memcpy, memset): kernels join their launching runtime
  call by correlation id, and the call joins the top-level op that encloses it. ``device_time_us`` is the
  union of the op's kernel intervals. ``time_us`` splits the union of all device intervals of the
  iteration among the ops whose kernels are active at each instant (equal shares where streams overlap),
  so it sums to the device busy time; idle = iteration window - busy time. Host and device time of one op
  are never summed.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson

from ngbench import table as optable
from ngbench import taxonomy as tax

log = logging.getLogger(__name__)

MODULE_SCOPE_PREFIX = "ngb.module::"
_NN_MODULE = re.compile(r"^nn\.Module: (?P<cls>[A-Za-z_][\w]*?)(?:_\d+)?$")
_PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
# Wrappers that contain the real ops: their children become the top-level rows.
TRANSPARENT_OPS = re.compile(r"^(Torch-Compiled Region|CompiledFunction|## Call CompiledFxGraph|## Forward)")
DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "hip_runtime", "hip_driver", "Runtime", "Driver"}
HOST_CATS = {"cpu_op", "user_annotation", "python_function", "Operator"}

# event kinds on a host thread, in tie-break order (an enclosing range sorts before what it encloses)
MARKER, SCOPE, OP, RUNTIME = 0, 1, 2, 3


class TraceFormatError(ValueError):
    pass


@dataclass(slots=True)
class HostEvent:
    ts: float
    end: float
    kind: int
    name: str
    shapes: str = ""
    correlation: int | None = None


@dataclass
class ParsedTrace:
    threads: dict[tuple[Any, Any], list[HostEvent]] = field(default_factory=lambda: defaultdict(list))
    # correlation id -> list of (start, end) device intervals
    device: dict[int, list[tuple[float, float, str]]] = field(default_factory=lambda: defaultdict(list))
    orphan_device: list[tuple[float, float, str]] = field(default_factory=list)
    markers: list[HostEvent] = field(default_factory=list)
    last_end: float = float("-inf")
    first_ts: float = float("inf")
    record_end: float = float("inf")  # the profiler's "Record Window End" instant, when written
    n_events: int = 0
    device_names: list[str] = field(default_factory=list)


def _open(path: Path) -> IO[bytes]:
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    return gzip.GzipFile(fileobj=f) if magic == b"\x1f\x8b" else f


def iter_events(path: str | Path) -> Iterator[dict]:
    """Stream the ``traceEvents`` array of a Chrome-trace JSON file (gzipped or not)."""
    p = Path(path)
    if not p.is_file():
        raise TraceFormatError(f"{p}: no such trace file")
    with _open(p) as f:
        try:
            yield from ijson.items(f, "traceEvents.item", use_float=True)
        except (ijson.JSONError, ijson.IncompleteJSONError, OSError, EOFError) as exc:
            raise TraceFormatError(
                f"{p}: not a readable Kineto/Chrome trace (expected a JSON object with a 'traceEvents' array): {exc}"
            ) from exc


def _shapes(args: dict) -> str:
    dims = args.get("Input Dims")
    return sys.intern(json.dumps(dims, separators=(",", ":"))) if dims else ""


def collect(path: str | Path, marker: re.Pattern | None = None) -> ParsedTrace:
    pt = ParsedTrace()
    for ev in iter_events(path):
        pt.n_events += 1
        if ev.get("ph") != "X":
            if ev.get("ph") == "i" and ev.get("name") == "Record Window End":
                pt.record_end = float(ev.get("ts", pt.record_end))
            continue
        cat = ev.get("cat")
        name = sys.intern(ev.get("name", ""))
        ts = float(ev.get("ts", 0.0))
        end = ts + float(ev.get("dur", 0.0))
        if cat == "Trace":  # the profiler's own span: not an activity
            continue
        args = ev.get("args") or {}
        if not (cat in HOST_CATS and (_PROFILER_STEP.match(name) or (marker is not None and marker.search(name)))):
            # every recorded activity bounds the whole-trace window; markers are clipped to it instead
            pt.first_ts = min(pt.first_ts, ts)
            pt.last_end = max(pt.last_end, end)
        if cat in DEVICE_CATS:
            item = (ts, end, name)
            corr = args.get("correlation")
            (pt.device[int(corr)].append(item) if corr is not None else pt.orphan_device.append(item))
        elif cat in RUNTIME_CATS:
            corr = args.get("correlation")
            pt.threads[(ev.get("pid"), ev.get("tid"))].append(
                HostEvent(ts, end, RUNTIME, name, correlation=int(corr) if corr is not None else None)
            )
        elif cat in HOST_CATS:
            key = (ev.get("pid"), ev.get("tid"))
            step = _PROFILER_STEP.match(name)
            if step or (marker is not None and marker.search(name)):
                pt.markers.append(HostEvent(ts, end, MARKER, name))
            elif name.startswith(MODULE_SCOPE_PREFIX) or (cat == "python_function" and _NN_MODULE.match(name)):
                pt.threads[key].append(HostEvent(ts, end, SCOPE, name))
            elif cat == "python_function" or (cat == "user_annotation" and not TRANSPARENT_OPS.match(name)):
                continue  # user ranges and Python frames: neither ops nor module scopes
            elif TRANSPARENT_OPS.match(name):
                pt.threads[key].append(HostEvent(ts, end, SCOPE, name))
            else:
                pt.threads[key].append(HostEvent(ts, end, OP, name, shapes=_shapes(args)))
    return pt


def _scope_module(name: str) -> tuple[str, str] | None:
    """(module path, module class) of a scope event; None for compiled-region wrappers."""
    if name.startswith(MODULE_SCOPE_PREFIX):
        path, _, cls = name[len(MODULE_SCOPE_PREFIX) :].rpartition("::")
        return path, cls
    m = _NN_MODULE.match(name)
    if m:
        return name[len("nn.Module: ") :], m.group("cls")
    return None


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def _split_busy_time(owned: list[tuple[float, float, int]]) -> dict[int, float]:
    """Split the union of intervals among owners: at each instant, equal shares to the active owners."""
    points: list[tuple[float, int, int]] = []
    for s, e, owner in owned:
        if e > s:
            points.append((s, 1, owner))
            points.append((e, -1, owner))
    points.sort(key=lambda p: (p[0], p[1]))
    active: dict[int, int] = defaultdict(int)
    share: dict[int, float] = defaultdict(float)
    prev = None
    for t, delta, owner in points:
        if prev is not None and t > prev and active:
            piece = (t - prev) / len(active)
            for o in active:
                share[o] += piece
        active[owner] += delta
        if active[owner] == 0:
            del active[owner]
        prev = t
    return share


@dataclass(slots=True)
class _Row:
    op: str
    ts: float
    end: float
    module: str
    module_types: tuple[str, ...]
    shapes: str
    correlations: list[int] = field(default_factory=list)


def _windows(pt: ParsedTrace) -> list[tuple[int, float, float, str]]:
    """(iteration number, start, end, marker name). A range is clipped to the profiler's record window:
    some tools close the step range long after the profiler stopped recording."""
    out = []
    markers = sorted(pt.markers, key=lambda m: m.ts)
    if any(_PROFILER_STEP.match(m.name) for m in markers):
        markers = [m for m in markers if _PROFILER_STEP.match(m.name)]
        for m in markers:
            out.append((int(_PROFILER_STEP.match(m.name).group(1)), m.ts, min(m.end, pt.record_end), m.name))
    elif markers:
        for i, m in enumerate(markers):
            out.append((i, m.ts, min(m.end, pt.record_end), m.name))
    elif pt.first_ts <= pt.last_end:
        out.append((0, pt.first_ts, pt.last_end, "whole trace"))
    return out


def _top_level_rows(
    events: list[HostEvent], start: float, end: float, device_correlations: set[int] | dict = frozenset()
) -> list[_Row]:
    """Top-level ops of one thread within [start, end), with module scope and launched correlations."""
    rows: list[_Row] = []
    stack: list[tuple[HostEvent, _Row | None]] = []
    eps = 1e-3  # 1 ns: trace timestamps carry ns precision in us units
    for ev in events:
        if ev.ts < start - eps:
            continue
        if ev.ts >= end:
            break
        while stack and stack[-1][0].end <= ev.ts + eps:
            stack.pop()
        owner = next((r for e, r in reversed(stack) if e.kind == OP), None)
        if ev.kind == RUNTIME:
            if owner is not None and ev.correlation is not None:
                owner.correlations.append(ev.correlation)
            elif ev.correlation in device_correlations:  # launched device work outside any op
                rows.append(_orphan_launch(ev, stack))
            continue
        row = None
        if ev.kind == OP and owner is None:
            scopes = [_scope_module(e.name) for e, _ in reversed(stack) if e.kind == SCOPE]
            scopes = [s for s in scopes if s is not None]
            row = _Row(
                op=ev.name,
                ts=ev.ts,
                end=ev.end,
                module=scopes[0][0] if scopes else "",
                module_types=tuple(s[1] for s in scopes),
                shapes=ev.shapes,
            )
            rows.append(row)
        stack.append((ev, row if row is not None else owner))
    return rows


def _orphan_launch(ev: HostEvent, stack: list[tuple[HostEvent, _Row | None]]) -> _Row:
    """A kernel launched outside any op (e.g. straight from a compiled region): a row of its own, named
    after its kernel once known."""
    scopes = [_scope_module(e.name) for e, _ in reversed(stack) if e.kind == SCOPE]
    scopes = [s for s in scopes if s is not None]
    return _Row(
        op="",
        ts=ev.ts,
        end=ev.ts,
        module=scopes[0][0] if scopes else "",
        module_types=tuple(s[1] for s in scopes),
        shapes="",
        correlations=[ev.correlation] if ev.correlation is not None else [],
    )


@dataclass
class NormalizeResult:
    rows: dict[str, list]
    info: dict[str, Any]


def normalize(
    path: str | Path,
    *,
    platform: str = "unknown",
    backend: str = "torch",
    model: str = "unknown",
    batch_size: int = 0,
    seq_len: int | None = None,
    iteration_marker: str | None = None,
    taxonomy: tax.Taxonomy | None = None,
    shapes_trace: str | Path | None = None,
):
    """Parse one Kineto trace into an op-table DataFrame (closure checked) and an info dict.

    ``shapes_trace``: a separate profile of one iteration recorded with ``record_shapes=True``; its shapes
    are joined to every iteration whose top-level op sequence is identical (eager runs repeat exactly)."""
    import pandas as pd

    taxonomy = taxonomy or tax.load()
    marker = re.compile(iteration_marker) if iteration_marker else None
    pt = collect(path, marker)
    for evs in pt.threads.values():
        evs.sort(key=lambda e: (e.ts, -(e.end - e.ts), e.kind))
    has_device = bool(pt.device) or bool(pt.orphan_device)
    device = "cuda" if has_device else "cpu"
    windows = _windows(pt)
    if not windows:
        raise TraceFormatError(f"{path}: the trace holds no timed events")

    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    other_thread_ops = 0
    for iteration, w_start, w_end, _ in windows:
        # the dispatching thread: most top-level op time inside the window
        best_key, best_rows, best_busy = None, [], -1.0
        per_thread = {}
        for key, evs in pt.threads.items():
            lo = _lower(evs, w_start)
            rows = _top_level_rows(evs[lo:], w_start, w_end, pt.device)
            busy = sum(r.end - r.ts for r in rows)
            per_thread[key] = rows
            if busy > best_busy:
                best_key, best_rows, best_busy = key, rows, busy
        other_thread_ops += sum(len(r) for k, r in per_thread.items() if k != best_key)
        rows = best_rows

        if has_device:
            iteration_end = w_end
            owned: list[tuple[float, float, int]] = []
            own_intervals: list[list[tuple[float, float]]] = []
            for r in rows:
                ivs = [(s, e) for c in r.correlations for (s, e, _) in pt.device.get(c, ())]
                if not r.op:  # orphan launch: name it after its kernel(s)
                    names = [n for c in r.correlations for (_, _, n) in pt.device.get(c, ())]
                    r.op = names[0] if names else "unattributed launch"
                own_intervals.append(ivs)
                iteration_end = max([iteration_end, *(e for _, e in ivs)])
            for i, ivs in enumerate(own_intervals):
                owned.extend((max(s, w_start), min(e, iteration_end), i) for s, e in ivs)
            share = _split_busy_time(owned)
            iteration_time = iteration_end - w_start
            times = [share.get(i, 0.0) for i in range(len(rows))]
            device_times = [_union_length(ivs) for ivs in own_intervals]
        else:
            iteration_time = w_end - w_start
            times = [max(0.0, min(r.end, w_end) - max(r.ts, w_start)) for r in rows]
            device_times = [None] * len(rows)

        seq = 0
        for r, t, dt in zip(rows, times, device_times):
            decision = taxonomy.classify(r.op, r.module_types, kind="torch")
            _append(
                cols,
                platform,
                device,
                backend,
                model,
                batch_size,
                seq_len,
                iteration,
                seq,
                op=r.op,
                module=r.module,
                module_type=r.module_types[0] if r.module_types else "",
                group=decision.group,
                group_source=decision.source,
                is_gemm=taxonomy.is_gemm(decision.group),
                time_us=t,
                device_time_us=dt,
                host_time_us=r.end - r.ts,
                iteration_time_us=iteration_time,
                input_shapes=r.shapes,
            )
            seq += 1
        _append(
            cols,
            platform,
            device,
            backend,
            model,
            batch_size,
            seq_len,
            iteration,
            seq,
            op=optable.IDLE_OP,
            module="",
            module_type="",
            group=tax.IDLE,
            group_source="idle",
            is_gemm=False,
            time_us=iteration_time - sum(times),
            device_time_us=None,
            host_time_us=None,
            iteration_time_us=iteration_time,
            input_shapes="",
        )
    df = pd.DataFrame(cols)
    if shapes_trace is not None:
        info_shapes = _join_shapes(df, shapes_trace, taxonomy)
    else:
        info_shapes = "from the trace itself" if any(cols["input_shapes"]) else "not recorded"
    df = df.astype({"batch_size": "int32", "iteration": "int32", "seq": "int32", "seq_len": "Int32"})
    info = {
        "trace": str(path),
        "events": pt.n_events,
        "iterations": len(windows),
        "iteration_source": _iteration_source(windows, iteration_marker),
        "device_activity": has_device,
        "time_basis": "device busy time split among active ops" if has_device else "host time of top-level ops",
        "ops_on_other_threads": other_thread_ops,
        "input_shapes": info_shapes,
    }
    if other_thread_ops:
        log.warning(
            "%s: %d top-level ops ran on threads other than the dispatching one; they overlap it and are not "
            "rows (counted in info.ops_on_other_threads)",
            path,
            other_thread_ops,
        )
    optable.check(df, source=str(path))
    return df, info


def normalize_many(paths, **kwargs):
    """Normalize several traces of one run (one per profiler cycle) into one table; iteration numbers come
    from each trace's ``ProfilerStep#N`` and must not repeat."""
    import pandas as pd

    paths = sorted(paths, key=_cycle_number)
    if not paths:
        raise TraceFormatError("no trace files given")
    frames, infos = [], []
    for path in paths:
        df, info = normalize(path, **kwargs)
        frames.append(df)
        infos.append(info)
    df = pd.concat(frames, ignore_index=True)
    if df[df["group"] == tax.IDLE]["iteration"].duplicated().any():
        raise TraceFormatError(f"iteration numbers repeat across {', '.join(map(str, paths))}")
    info = dict(infos[0])
    info.update(
        trace=[str(p) for p in paths],
        events=sum(i["events"] for i in infos),
        iterations=sum(i["iterations"] for i in infos),
        ops_on_other_threads=sum(i["ops_on_other_threads"] for i in infos),
        input_shapes="; ".join(sorted({i["input_shapes"] for i in infos})),
    )
    return df, info


def _cycle_number(path) -> tuple[int, str]:
    m = re.search(r"\.(\d+)\.json(\.gz)?$", str(path))
    return (int(m.group(1)) if m else -1, str(path))


def _join_shapes(df, shapes_trace: str | Path, taxonomy: tax.Taxonomy) -> str:
    """Fill ``input_shapes`` in place from a one-iteration shapes profile; say what happened."""
    shapes_df, _ = normalize(shapes_trace, taxonomy=taxonomy)
    first = shapes_df[shapes_df["iteration"] == shapes_df["iteration"].min()]
    ref_ops = first["op"].tolist()
    ref_shapes = first["input_shapes"].tolist()
    joined = mismatched = 0
    for idx in df.groupby("iteration").groups.values():
        if df.loc[idx, "op"].tolist() == ref_ops:
            df.loc[idx, "input_shapes"] = ref_shapes
            joined += 1
        else:
            mismatched += 1
    return f"joined from {Path(shapes_trace).name}: {joined} iteration(s) matched, {mismatched} did not"


def _iteration_source(windows: list, iteration_marker: str | None) -> str:
    if _PROFILER_STEP.match(windows[0][3]):
        return "ProfilerStep#N ranges"
    if windows[0][3] == "whole trace":
        return "whole trace (no ProfilerStep or marker ranges)"
    return f"ranges matching {iteration_marker!r}"


def _lower(evs: list[HostEvent], start: float) -> int:
    lo, hi = 0, len(evs)
    while lo < hi:
        mid = (lo + hi) // 2
        if evs[mid].ts < start - 1e-3:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _append(cols, platform, device, backend, model, batch_size, seq_len, iteration, seq, **values) -> None:
    cols["platform"].append(platform)
    cols["device"].append(device)
    cols["backend"].append(backend)
    cols["model"].append(model)
    cols["batch_size"].append(batch_size)
    cols["seq_len"].append(seq_len)
    cols["iteration"].append(iteration)
    cols["seq"].append(seq)
    cols["node"].append("")
    cols["fused_ops"].append([])
    for k, v in values.items():
        cols[k].append(v)
