"""ONNX Runtime profile (``SessionOptions.enable_profiling``) -> op table rows.

The profile is a JSON array of trace events. What it holds, per ``InferenceSession.run``:

* one ``cat: "Session"`` event ``model_run``: the run's window (the closure target);
* per executed node, ``cat: "Node"`` events ``<node>_kernel_time`` (``args.op_name``, ``args.provider``,
  ``args.input_type_shape``) and, in some versions and providers, ``<node>_fence_before`` /
  ``<node>_fence_after`` (waits on the node's input and output fences: counted as the node's time);
* with a CUDA-profiling build, ``cat: "Kernel"`` device events listed right after the node that launched
  them (or naming it in ``args.parent_name``): then a node's time is its share of device busy time and the
  host-side node time is kept in ``host_time_us``; without them times are host-side, and the run's info
  says so.

Rows: ``op`` = the ONNX op type, ``node`` = the node name; per run, Σ node time + an explicit
``session overhead`` row (group ``Idle``) = ``model_run``. With the exporter's node table
(:mod:`ngbench.onnx_graph`), each node gets its module, and each fused node its constituents
(``fused_ops``), and the group follows the same rule as PyTorch's.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from ngbench import names
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench import work as wk
from ngbench.errors import InputError, bad_event_time, implausible_time
from ngbench.onnx_graph import NodeInfo
from ngbench.traces import graph_work
from ngbench.traces.intervals import split_busy_time, union_length

log = logging.getLogger(__name__)
SESSION_OVERHEAD = "session overhead"
_NODE_SUFFIXES = ("_kernel_time", "_fence_before", "_fence_after")


class _Args(msgspec.Struct, gc=False):
    op_name: str | None = None
    provider: str | None = None
    input_type_shape: list[dict[str, list[int]]] | None = None
    output_type_shape: list | None = None  # read for the work only: checked entry by entry (_tensors)
    parent_name: str | None = None


class _Event(msgspec.Struct, gc=False):
    name: str = ""
    cat: str = ""
    ph: str = ""
    ts: float = math.nan  # absent: NaN, so a timed event without its times is rejected (_check_events)
    dur: float = math.nan
    args: _Args | None = None


def read_events(path: str | Path) -> list[_Event]:
    """The profile's events (the file as ORT writes it, or gzipped)."""
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read: {type(exc).__name__}: {exc}") from exc
    try:
        if not raw.isascii():
            raw.decode("utf-8")  # msgspec does not check the bytes of keys it skips
        events = msgspec.json.decode(raw, type=list[_Event])
    except msgspec.ValidationError as exc:
        raise InputError(f"{path}: not an ONNX Runtime profile (expected a JSON array of trace events): {exc}") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    return events


_TIMED_CATS = ("Session", "Node", "Kernel")


def _check_events(path: str | Path, events: list[_Event]) -> None:
    """Times of the events the normalizer reads are finite and not negative; no event appears twice."""
    seen: dict[tuple[str, str, float, float], int] = {}
    for i, e in enumerate(events):
        if e.cat not in _TIMED_CATS:
            continue
        if implausible_time(e.ts, e.dur):
            raise bad_event_time(path, i, e.name, e.cat, e.ts, e.dur)
        key = (e.cat, e.name, e.ts, e.dur)
        if key in seen:
            raise InputError(
                f"{path}: event {i} ({e.name[:60]!r}) repeats event {seen[key]} (same name, ts and dur): expected each "
                "event once (a profile written twice into one file?)"
            )
        seen[key] = i


def _split_node_name(name: str) -> tuple[str, str] | None:
    for suffix in _NODE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


def _tensors(entries: list | None) -> list[wk.TensorSpec]:
    """``[{"float": [1, 2]}, ...]`` (ORT's input/output_type_shape) -> tensor specs."""
    out = []
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        for dtype, dims in entry.items():
            if isinstance(dims, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
                out.append(wk.TensorSpec(tuple(dims), wk.canonical_dtype(dtype) or "float32"))
    return out


def _work(op: str, group: str, rec: NodeExecution, info: NodeInfo | None, taxonomy: tax.Taxonomy) -> wk.Work:
    """A node's work from its own recorded inputs and outputs (a fused node's, not its constituents')."""
    inputs, outputs = rec.inputs, rec.outputs
    if not inputs and not outputs:
        return wk.unknown("the profile records no input/output shapes for this node")
    constituents = [
        (f["op_type"], taxonomy.constituent_group(f["op_type"], f["module_types"], "onnx")) for f in info.fused
    ] if info is not None and info.fused else []  # fmt: skip
    return graph_work.node_work(
        op,
        group,
        inputs,
        outputs,
        source="graph",
        constituents=constituents,
        weight_bytes=graph_work.missing_weight_bytes(op, inputs, outputs),
    )


def _shapes(args: _Args | None) -> str:
    if args is None or not args.input_type_shape:
        return ""
    return json.dumps([dims for entry in args.input_type_shape for dims in entry.values()])


@dataclass(slots=True)
class NodeExecution:
    """One execution of a graph node: its span (with the waits around it) and the device kernels it ran."""

    node: str
    op: str  # the op type the profile names ("" when it names none)
    provider: str | None
    shapes: str
    inputs: list[wk.TensorSpec]
    outputs: list[wk.TensorSpec]
    ts: float
    end: float
    kernels: list[tuple[float, float, str]] = field(default_factory=list)


def normalize(
    path: str | Path,
    *,
    nodes: dict[str, NodeInfo] | None = None,
    skip_runs: int = 0,
    platform: str = "unknown",
    backend: str = "ort",
    model: str = "unknown",
    batch_size: int = 0,
    seq_len: int | None = None,
    taxonomy: tax.Taxonomy | None = None,
):
    """One ORT profile -> (op table DataFrame, info). ``skip_runs`` drops the first runs (warm-up runs made
    while profiling was on); ``nodes`` is the node table from the ONNX export (and optimized graph)."""
    taxonomy = taxonomy or tax.load()
    nodes = nodes or {}
    if isinstance(skip_runs, bool) or not isinstance(skip_runs, int) or skip_runs < 0:
        raise InputError(f"{path}: skip_runs is {skip_runs!r}, expected a whole number >= 0")
    events = read_events(path)
    _check_events(path, events)
    runs = _measured_runs(path, events, skip_runs)
    executions, has_device = _node_executions(events)
    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    ops_unnamed = _append_runs(cols, runs, executions, has_device, nodes, taxonomy)
    providers = sorted({r.provider or "" for r in executions} - {""})
    device = "cuda" if has_device or any("CUDA" in p or "Tensorrt" in p for p in providers) else "cpu"
    df = optable.frame(
        cols, platform=platform, device=device, backend=backend, model=model, batch_size=batch_size, seq_len=seq_len
    )
    info = {
        "trace": str(path),
        "events": len(events),
        "parser": "msgspec",
        "iterations": len(runs),
        "runs_skipped": skip_runs,
        "iteration_source": "model_run Session events",
        "device_activity": has_device,
        "providers": providers,
        "time_basis": (
            "device busy time of the nodes' Kernel events"
            if has_device
            else "host-side node time (_kernel_time events); no device Kernel events in this profile"
        ),
        # a GPU provider without Kernel events (stock onnxruntime-gpu wheels are built without CUDA
        # profiling): each node's time is its host Compute() span, its GPU time lands in session overhead
        "host_timed_on_device": names.is_cuda(device) and not has_device,
        "node_table": bool(nodes),
        "nodes_unknown_to_node_table": sorted({r.node for r in executions} - set(nodes))[:50] if nodes else [],
        "ops_without_op_name": ops_unnamed,
    }
    optable.check(df, source=str(path), types=False)
    return df, info


def _measured_runs(path: str | Path, events: list[_Event], skip_runs: int) -> list[tuple[float, float]]:
    """The profiled runs (model_run Session events) after the warm-up ones: disjoint, in order."""
    runs = sorted((e.ts, e.ts + e.dur) for e in events if e.cat == "Session" and e.name == "model_run")
    if not runs:
        raise InputError(f"{path}: no 'model_run' Session events: not an ONNX Runtime profile, or no run was profiled")
    for (s0, e0), (s1, e1) in zip(runs, runs[1:]):
        if s1 < e0:
            raise InputError(
                f"{path}: model_run events [{s0}, {e0}] and [{s1}, {e1}] overlap: expected one run after another "
                "(a damaged profile, or profiles of concurrent runs merged)"
            )
    if skip_runs >= len(runs):
        raise InputError(f"{path}: {len(runs)} run(s) profiled, all of them skipped (skip_runs={skip_runs})")
    return runs[skip_runs:]


def _node_executions(events: list[_Event]) -> tuple[list[NodeExecution], bool]:
    """(every node execution sorted by start, whether the profile holds device Kernel events). A node's
    fences widen its span; a kernel belongs to the node it names as parent, else the node listed before it."""
    executions: list[NodeExecution] = []
    latest: dict[str, NodeExecution] = {}  # node name -> its latest execution
    fence_before: dict[str, tuple[float, float]] = {}  # waits seen before the node's next execution
    kernels_seen = 0
    last: NodeExecution | None = None
    for e in events:
        if e.cat == "Node":
            split = _split_node_name(e.name)
            if split is None:
                continue
            node, part = split
            if part == "_fence_before":
                fence_before[node] = (e.ts, e.ts + e.dur)
                continue
            if part == "_fence_after":
                if node in latest:
                    latest[node].end = max(latest[node].end, e.ts + e.dur)
                continue
            start, end = e.ts, e.ts + e.dur
            if node in fence_before:
                f_start, f_end = fence_before.pop(node)
                start, end = min(start, f_start), max(end, f_end)
            a = e.args
            rec = NodeExecution(
                node=node,
                op=(a.op_name if a else None) or "",
                provider=a.provider if a else None,
                shapes=_shapes(a),
                inputs=_tensors(a.input_type_shape if a else None),
                outputs=_tensors(a.output_type_shape if a else None),
                ts=start,
                end=end,
            )
            executions.append(rec)
            latest[node] = last = rec
        elif e.cat == "Kernel":
            kernels_seen += 1
            parent = e.args.parent_name if e.args else None
            owner = latest.get(parent) if parent else last
            if owner is not None:
                owner.kernels.append((e.ts, e.ts + e.dur, e.name))
    executions.sort(key=lambda r: r.ts)
    return executions, kernels_seen > 0


def _append_runs(cols, runs, executions: list[NodeExecution], has_device: bool, nodes: dict[str, NodeInfo],
                 taxonomy: tax.Taxonomy) -> int:  # fmt: skip
    """Each run's node executions as rows (its session overhead as the Idle row); returns how many rows had no
    op name in the profile or the node table (named after their node)."""
    decisions: dict[str, tuple[str, str, bool]] = {}
    works: dict[str, wk.Work] = {}  # per node: its shapes are the same in every run
    ops_unnamed = 0
    idx = 0
    for iteration, (w_start, w_end) in enumerate(runs):
        while idx < len(executions) and executions[idx].ts < w_start:
            idx += 1
        rows = []
        while idx < len(executions) and executions[idx].ts < w_end:
            rows.append(executions[idx])
            idx += 1
        if has_device:
            owned = [(max(s, w_start), min(e, w_end), i) for i, r in enumerate(rows) for s, e, _ in r.kernels]
            device_times = [union_length([(s, e) for s, e, _ in r.kernels]) for r in rows]
        else:
            owned = [(max(r.ts, w_start), min(r.end, w_end), i) for i, r in enumerate(rows)]
            device_times = [None] * len(rows)
        share = split_busy_time(owned)  # overlapping nodes (parallel executor) share the time they overlap
        ops = optable.OpRows()
        for i, (r, dt) in enumerate(zip(rows, device_times)):
            info = nodes.get(r.node)
            op = r.op or (info.op_type if info else "")
            if not op:
                ops_unnamed += 1
                op = r.node
            decision = decisions.get(r.node)
            if decision is None:
                decision = decisions[r.node] = _decide(taxonomy, op, info)
            w = works.get(r.node)
            if w is None:
                w = works[r.node] = _work(op, decision[0], r, info, taxonomy)
            ops.add(
                op,
                node=r.node,
                module=info.module if info else "",
                module_type=info.module_type if info else "",
                group=decision[0],
                group_source=decision[1],
                is_gemm=decision[2],
                time_us=share.get(i, 0.0),
                device_time_us=dt,
                host_time_us=r.end - r.ts,
                input_shapes=r.shapes,
                fused_ops=_fused_ops(info),
                work=w,
            )
        optable.append_iteration(cols, iteration, w_end - w_start, ops.columns, idle_op=SESSION_OVERHEAD)
    return ops_unnamed


def _decide(taxonomy: tax.Taxonomy, op: str, info: NodeInfo | None) -> tuple[str, str, bool]:
    if info is None:
        d = taxonomy.classify(op, (), kind="onnx")
    elif info.fused:
        parts = [
            tax.Constituent(
                taxonomy.constituent_group(f["op_type"], f["module_types"], "onnx"), 1.0, bool(f.get("output"))
            )
            for f in info.fused
        ]
        d = taxonomy.classify_fused(op, info.module_types, parts, kind="onnx")
    else:
        d = taxonomy.classify(op, info.module_types, kind="onnx")
    return d.group, d.source, taxonomy.is_gemm(d.group)


def _fused_ops(info: NodeInfo | None) -> list[str]:
    if info is None:
        return []
    return [
        optable.fused_entry(f["op_type"], f["node"], f["module"], (f["module_types"] or [""])[0]) for f in info.fused
    ]
