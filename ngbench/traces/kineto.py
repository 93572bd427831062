"""PyTorch profiler (Kineto) Chrome-trace JSON -> unified op table rows.

Streaming: PyTorch's own exporter layout is decoded with msgspec ~8 MiB of events at a time (only the fields
we need, typed), any other layout streams through ijson; events are kept as compact tuples, so a 1 GB trace
does not become 10 GB of Python dicts. ``benchmarks/normalize.py`` measures speed and memory.

Attribution (DESIGN.md section 5, issue 3):
- Iterations are ``ProfilerStep#N`` ranges, else ranges whose name matches ``iteration_marker``, else the
  whole trace (first to last recorded activity). A range is clipped to the profiler's ``Record Window End``
  (some tools close step ranges long after recording stopped).
- Rows are *top-level* ops: ``cpu_op`` events on the dispatching thread with no enclosing ``cpu_op``.
  Module scopes (our ``ngb.module::`` ranges, or ``nn.Module: X_N`` python-function events of a user's
  ``with_stack`` trace), compiled-region wrappers and composite attention ops (``transparent_ops`` in the
  taxonomy) are transparent: they set the op's module, their children are the rows.
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

import bisect
import gc
import gzip
import json
import logging
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import ijson
import msgspec

from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.traces.intervals import split_busy_time, union_length

log = logging.getLogger(__name__)

MODULE_SCOPE_PREFIX = "ngb.module::"
_NN_MODULE = re.compile(r"^nn\.Module: (?P<cls>[A-Za-z_][\w]*?)(?:_\d+)?$")
_PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "hip_runtime", "hip_driver", "Runtime", "Driver"}
HOST_CATS = {"cpu_op", "user_annotation", "python_function", "Operator"}

# event kinds on a host thread, in tie-break order (an enclosing range sorts before what it encloses)
MARKER, SCOPE, OP, RUNTIME = 0, 1, 2, 3


class TraceFormatError(ValueError):
    pass


class _Args(msgspec.Struct, gc=False):
    correlation: int | None = None
    input_dims: list | None = msgspec.field(name="Input Dims", default=None)


class Event(msgspec.Struct, gc=False):
    """The fields of a Chrome-trace event that the normalizer reads; everything else is skipped unparsed."""

    ph: str = ""
    cat: str | None = None
    name: str = ""
    ts: float = 0.0
    dur: float = 0.0
    pid: int | str | None = None
    tid: int | str | None = None
    args: _Args | None = None


# A host-thread event: (ts, -dur, kind, end, name, extra). Plain tuples sort in the order the nesting sweep
# needs (earlier first, enclosing before enclosed, marker/scope before op at ties); extra is the op's input
# shapes (OP) or the launch's correlation id (RUNTIME).
HostEvent = tuple


@dataclass
class ParsedTrace:
    threads: dict[tuple[Any, Any], list[HostEvent]] = field(default_factory=lambda: defaultdict(list))
    # correlation id -> list of (start, end, kernel name) device intervals
    device: dict[int, list[tuple[float, float, str]]] = field(default_factory=lambda: defaultdict(list))
    orphan_device: list[tuple[float, float, str]] = field(default_factory=list)
    markers: list[tuple[float, float, str]] = field(default_factory=list)
    last_end: float = float("-inf")
    first_ts: float = float("inf")
    record_end: float = float("inf")  # the profiler's "Record Window End" instant, when written
    n_events: int = 0
    parser: str = ""


def _open(path: Path) -> IO[bytes]:
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    return gzip.GzipFile(fileobj=f) if magic == b"\x1f\x8b" else f


_DECODER = msgspec.json.Decoder(list[Event])
_KINETO_START = re.compile(rb'"traceEvents"\s*:\s*\[\s*\n  \{')
_KINETO_SEP = b"\n  },\n  {"  # between two events of PyTorch's own exporter (JSON strings hold no raw newline)
_KINETO_END = re.compile(rb"\n  \}\s*\n?\s*\]")
CHUNK_BYTES = 8 << 20


def _kineto_batches(f: IO[bytes]) -> Iterator[list[Event]] | None:
    """Fast path for PyTorch's own exporter layout (one event per ``\n  {`` block): decode ~8 MiB of
    events at a time with msgspec, so memory stays bounded. Returns None when the layout differs."""
    head = f.read(CHUNK_BYTES)
    m = _KINETO_START.search(head)
    if not m:
        return None

    def batches() -> Iterator[list[Event]]:
        buf, pos = head, m.end() - 1  # pos at the "{" of the first event
        while True:
            more = f.read(CHUNK_BYTES)
            if not more:  # the rest of the array is in buf
                tail = _KINETO_END.search(buf, pos)
                if tail is None:
                    raise TraceFormatError("the traceEvents array does not end as PyTorch writes it")
                yield _DECODER.decode(b"[" + buf[pos : tail.start() + 4] + b"]")
                return
            cut = buf.rfind(_KINETO_SEP, pos)
            if cut != -1:  # every event up to the last complete one
                yield _DECODER.decode(b"[" + buf[pos : cut + 4] + b"]")
                buf, pos = buf[cut + len(_KINETO_SEP) - 1 :], 0
            buf += more

    return batches()


def _generic_batches(f: IO[bytes]) -> Iterator[list[Event]]:
    """Any Chrome-trace JSON (minified, other exporters): stream events with ijson."""
    batch: list[Event] = []
    for item in ijson.items(f, "traceEvents.item", use_float=True):
        batch.append(msgspec.convert(item, Event, strict=False))
        if len(batch) == 65536:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_event_batches(path: str | Path) -> tuple[str, Iterator[list[Event]]]:
    """(parser used, batches of events) of the ``traceEvents`` array of a trace file (gzipped or not)."""
    p = Path(path)
    if not p.is_file():
        raise TraceFormatError(f"{p}: no such trace file")

    def guarded(it: Iterator[list[Event]]) -> Iterator[list[Event]]:
        try:
            yield from it
        except (
            ijson.JSONError,
            ijson.IncompleteJSONError,
            msgspec.ValidationError,
            msgspec.DecodeError,
            OSError,
            EOFError,
            TraceFormatError,
        ) as exc:
            raise TraceFormatError(
                f"{p}: not a readable Kineto/Chrome trace (expected a JSON object with a 'traceEvents' array): {exc}"
            ) from exc

    try:
        fast = _kineto_batches(_open(p))
    except (OSError, EOFError) as exc:
        raise TraceFormatError(f"{p}: cannot read: {exc}") from exc
    if fast is not None:
        return "msgspec (PyTorch exporter layout)", guarded(fast)
    return "ijson (generic)", guarded(_generic_batches(_open(p)))


def _shapes(args: _Args | None) -> str:
    dims = args.input_dims if args is not None else None
    return sys.intern(json.dumps(dims, separators=(",", ":"))) if dims else ""


SKIP, DEVICE = -1, 4


def _kind(cat: str | None, name: str, marker: re.Pattern | None, transparent: re.Pattern) -> int:
    """What a (category, name) pair is to the normalizer; cached per distinct pair."""
    if cat in DEVICE_CATS:
        return DEVICE
    if cat in RUNTIME_CATS:
        return RUNTIME
    if cat not in HOST_CATS:
        return SKIP
    if _PROFILER_STEP.match(name) or (marker is not None and marker.search(name)):
        return MARKER
    if name.startswith(MODULE_SCOPE_PREFIX) or (cat == "python_function" and _NN_MODULE.match(name)):
        return SCOPE
    if transparent.search(name):  # wrappers and composite ops: their children are the rows
        return SCOPE
    if cat in ("python_function", "user_annotation"):
        return SKIP  # user ranges and Python frames: neither ops nor module scopes
    return OP


def collect(path: str | Path, marker: re.Pattern | None = None, taxonomy: tax.Taxonomy | None = None) -> ParsedTrace:
    transparent = (taxonomy or tax.load()).transparent
    pt = ParsedTrace()
    kinds: dict[tuple[str | None, str], tuple[int, str]] = {}
    threads, device = pt.threads, pt.device
    first_ts, last_end = pt.first_ts, pt.last_end
    pt.parser, batches = iter_event_batches(path)
    for batch in batches:
        pt.n_events += len(batch)
        for ev in batch:
            if ev.ph != "X":
                if ev.ph == "i" and ev.name == "Record Window End":
                    pt.record_end = ev.ts
                continue
            cat, name = ev.cat, ev.name
            if cat == "Trace":  # the profiler's own span: not an activity
                continue
            known = kinds.get((cat, name))
            if known is None:
                known = kinds[(cat, name)] = (_kind(cat, name, marker, transparent), sys.intern(name))
            kind, name = known  # one shared string per distinct name: the event's own copy is freed
            ts = ev.ts
            end = ts + ev.dur
            if kind == MARKER:  # markers are clipped to the recorded span instead of bounding it
                pt.markers.append((ts, end, name))
                continue
            if ts < first_ts:
                first_ts = ts
            if end > last_end:
                last_end = end
            if kind == OP:
                threads[ev.pid, ev.tid].append((ts, -ev.dur, OP, end, name, _shapes(ev.args) if ev.args else ""))
            elif kind == SCOPE:
                threads[ev.pid, ev.tid].append((ts, -ev.dur, SCOPE, end, name, ""))
            elif kind == RUNTIME:
                corr = ev.args.correlation if ev.args is not None else None
                threads[ev.pid, ev.tid].append((ts, -ev.dur, RUNTIME, end, name, corr))
            elif kind == DEVICE:
                corr = ev.args.correlation if ev.args is not None else None
                (device[corr] if corr is not None else pt.orphan_device).append((ts, end, name))
    pt.first_ts, pt.last_end = first_ts, last_end
    return pt


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@lru_cache(maxsize=65536)
def _scope_module(name: str) -> tuple[str, str] | None:
    """(module path, module class) of a scope event; None for compiled-region wrappers."""
    if name.startswith(MODULE_SCOPE_PREFIX):
        path, _, cls = name[len(MODULE_SCOPE_PREFIX) :].rpartition("::")
        return path, cls
    m = _NN_MODULE.match(name)
    if m:
        return name[len("nn.Module: ") :], m.group("cls")
    return None


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
    markers = sorted(pt.markers)
    steps = [(ts, end, name) for ts, end, name in markers if _PROFILER_STEP.match(name)]
    if steps:
        for ts, end, name in steps:
            out.append((int(_PROFILER_STEP.match(name).group(1)), ts, min(end, pt.record_end), name))
    elif markers:
        for i, (ts, end, name) in enumerate(markers):
            out.append((i, ts, min(end, pt.record_end), name))
    elif pt.first_ts <= pt.last_end:
        out.append((0, pt.first_ts, pt.last_end, "whole trace"))
    return out


_EPS = 1e-3  # 1 ns: trace timestamps carry ns precision in us units


def _top_level_rows(
    events: list[HostEvent],
    lo: int,
    hi: int,
    device_correlations: dict | frozenset = frozenset(),
    starts: list[float] | None = None,
) -> list[_Row]:
    """Top-level ops among ``events[lo:hi]`` of one thread, with module scope and launched correlations.

    ``starts`` (the events' start times) may be given when the thread holds no runtime (launch) events:
    then nothing inside a top-level op matters and the sweep jumps over its children."""
    rows: list[_Row] = []
    ends: list[float] = []  # end time of each open range
    modules: list[tuple[str, str] | None] = []  # per open range: its module, for module-scope ranges
    current: tuple[str, tuple[str, ...]] | None = None  # (innermost module path, module types) of the stack
    owner: _Row | None = None  # the open top-level op
    owner_depth = -1
    i = lo
    while i < hi:
        ts, _negdur, kind, end, name, extra = events[i]
        i += 1
        while ends and ends[-1] <= ts + _EPS:
            ends.pop()
            if modules.pop() is not None:
                current = None
            if len(ends) == owner_depth:
                owner, owner_depth = None, -1
        if kind == RUNTIME:
            if owner is not None:
                if extra is not None:
                    owner.correlations.append(extra)
            elif extra in device_correlations:  # device work launched outside any op
                current = current or _module_state(modules)
                rows.append(_Row("", ts, ts, current[0], current[1], "", [extra]))
            continue
        if kind == OP and owner is None:
            current = current or _module_state(modules)
            owner = _Row(name, ts, end, current[0], current[1], extra, [])
            rows.append(owner)
            if starts is not None:  # skip the op's children: next event starting at or after its end
                i = bisect.bisect_left(starts, end - _EPS, i, hi)
                owner = None
                continue
            owner_depth = len(ends)
        ends.append(end)
        if kind == SCOPE:
            module = _scope_module(name)
            modules.append(module)
            if module is not None:
                current = None
        else:
            modules.append(None)
    return rows


def _module_state(modules: list[tuple[str, str] | None]) -> tuple[str, tuple[str, ...]]:
    found = [m for m in reversed(modules) if m is not None]
    return (found[0][0] if found else "", tuple(m[1] for m in found))


def normalize(path: str | Path, **kwargs):
    """Parse one Kineto trace into an op-table DataFrame (closure checked) and an info dict.

    Keyword arguments: ``platform, backend, model, batch_size, seq_len`` (labels of the rows),
    ``iteration_marker`` (regex naming iteration ranges when the trace has no ``ProfilerStep#N``),
    ``taxonomy``, and ``shapes_trace``: a separate profile of one iteration recorded with
    ``record_shapes=True``, whose shapes are joined to every iteration with the identical top-level op
    sequence (eager runs repeat exactly)."""
    with _no_gc():  # millions of short-lived tuples: the cyclic GC would rescan them again and again
        return _normalize(path, **kwargs)


def _normalize(
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

    taxonomy = taxonomy or tax.load()
    marker = re.compile(iteration_marker) if iteration_marker else None
    pt = collect(path, marker, taxonomy)
    starts: dict[Any, list[float]] = {}
    jump: dict[Any, list[float] | None] = {}
    for key, evs in pt.threads.items():
        evs.sort()
        starts[key] = [e[0] for e in evs]
        jump[key] = None if any(e[2] == RUNTIME for e in evs) else starts[key]
    has_device = bool(pt.device) or bool(pt.orphan_device)
    device = "cuda" if has_device else "cpu"
    windows = _windows(pt)
    if not windows:
        raise TraceFormatError(f"{path}: the trace holds no timed events")

    decisions: dict[tuple[str, tuple[str, ...]], tuple[str, str, bool]] = {}
    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    other_thread_ops = 0
    for iteration, w_start, w_end, _ in windows:
        # the dispatching thread: most top-level op time inside the window
        best_rows, best_busy = [], -1.0
        n_rows = 0
        for key, evs in pt.threads.items():
            lo = bisect.bisect_left(starts[key], w_start - _EPS)
            hi = bisect.bisect_left(starts[key], w_end)
            rows = _top_level_rows(evs, lo, hi, pt.device, jump[key])
            busy = sum(r.end - r.ts for r in rows)
            n_rows += len(rows)
            if busy > best_busy:
                best_rows, best_busy = rows, busy
        rows = best_rows
        other_thread_ops += n_rows - len(rows)

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
            share = split_busy_time(owned)
            iteration_time = iteration_end - w_start
            times = [share.get(i, 0.0) for i in range(len(rows))]
            device_times = [union_length(ivs) for ivs in own_intervals]
        else:
            iteration_time = w_end - w_start
            times = [max(0.0, min(r.end, w_end) - max(r.ts, w_start)) for r in rows]
            device_times = [None] * len(rows)

        n = len(rows) + 1
        cols["iteration"].extend([iteration] * n)
        cols["seq"].extend(range(n))
        cols["iteration_time_us"].extend([iteration_time] * n)
        for r, t, dt in zip(rows, times, device_times):
            key = (r.op, r.module_types)
            decision = decisions.get(key)
            if decision is None:
                d = taxonomy.classify(r.op, r.module_types, kind="torch")
                decision = decisions[key] = (d.group, d.source, taxonomy.is_gemm(d.group))
            cols["op"].append(r.op)
            cols["module"].append(r.module)
            cols["module_type"].append(r.module_types[0] if r.module_types else "")
            cols["group"].append(decision[0])
            cols["group_source"].append(decision[1])
            cols["is_gemm"].append(decision[2])
            cols["time_us"].append(t)
            cols["device_time_us"].append(dt)
            cols["host_time_us"].append(r.end - r.ts)
            cols["input_shapes"].append(r.shapes)
        optable.append_idle_row(cols, iteration_time - sum(times))
    pt.threads.clear()  # free the host events before the table is built: it lowers the peak memory
    starts.clear()
    jump.clear()
    cols["fused_ops"] = [()] * len(cols["op"])  # eager ops fuse nothing
    df = optable.frame(
        cols,
        platform=platform,
        device=device,
        backend=backend,
        model=model,
        batch_size=batch_size,
        seq_len=seq_len,
        node="",
    )
    if shapes_trace is not None:
        info_shapes = _join_shapes(df, shapes_trace, taxonomy)
    else:
        info_shapes = "from the trace itself" if any(cols["input_shapes"]) else "not recorded"
    info = {
        "trace": str(path),
        "events": pt.n_events,
        "parser": pt.parser,
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
    optable.check(df, source=str(path), types=False)  # types are checked when the table is written
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
