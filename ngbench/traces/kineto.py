"""PyTorch profiler (Kineto) Chrome-trace JSON -> unified op table rows, in named steps, one module each:
reading the file into typed events (:mod:`.kineto_reader`), collecting them per thread
(:mod:`.kineto_events`), the iteration windows (:mod:`.kineto_windows`), the nesting sweep that finds each
thread's top-level ops (:mod:`.kineto_nesting`) and time attribution (:mod:`.kineto_attribution`). This
module runs them and joins a shapes pass. ``benchmarks/normalize.py`` measures speed and memory.

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

import gc
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench.errors import InputError
from ngbench.traces import kineto_windows
from ngbench.traces.kineto_attribution import Decider, device_iterations, host_iterations
from ngbench.traces.kineto_events import collect
from ngbench.traces.kineto_nesting import TopLevelOp, top_level_ops
from ngbench.traces.kineto_reader import iter_event_batches

__all__ = ["normalize", "normalize_many", "iter_event_batches"]

log = logging.getLogger(__name__)

# categories of other profilers' traces, for a hint when a file holds no PyTorch events
_OTHER_FORMATS = {
    "Session": "an ONNX Runtime profile (--backend ort)",
    "Node": "an ONNX Runtime profile (--backend ort)",
}


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    exec_trace: str | Path | None = None,
    work_from_args: bool = True,
):
    taxonomy = taxonomy or tax.load()
    pt = collect(path, kineto_windows.compile_marker(iteration_marker), taxonomy)
    has_device = bool(pt.device) or bool(pt.orphan_device)
    _require_pytorch_events(pt, path, has_device)
    found = kineto_windows.find(pt, path)
    if not found.windows:
        raise InputError(f"{path}: no iteration range inside the recorded window (Record Window End)")
    thread_rows = _top_level_ops_per_thread(pt)
    decide = Decider(taxonomy, work_from_args)
    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    if has_device:
        other = device_iterations(pt, found.windows, thread_rows, decide, cols)
    else:
        other = host_iterations(found.windows, thread_rows, decide, cols)
    labels = {"platform": platform, "backend": backend, "model": model, "batch_size": batch_size, "seq_len": seq_len}
    df = optable.frame(cols, device="cuda" if has_device else "cpu", **labels)
    work_notes = dict(decide.work_notes.most_common(20))
    if shapes_trace is not None:  # the join decides the work: its reasons replace the timed trace's own
        info_shapes, work_notes = _join_shapes(df, shapes_trace, taxonomy, exec_trace)
    else:
        info_shapes = "from the trace itself" if any(cols["input_shapes"]) else "not recorded"
    info = {
        "trace": str(path),
        "events": pt.n_events,
        "parser": pt.parser,
        "iterations": len(found.windows),
        "iteration_source": kineto_windows.source(found.windows, iteration_marker),
        "iterations_after_record_window": found.after_record,
        "marker_ranges_enclosing_others": found.enclosing,
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
    _warn_other_threads(path, info, has_device)
    optable.check(df, source=str(path), types=False)  # types are checked when the table is written
    return df, info


def _require_pytorch_events(pt, path: str | Path, has_device: bool) -> None:
    if not pt.n_ops and not has_device:
        hint = next((_OTHER_FORMATS[c] for c in sorted(pt.categories) if c in _OTHER_FORMATS), None)
        raise InputError(
            f"{path}: no PyTorch operator or device events (X events of cat cpu_op, kernel, ...) among "
            f"{pt.n_events} events: expected a PyTorch profiler (Kineto) trace"
            + (f"; this looks like {hint}" if hint else "")
        )


def _top_level_ops_per_thread(pt) -> dict[Any, list[TopLevelOp]]:
    """Each host thread's top-level ops; the host events are freed as they are swept (a lower peak)."""
    thread_rows: dict[Any, list[TopLevelOp]] = {}
    for key in list(pt.threads):
        thread_rows[key] = top_level_ops(pt.threads.pop(key), pt.device, jump=key not in pt.launching_threads)
    return thread_rows


def _warn_other_threads(path: str | Path, info: dict, has_device: bool) -> None:
    if info["ops_on_other_threads"]:
        log.warning(
            "%s: %d top-level ops (%.1f us) ran on threads that are not rows (%s); they are counted in the "
            "info (ops_on_other_threads, other_threads_op_time_us), not added",
            path,
            info["ops_on_other_threads"],
            info["other_threads_op_time_us"],
            "no device work launched there" if has_device else "CPU-only: the dispatching thread's ops are rows",
        )


def normalize_many(paths, **kwargs):
    """Normalize several traces of one run (one per profiler cycle) into one table; iteration numbers come
    from each trace's ``ProfilerStep#N`` and must not repeat."""
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
