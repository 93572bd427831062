"""PyTorch profiler (Kineto) Chrome-trace JSON -> unified op table rows.

Streaming: PyTorch's own exporter layout is decoded with msgspec ~8 MiB of events at a time (only the fields
we need, typed), any other layout streams through ijson; events are kept as compact tuples, so a 1 GB trace
does not become 10 GB of Python dicts. ``benchmarks/normalize.py`` measures speed and memory.

Attribution:
- Iterations are ``ProfilerStep#N`` ranges, else ranges whose name matches ``iteration_marker``, else the
  whole trace (first to last recorded activity). A range is clipped to the profiler's ``Record Window End``
  (some tools close step ranges long after recording stopped). Iteration windows never overlap: a step
  number that repeats, or steps that overlap by more than 1 us, are an error.
- Rows are *top-level* ops: ``cpu_op`` events with no enclosing ``cpu_op`` on their thread; ``node`` is the
  Dynamo compile id of the ``Torch-Compiled Region`` that ran the op (empty outside one). Module scopes
  (our ``ngb.module::`` ranges, or ``nn.Module: X_N`` python-function events of a user's ``with_stack``
  trace), compiled-region wrappers and composite attention ops (``transparent_ops`` in the taxonomy) are
  transparent: they set the op's module, their children are the rows.
- CPU-only trace: rows come from the *dispatching* thread (most top-level op time in the window) and
  ``time_us`` is the op's host time. The idle row holds the rest of the window (Python between ops, hooks,
  allocator), so per iteration the rows sum to the window exactly. Ops of other threads overlap it; their
  count and host time are reported in the info, never added.
- Trace with device activity (CUDA/ROCm kernels, memcpy, memset): every device interval inside the window
  counts, whichever thread launched it (forward on the main thread, backward on autograd's device thread):
  it joins its runtime launch by correlation id, and the launch joins the top-level op that encloses it on
  its own thread. Rows are the top-level ops of every thread that launches device work. Device work that
  straddles a window boundary is split at it (the part in the next window is that window's time, on the
  launching op's row there); device work with no launching op becomes a row named after the kernel.
  ``time_us`` splits the union of the window's device intervals among the rows active at each instant
  (equal shares where streams overlap), so it sums to the device busy time and idle = window - busy.
  ``device_time_us`` is the union of the row's device intervals inside the window; host and device time of
  one op are never summed. An op the taxonomy does not know is grouped by the kernels it launched
  (weighted by their device time) before it falls to ``Other``.
- Bad input (unreadable file, wrong layout, negative or non-finite times, overlapping steps, no PyTorch
  events) raises :class:`ngbench.errors.InputError` with one line naming the file and what was expected.
"""

from __future__ import annotations

import bisect
import gc
import gzip
import json
import logging
import math
import re
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import ijson
import msgspec
import pandas as pd

from ngbench import names, work
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.errors import MAX_DURATION_US, MAX_TIMESTAMP_US, InputError, bad_event_time
from ngbench.traces.intervals import split_busy_time, union_length

log = logging.getLogger(__name__)

_NN_MODULE = re.compile(r"^nn\.Module: (?P<cls>[A-Za-z_][\w]*?)(?:_\d+)?$")
_PROFILER_STEP = re.compile(r"^ProfilerStep#(\d+)$")
DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"}
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "hip_runtime", "hip_driver", "Runtime", "Driver"}
HOST_CATS = {"cpu_op", "user_annotation", "python_function", "Operator"}
# categories of other profilers' traces, for a hint when a file holds no PyTorch events
_OTHER_FORMATS = {
    "Session": "an ONNX Runtime profile (--backend ort)",
    "Node": "an ONNX Runtime profile (--backend ort)",
}
STEP_OVERLAP_TOLERANCE_US = 1.0
_NO_ARGS = work.unknown(
    "the trace recorded no input types (record_shapes off)"
)  # step ranges that overlap by at most this much are clipped, not rejected

# event kinds on a host thread, in tie-break order (an enclosing range sorts before what it encloses)
MARKER, SCOPE, OP, RUNTIME = 0, 1, 2, 3


class _Args(msgspec.Struct, gc=False):
    correlation: int | None = None
    input_dims: list | None = msgspec.field(name="Input Dims", default=None)
    input_type: list | None = msgspec.field(name="Input type", default=None)
    input_strides: list | None = msgspec.field(name="Input Strides", default=None)
    concrete_inputs: list | None = msgspec.field(name="Concrete Inputs", default=None)


class Event(msgspec.Struct, gc=False):
    """The fields of a Chrome-trace event that the normalizer reads; everything else is skipped unparsed."""

    ph: str = ""
    cat: str | None = None
    name: str = ""
    ts: float = math.nan  # absent: NaN, so a complete event (ph X) without its times is rejected, not placed at 0
    dur: float = math.nan
    pid: int | str | None = None
    tid: int | str | None = None
    args: _Args | None = None


# A host-thread event: (ts, -dur, kind, end, name, extra, args). Plain tuples sort in the order the nesting
# sweep needs (earlier first, enclosing before enclosed, marker/scope before op at ties); extra is the op's
# input shapes (OP) or the launch's correlation id (RUNTIME); args the op's recorded arguments (dims, types,
# strides, concrete values) as one JSON string when the trace recorded types, for its work (bytes, FLOPs).
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
    n_ops: int = 0
    categories: set[str] = field(default_factory=set)
    parser: str = ""


def _open(path: Path) -> IO[bytes]:
    f = open(path, "rb")  # noqa: SIM115 - the caller closes it (a stream outlives this call)
    magic = f.read(2)
    f.seek(0)
    return gzip.GzipFile(fileobj=f) if magic == b"\x1f\x8b" else f


_DECODER = msgspec.json.Decoder(list[Event])
_KINETO_START = re.compile(rb'"traceEvents"\s*:\s*\[\s*\n  \{')
_KINETO_SEP = b"\n  },\n  {"  # between two events of PyTorch's own exporter (JSON strings hold no raw newline)
_KINETO_END = re.compile(rb"\n  \}\s*\n?\s*\]")
CHUNK_BYTES = 8 << 20
# what a damaged or foreign file can raise while it is read and decoded
_READ_ERRORS = (
    ijson.JSONError,
    ijson.IncompleteJSONError,
    msgspec.MsgspecError,
    OSError,
    EOFError,
    zlib.error,
    ValueError,  # UnicodeDecodeError and number conversions
)


def _decode(segment: bytes) -> list[Event]:
    """msgspec skips keys it does not know without checking their bytes: a key damaged into invalid UTF-8
    would read as absent. The whole segment is checked first (a no-op pass for ASCII)."""
    if not segment.isascii():
        segment.decode("utf-8")  # raises UnicodeDecodeError (a ValueError): unreadable, one line
    return _DECODER.decode(segment)


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
                    raise InputError("the traceEvents array does not end as PyTorch writes it (truncated?)")
                yield _decode(b"[" + buf[pos : tail.start() + 4] + b"]")
                return
            cut = buf.rfind(_KINETO_SEP, pos)
            if cut != -1:  # every event up to the last complete one
                yield _decode(b"[" + buf[pos : cut + 4] + b"]")
                buf, pos = buf[cut + len(_KINETO_SEP) - 1 :], 0
            buf += more

    return batches()


_JSON_KINDS = {"start_map": "object", "start_array": "array", "string": "string", "number": "number",
               "boolean": "boolean", "null": "null"}  # fmt: skip


def _generic_prefix(f: IO[bytes], path: Path) -> str:
    """Where the events are in a Chrome trace that is not in PyTorch's own layout: the ``traceEvents`` array
    of the JSON object format, or the top-level array of the JSON array format (both in the Trace Event
    Format spec)."""
    keys: list[str] = []
    parser = ijson.parse(f, use_float=True)
    for prefix, event, value in parser:
        if prefix != "":
            continue
        if event == "start_array":
            return "item"
        if event == "map_key":
            if value == "traceEvents":
                _, kind, _ = next(parser)
                if kind != "start_array":
                    raise InputError(
                        f"{path}: 'traceEvents' is a JSON {_JSON_KINDS.get(kind, kind)}, expected an array of events"
                    )
                return "traceEvents.item"
            keys.append(str(value))
        elif event in _JSON_KINDS and event != "start_map":
            raise InputError(
                f"{path}: the file is a JSON {_JSON_KINDS[event]}, expected a Chrome trace (an object with a "
                "'traceEvents' array, or an array of events)"
            )
    shown = ", ".join(repr(k) for k in keys[:8]) or "none"
    raise InputError(f"{path}: no 'traceEvents' array (top-level keys: {shown}); expected a Kineto/Chrome trace")


def _generic_batches(f: IO[bytes], prefix: str) -> Iterator[list[Event]]:
    """Any Chrome-trace JSON (minified, other exporters): stream events with ijson."""
    batch: list[Event] = []
    for item in ijson.items(f, prefix, use_float=True):
        batch.append(msgspec.convert(item, Event, strict=False))
        if len(batch) == 65536:
            yield batch
            batch = []
    if batch:
        yield batch


_UNREADABLE = (
    "not a readable Kineto/Chrome trace (expected JSON, gzipped or not: an object with a 'traceEvents' array of "
    "event objects, or an array of event objects)"
)


def _first_line(exc: BaseException) -> str:
    """The error's type and first line (ijson's parse errors go on to draw a caret diagram)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()


def iter_event_batches(path: str | Path) -> tuple[str, Iterator[list[Event]]]:
    """(parser used, batches of events) of the ``traceEvents`` array of a trace file (gzipped or not)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such trace file" if not p.exists() else f"{p}: not a file")

    def guarded(it: Iterator[list[Event]]) -> Iterator[list[Event]]:
        try:
            yield from it
        except InputError as exc:
            raise InputError(f"{p}: {exc}" if not str(exc).startswith(str(p)) else str(exc)) from exc
        except _READ_ERRORS as exc:
            raise InputError(f"{p}: {_UNREADABLE}: {_first_line(exc)}") from exc

    try:
        fast = _kineto_batches(_open(p))
        if fast is not None:
            return "msgspec (PyTorch exporter layout)", guarded(fast)
        prefix = _generic_prefix(_open(p), p)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: {_UNREADABLE}: {_first_line(exc)}") from exc
    return "ijson (generic)", guarded(_generic_batches(_open(p), prefix))


def _shapes(args: _Args | None) -> str:
    dims = args.input_dims if args is not None else None
    return sys.intern(json.dumps(dims, separators=(",", ":"))) if dims else ""


def _recorded_args(args: _Args | None) -> str:
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
    if name.startswith(names.MODULE_SCOPE_PREFIX) or (cat == "python_function" and _NN_MODULE.match(name)):
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
    max_dur, max_ts = MAX_DURATION_US, MAX_TIMESTAMP_US  # locals: this loop runs once per event
    n_ops = 0
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
                known = kinds[(cat, name)] = (_kind(cat, name, marker, transparent), sys.intern(name))
                if cat:
                    pt.categories.add(cat)
            kind, name = known  # one shared string per distinct name: the event's own copy is freed
            ts, dur = ev.ts, ev.dur
            if not (0.0 <= dur < max_dur and -max_ts < ts < max_ts):  # also NaN: every comparison is False
                raise bad_event_time(path, pt.n_events + batch.index(ev), ev.name, ev.cat, ts, dur)
            end = ts + dur
            if kind == MARKER:  # markers are clipped to the recorded span instead of bounding it
                pt.markers.append((ts, end, name))
                continue
            if ts < first_ts:  # every recorded activity bounds the whole-trace window
                first_ts = ts
            if end > last_end:
                last_end = end
            if kind == OP:
                n_ops += 1
                a = ev.args
                threads[ev.pid, ev.tid].append(
                    (ts, -dur, OP, end, name, _shapes(a) if a else "", _recorded_args(a) if a else "")
                )
            elif kind == SCOPE:
                threads[ev.pid, ev.tid].append((ts, -dur, SCOPE, end, name, "", ""))
            elif kind == RUNTIME:
                corr = ev.args.correlation if ev.args is not None else None
                threads[ev.pid, ev.tid].append((ts, -dur, RUNTIME, end, name, corr, ""))
            elif kind == DEVICE:
                corr = ev.args.correlation if ev.args is not None else None
                (device[corr] if corr is not None else pt.orphan_device).append((ts, end, name))
        pt.n_events += len(batch)
    pt.first_ts, pt.last_end, pt.n_ops = first_ts, last_end, n_ops
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


COMPILED_REGION = re.compile(r"^Torch-Compiled Region: (?P<id>\S+)")  # torch.compile's range, with its compile id


@lru_cache(maxsize=65536)
def _scope_module(name: str) -> tuple[str, str] | str | None:
    """(module path, module class) of a module scope; the compile id of a compiled region (a str); None for
    other wrappers."""
    if name.startswith(names.MODULE_SCOPE_PREFIX):
        path, _, cls = name[len(names.MODULE_SCOPE_PREFIX) :].rpartition("::")
        return path, cls
    m = _NN_MODULE.match(name)
    if m:
        return name[len("nn.Module: ") :], m.group("cls")
    m = COMPILED_REGION.match(name)
    if m:
        return m.group("id")
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
    args: str = ""  # recorded arguments (_recorded_args), "" when the trace has none
    host: bool = True  # False: device work with no launching op (a row named after its kernel)
    node: str = ""  # the Dynamo compile id ("0/1") of the compiled region that ran the op, if any


@dataclass(frozen=True)
class Window:
    iteration: int
    start: float
    end: float
    name: str


def _windows(pt: ParsedTrace, path: str | Path) -> tuple[list[Window], int, int]:
    """(iteration windows sorted by start, how many ranges lay wholly after the record window, how many
    marker ranges enclosed other marker ranges and are no iteration). A range is clipped to the profiler's
    record window: some tools close the step range long after the profiler stopped recording. Windows never
    overlap: a repeated step number, or ranges overlapping by more than ``STEP_OVERLAP_TOLERANCE_US``, are
    an error."""
    markers = sorted(pt.markers, key=lambda m: (m[0], -m[1], m[2]))
    steps = [(ts, end, name) for ts, end, name in markers if _PROFILER_STEP.match(name)]
    out: list[Window] = []
    enclosing = 0
    if steps:
        seen: dict[int, float] = {}
        for ts, end, name in steps:
            number = int(_PROFILER_STEP.match(name).group(1))
            if number in seen:
                raise InputError(
                    f"{path}: {name} appears twice (at ts {seen[number]} and {ts}): expected one range per step"
                )
            seen[number] = ts
            out.append(Window(number, ts, min(end, pt.record_end), name))
    elif markers:
        leaves = _innermost(markers)
        enclosing = len(markers) - len(leaves)
        out = [Window(i, ts, min(end, pt.record_end), name) for i, (ts, end, name) in enumerate(leaves)]
    elif pt.first_ts <= pt.last_end:
        out.append(Window(0, pt.first_ts, pt.last_end, "whole trace"))
    kept = [w for w in out if w.end > w.start or (w.end == w.start and w.start < pt.record_end)]
    after_record = len(out) - len(kept)
    for i in range(1, len(kept)):
        prev, cur = kept[i - 1], kept[i]
        if cur.start < prev.end:
            if prev.end - cur.start > STEP_OVERLAP_TOLERANCE_US:
                raise InputError(
                    f"{path}: iteration ranges {prev.name!r} [{prev.start}, {prev.end}] and {cur.name!r} "
                    f"[{cur.start}, {cur.end}] overlap by {prev.end - cur.start:.3f} us: expected disjoint "
                    "iterations (use a more specific --iteration-marker)"
                )
            kept[i - 1] = Window(prev.iteration, prev.start, cur.start, prev.name)
    return kept, after_record, enclosing


def _innermost(markers: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Marker ranges that enclose no other marker range: a matching range around others is a phase (a
    benchmark's whole measure loop), not an iteration. ``markers`` sorted by start, longest first."""
    out = []
    for i, (ts, end, name) in enumerate(markers):
        encloses = any(s >= ts and e <= end for s, e, _ in markers[i + 1 : i + 1 + 64] if s < end)
        if not encloses:
            out.append((ts, end, name))
    return out


_EPS = 1e-3  # 1 ns: trace timestamps carry ns precision in us units


def _top_level_rows(events: list[HostEvent], device_correlations: dict | frozenset, jump: bool) -> list[_Row]:
    """Top-level ops of one thread (events sorted), with module scope and launched correlations.

    ``jump``: the thread holds no runtime (launch) events, so nothing inside a top-level op matters and the
    sweep jumps over its children. A range that starts inside another and ends after it (a damaged trace:
    one thread's ranges nest) is treated as ending with its parent."""
    rows: list[_Row] = []
    ends: list[float] = []  # end time of each open range
    modules: list[tuple[str, str] | str | None] = []  # per open range: its module, or compiled region id
    current: tuple[str, tuple[str, ...], str] | None = None  # (innermost module path, module types, region)
    owner: _Row | None = None  # the open top-level op
    owner_depth = -1
    starts = [e[0] for e in events] if jump else None
    i, hi = 0, len(events)
    while i < hi:
        ts, _negdur, kind, end, name, extra, recorded = events[i]
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
                rows.append(_Row("", ts, ts, current[0], current[1], "", [extra], node=current[2]))
            continue
        if ends and end > ends[-1]:
            end = ends[-1]  # a range cannot outlive its parent on one thread
        if kind == OP and owner is None:
            current = current or _module_state(modules)
            owner = _Row(name, ts, end, current[0], current[1], extra, [], node=current[2], args=recorded)
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


def _module_state(modules: list[tuple[str, str] | str | None]) -> tuple[str, tuple[str, ...], str]:
    found = [m for m in reversed(modules) if isinstance(m, tuple)]
    region = next((m for m in reversed(modules) if isinstance(m, str)), "")
    return (found[0][0] if found else "", tuple(m[1] for m in found), region)


def normalize(path: str | Path, **kwargs):
    """Parse one Kineto trace into an op-table DataFrame (closure checked) and an info dict.

    Keyword arguments: ``platform, backend, model, batch_size, seq_len`` (labels of the rows),
    ``iteration_marker`` (regex naming iteration ranges when the trace has no ``ProfilerStep#N``),
    ``taxonomy``, and ``shapes_trace``: a separate profile of one iteration recorded with
    ``record_shapes=True``, whose shapes are joined to every iteration with the identical top-level op
    sequence (eager runs repeat exactly)."""
    with _no_gc():  # millions of short-lived tuples: the cyclic GC would rescan them again and again
        return _normalize(path, **kwargs)


def compile_marker(iteration_marker: str | None) -> re.Pattern | None:
    if not iteration_marker:
        return None
    try:
        return re.compile(iteration_marker)
    except re.error as exc:
        raise InputError(f"--iteration-marker {iteration_marker!r}: not a valid regular expression: {exc}") from exc


class _Decider:
    """Group decisions, cached: the taxonomy's rule, then (for ops it does not know) the group of the
    kernels the op launched, weighted by their device time."""

    def __init__(self, taxonomy: tax.Taxonomy, work_from_args: bool = True):
        self.taxonomy = taxonomy
        self.work_from_args = work_from_args
        self.cache: dict[tuple, tuple[str, str, bool]] = {}
        self.kernel_cache: dict[str, str] = {}
        self.work_notes: Counter[str] = Counter()  # why an op's work is unknown, per reason

    def work(self, row: _Row, group: str) -> work.Work:
        """The op's work from its recorded arguments (a trace recorded with shapes), else unknown."""
        if not self.work_from_args:
            return work.NONE
        if not row.args or not row.host:
            if row.host:
                self.work_notes[_NO_ARGS.note] += 1
            return _NO_ARGS
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

    def __call__(self, op: str, module_types: tuple[str, ...], kernels: dict[str, float] | None):
        key = (op, module_types)
        decision = self.cache.get(key)
        if decision is None:
            d = self.taxonomy.classify(op, module_types, kind="torch")
            decision = self.cache[key] = (d.group, d.source, self.taxonomy.is_gemm(d.group))
        if decision[1] != "unknown" or not kernels:
            return decision
        by_group: dict[str, float] = defaultdict(float)
        for name, time in kernels.items():
            by_group[self.kernel_group(name)] += time
        by_group.pop(tax.OTHER, None)
        if not by_group:
            return decision
        best = max(by_group, key=lambda g: (by_group[g], g))
        return best, "kernels", self.taxonomy.is_gemm(best)


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
    exec_trace: str | Path | None = None,
    work_from_args: bool = True,
):
    taxonomy = taxonomy or tax.load()
    pt = collect(path, compile_marker(iteration_marker), taxonomy)
    has_device = bool(pt.device) or bool(pt.orphan_device)
    if not pt.n_ops and not has_device:
        hint = next((_OTHER_FORMATS[c] for c in sorted(pt.categories) if c in _OTHER_FORMATS), None)
        raise InputError(
            f"{path}: no PyTorch operator or device events (X events of cat cpu_op, kernel, ...) among "
            f"{pt.n_events} events: expected a PyTorch profiler (Kineto) trace"
            + (f"; this looks like {hint}" if hint else "")
        )
    windows, after_record, enclosing = _windows(pt, path)
    if not windows:
        raise InputError(f"{path}: no iteration range inside the recorded window (Record Window End)")

    thread_rows: dict[Any, list[_Row]] = {}
    for key, evs in pt.threads.items():
        evs.sort()
        jump = not any(e[2] == RUNTIME for e in evs)
        thread_rows[key] = _top_level_rows(evs, pt.device, jump)
    pt.threads.clear()  # free the host events before the table is built: it lowers the peak memory
    row_starts = {key: [r.ts for r in rows] for key, rows in thread_rows.items()}
    decide = _Decider(taxonomy, work_from_args)
    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    if has_device:
        other = _device_iterations(pt, windows, thread_rows, row_starts, decide, cols)
    else:
        other = _host_iterations(windows, thread_rows, row_starts, decide, cols)
    cols["fused_ops"] = [()] * len(cols["op"])  # eager ops fuse nothing
    df = optable.frame(
        cols,
        platform=platform,
        device="cuda" if has_device else "cpu",
        backend=backend,
        model=model,
        batch_size=batch_size,
        seq_len=seq_len,
    )
    work_notes = dict(decide.work_notes.most_common(20))
    if shapes_trace is not None:  # the join decides the work: its reasons replace the timed trace's own
        info_shapes, work_notes = _join_shapes(df, shapes_trace, taxonomy, exec_trace)
    else:
        info_shapes = "from the trace itself" if any(cols["input_shapes"]) else "not recorded"
    info = {
        "trace": str(path),
        "events": pt.n_events,
        "parser": pt.parser,
        "iterations": len(windows),
        "iteration_source": _iteration_source(windows, iteration_marker),
        "iterations_after_record_window": after_record,
        "marker_ranges_enclosing_others": enclosing,
        "device_activity": has_device,
        "time_basis": (
            "device busy time inside each iteration window, split among active ops (every launching thread)"
            if has_device
            else "host time of top-level ops on the dispatching thread"
        ),
        "input_shapes": info_shapes,
        "work_sources": {k: int(v) for k, v in df["work_source"].value_counts().items()},
        "work_unknown_reasons": work_notes,
        **other,
    }
    if info["ops_on_other_threads"]:
        log.warning(
            "%s: %d top-level ops (%.1f us) ran on threads that are not rows (%s); they are counted in the "
            "info (ops_on_other_threads, other_threads_op_time_us), not added",
            path,
            info["ops_on_other_threads"],
            info["other_threads_op_time_us"],
            "no device work launched there" if has_device else "CPU-only: the dispatching thread's ops are rows",
        )
    optable.check(df, source=str(path), types=False)  # types are checked when the table is written
    return df, info


def _in_window(rows: list[_Row], starts: list[float], w: Window) -> list[_Row]:
    lo = bisect.bisect_left(starts, w.start - _EPS)
    hi = bisect.bisect_left(starts, w.end)
    return rows[lo:hi]


def _host_iterations(windows, thread_rows, row_starts, decide: _Decider, cols) -> dict[str, Any]:
    """CPU-only: per window, the dispatching thread's top-level ops, each its host time in the window."""
    other_ops, other_time = 0, 0.0
    for w in windows:
        candidates = []
        for key, rows in thread_rows.items():
            rows = _in_window(rows, row_starts[key], w)
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
        _emit(cols, w, rows, times, none, [r.end - r.ts for r in rows], decide, none)
    return {"ops_on_other_threads": other_ops, "other_threads_op_time_us": other_time}


def _device_iterations(pt: ParsedTrace, windows, thread_rows, row_starts, decide: _Decider, cols) -> dict[str, Any]:
    """With device activity: every device interval inside a window, attributed to its launching op."""
    all_rows: list[_Row] = []
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
    row_index = {id(r): i for i, r in enumerate(all_rows)}

    # every device interval, owned by its launching row (an index) or by its kernel's name (no launch found)
    intervals: list[tuple[float, float, Any, str]] = []
    for corr, ivs in pt.device.items():
        owner = corr_owner.get(corr)
        intervals.extend((s, e, owner if owner is not None else name, name) for s, e, name in ivs)
    intervals.extend((s, e, name, name) for s, e, name in pt.orphan_device)
    kernels_by_row: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s, e, owner, name in intervals:
        if isinstance(owner, int):
            kernels_by_row[owner][name] += e - s

    starts = [w.start for w in windows]
    pieces: list[list[tuple[float, float, Any]]] = [[] for _ in windows]
    total = inside = unowned = 0.0
    for s, e, owner, _ in intervals:
        total += e - s
        if not isinstance(owner, int):
            unowned += e - s
        j = max(0, bisect.bisect_right(starts, s) - 1)
        while j < len(windows) and windows[j].start <= e:
            w = windows[j]
            lo, hi = max(s, w.start), min(e, w.end)
            if lo < hi or (lo == hi == s and w.start <= s < w.end):
                pieces[j].append((lo, hi, owner))
                inside += hi - lo
            j += 1

    other_ops, other_time = 0, 0.0
    launching_set = set(launching)
    for j, w in enumerate(windows):
        rows: list[_Row] = []
        local: dict[Any, int] = {}
        for key in launching:
            for r in _in_window(thread_rows[key], row_starts[key], w):
                local[row_index[id(r)]] = len(rows)
                rows.append(r)
        for key, krows in thread_rows.items():
            if key not in launching_set:
                mine = _in_window(krows, row_starts[key], w)
                other_ops += len(mine)
                other_time += sum(max(0.0, min(r.end, w.end) - max(r.ts, w.start)) for r in mine)
        owned: list[tuple[float, float, int]] = []
        for lo, hi, owner in pieces[j]:
            idx = local.get(owner)
            if idx is None:
                idx = local[owner] = len(rows)
                if isinstance(owner, int):
                    rows.append(all_rows[owner])
                else:  # device work no op launched: a row named after its kernel
                    rows.append(_Row(owner, lo, lo, "", (), "", [], host=False))
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
        host_times = [(r.end - r.ts if w.start - _EPS <= r.ts < w.end else 0.0) if r.host else None for r in ordered]
        kernels = [kernels_by_row.get(row_index[id(r)]) if r.host else {r.op: 1.0} for r in ordered]
        _emit(
            cols,
            w,
            ordered,
            [share.get(i, 0.0) for i in order],
            [union_length(own_ivs[i]) for i in order],
            host_times,
            decide,
            kernels,
        )
    return {
        "ops_on_other_threads": other_ops,
        "other_threads_op_time_us": other_time,
        "threads_launching_device_work": len(launching),
        "device_time_us": total,
        "device_time_outside_iterations_us": max(0.0, total - inside),
        "device_time_without_launching_op_us": unowned,
    }


def _emit(cols, w: Window, rows, times, device_times, host_times, decide: _Decider, kernels) -> None:
    """One iteration's rows and its Idle row, column by column."""
    n = len(rows) + 1
    iteration_time = w.end - w.start
    cols["iteration"].extend([w.iteration] * n)
    cols["seq"].extend(range(n))
    cols["iteration_time_us"].extend([iteration_time] * n)
    cache = decide.cache
    decisions = [
        (None if k else cache.get((r.op, r.module_types))) or decide(r.op, r.module_types, k)  # cached: no call
        for r, k in zip(rows, kernels)
    ]
    cols["op"].extend([r.op for r in rows])
    cols["node"].extend([r.node for r in rows])
    cols["module"].extend([r.module for r in rows])
    cols["module_type"].extend([r.module_types[0] if r.module_types else "" for r in rows])
    cols["group"].extend([d[0] for d in decisions])
    cols["group_source"].extend([d[1] for d in decisions])
    cols["is_gemm"].extend([d[2] for d in decisions])
    cols["time_us"].extend(times)
    cols["device_time_us"].extend(device_times)
    cols["host_time_us"].extend(host_times)
    cols["input_shapes"].extend([r.shapes for r in rows])
    works = [decide.work(r, d[0]) for r, d in zip(rows, decisions)]
    cols["bytes"].extend([w.bytes for w in works])
    cols["flops"].extend([w.flops for w in works])
    cols["work_source"].extend([w.source for w in works])
    cols["layout"].extend([w.layout for w in works])
    optable.append_idle_row(cols, iteration_time - sum(times))


def normalize_many(paths, **kwargs):
    """Normalize several traces of one run (one per profiler cycle) into one table; iteration numbers come
    from each trace's ``ProfilerStep#N`` and must not repeat."""
    import pandas as pd

    paths = sorted(paths, key=_cycle_number)
    if not paths:
        raise InputError("no trace files given")
    frames, infos = [], []
    for path in paths:
        df, info = normalize(path, **kwargs)
        frames.append(df)
        infos.append(info)
    df = pd.concat(frames, ignore_index=True)
    if df[df["group"] == tax.IDLE]["iteration"].duplicated().any():
        raise InputError(f"iteration numbers repeat across {', '.join(map(str, paths))}")
    info = dict(infos[0])
    info.update(
        trace=[str(p) for p in paths],
        iterations=sum(i["iterations"] for i in infos),
        input_shapes="; ".join(sorted({i["input_shapes"] for i in infos})),
    )
    for key, value in infos[0].items():  # counters add up over the cycles
        if key not in ("iterations",) and isinstance(value, int | float) and not isinstance(value, bool):
            info[key] = sum(i.get(key, 0) for i in infos)
    return df, info


def _cycle_number(path) -> tuple[int, str]:
    m = re.search(r"\.(\d+)\.json(\.gz)?$", str(path))
    return (int(m.group(1)) if m else -1, str(path))


WORK_COLUMNS = ("bytes", "flops", "work_source", "layout")


def _join_shapes(
    df, shapes_trace: str | Path, taxonomy: tax.Taxonomy, exec_trace: str | Path | None = None
) -> tuple[str, dict[str, int]]:
    """Fill ``input_shapes`` and the work columns in place from a one-iteration shapes profile (work from
    its recorded arguments, or exact from the execution trace recorded beside it); say what happened, and
    why the work of the rows that have none is unknown."""
    ref_ops, ref, notes, et_note = _shapes_reference(
        str(shapes_trace), str(exec_trace or ""), taxonomy, _stamp(shapes_trace), _stamp(exec_trace)
    )
    joined = mismatched = 0
    for idx in df.groupby("iteration").groups.values():
        if df.loc[idx, "op"].tolist() == ref_ops:
            for column, values in ref.items():
                df.loc[idx, column] = pd.Series(
                    values, index=idx, dtype=object if column in ("bytes", "flops") else None
                )
            joined += 1
        else:
            mismatched += 1
    for column in ("bytes", "flops"):
        df[column] = pd.to_numeric(df[column], errors="coerce")
    if mismatched:
        notes = {**notes, "the iteration's ops differ from the shapes pass's (not joined)": mismatched}
    return f"joined from {Path(shapes_trace).name}: {joined} iteration(s) matched, {mismatched} did not{et_note}", notes


def _stamp(path: str | Path | None) -> tuple[int, int]:
    """(size, mtime) of a file: a file rewritten in place is read again, not taken from the cache."""
    if not path:
        return (0, 0)
    st = Path(path).stat()
    return (st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4)
def _shapes_reference(shapes_trace: str, exec_trace: str, taxonomy: tax.Taxonomy, *_stamps):
    """(op sequence, per-column values, work notes, what the execution trace gave) of the shapes pass's first
    iteration: read once per run, however many timed traces join it. With an execution trace, the work
    comes from it and the shapes trace's own arguments are not run on meta."""
    shapes_df, shapes_info = normalize(shapes_trace, taxonomy=taxonomy, work_from_args=not exec_trace)
    notes = shapes_info["work_unknown_reasons"]
    first = shapes_df[shapes_df["iteration"] == shapes_df["iteration"].min()]
    ref = {c: first[c].tolist() for c in ("input_shapes", *WORK_COLUMNS)}
    et_note = ""
    if exec_trace:
        from ngbench.traces import torch_work

        ops = first[first["group"] != tax.IDLE]
        try:
            works = torch_work.exec_trace_ops(exec_trace, ops["group"].tolist(), taxonomy)
        except InputError as exc:  # fall back to the shapes trace's arguments
            shapes_df, shapes_info = normalize(shapes_trace, taxonomy=taxonomy)
            first = shapes_df[shapes_df["iteration"] == shapes_df["iteration"].min()]
            ref, notes = (
                {c: first[c].tolist() for c in ("input_shapes", *WORK_COLUMNS)},
                shapes_info["work_unknown_reasons"],
            )
            et_note = f"; execution trace not used ({exc})"
        else:
            for pos, w in enumerate(works):
                for column, value in zip(WORK_COLUMNS, (w.bytes, w.flops, w.source, w.layout)):
                    ref[column][pos] = value
            et_note, notes = f"; work from {Path(exec_trace).name}", {}
    return first["op"].tolist(), ref, notes, et_note


def _iteration_source(windows: list[Window], iteration_marker: str | None) -> str:
    if _PROFILER_STEP.match(windows[0].name):
        return "ProfilerStep#N ranges"
    if windows[0].name == "whole trace":
        return "whole trace (no ProfilerStep or marker ranges)"
    return f"ranges matching {iteration_marker!r}"
