"""A run's raw trace files -> the unified op table, through the normalizer its backend's catalog entry names.
The workflow (a run's trace directory) and ``ngbench normalize`` (a trace directory, or a user's own files)
both describe the run as :class:`RunFiles` and call the same normalizer, so one run gives one table.

One normalizer per trace format and backend; each takes (:class:`RunFiles`, row labels) and returns (op table,
normalization info).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ngbench import catalog, names, onnx_graph
from ngbench import table as optable
from ngbench.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFiles:
    """What a normalizer reads of one run: the profiler's own files, and the tables joining them to the model."""

    traces: tuple[Path, ...]  # Kineto: one trace per measured cycle; ORT, TensorRT: the one profile
    shapes_trace: Path | None = None  # Kineto: the extra pass with record_shapes=True
    exec_trace: Path | None = None  # Kineto: the execution trace of that pass
    inductor_artifacts: Path | None = None  # Inductor: its per-compile artifacts (compile_<k>/ directories)
    nodes: Path | None = None  # ORT, TensorRT: our node table (nodes.json): node -> module scopes
    onnx: Path | None = None  # ORT, TensorRT: or the ONNX model itself (scopes from the dynamo exporter)
    optimized: Path | None = None  # ORT: the optimized graph it saved (attributes fused nodes)
    layers: Path | None = None  # TensorRT: the engine's layer information
    skip_runs: int = 0  # ORT: warm-up runs the profile holds
    iteration_marker: str | None = None  # Kineto: regex of the iteration ranges where there is no ProfilerStep#N

    @classmethod
    def of_run(cls, trace_dir: str | Path, backend: str, meta: dict | None = None) -> RunFiles:
        """The files one run of ``backend`` left in its trace directory (``meta``: its run record, if any)."""
        d = Path(trace_dir)
        glob = catalog.get(backend).trace_glob
        traces = tuple(sorted(d.glob(glob)))
        if not traces:
            raise InputError(f"{d}: no {glob} in it (the profiler's files of a {backend} run)")
        beside = {
            "shapes_trace": d / names.SHAPES_FILE,
            "exec_trace": d / names.EXEC_TRACE_FILE,
            "inductor_artifacts": d / names.INDUCTOR_ARTIFACT_DIR,
            "nodes": d / names.NODES_FILE,
            "layers": d / names.TRT_LAYERS_FILE,
        }
        found = {key: path for key, path in beside.items() if path.exists()}
        skip = ((meta or {}).get("run") or {}).get("profile_warmup_runs", 0)  # ORT's warm-up runs, if recorded
        return cls(traces=traces, skip_runs=skip, **found)


def kineto_run(files: RunFiles, labels: dict) -> tuple[pd.DataFrame, dict]:
    """PyTorch profiler traces: one per measured iteration, plus the shapes pass when recorded."""
    from ngbench.traces import kineto

    return kineto.normalize_many(
        list(files.traces),
        shapes_trace=files.shapes_trace,
        exec_trace=files.exec_trace,
        iteration_marker=files.iteration_marker,
        **labels,
    )


def inductor_run(files: RunFiles, labels: dict) -> tuple[pd.DataFrame, dict]:
    """Kineto traces of the compiled model, its kernels attributed through Inductor's own artifacts (none
    given: every kernel stays unattributed, and is counted)."""
    from ngbench.traces import inductor

    df, info = kineto_run(files, labels)
    info["inductor"] = inductor.attribute(df, files.inductor_artifacts)
    info["original_ops"] = info["inductor"].pop("original_ops")
    return df, info


def _node_table(files: RunFiles) -> tuple[dict[str, onnx_graph.NodeInfo], dict[str, int] | None]:
    """(node name -> module scopes, op counts of the original graph) from our node table or the ONNX model."""
    if files.nodes:
        return onnx_graph.read_nodes(files.nodes), onnx_graph.read_extra(files.nodes, "original_ops")
    if files.onnx:
        original = onnx_graph.load_graph(files.onnx)
        optimized = onnx_graph.load_graph(files.optimized) if files.optimized else None
        return onnx_graph.node_table(original, optimized), onnx_graph.op_counts(original)
    if files.optimized:
        raise InputError(f"{files.optimized}: an optimized graph needs the original (--onnx) it is joined to")
    return {}, None


def _one_profile(files: RunFiles, what: str) -> Path:
    if len(files.traces) != 1:
        raise InputError(f"{', '.join(map(str, files.traces))}: {what} reads one profile per run")
    return files.traces[0]


def ort_run(files: RunFiles, labels: dict) -> tuple[pd.DataFrame, dict]:
    """ONNX Runtime's profile, nodes joined to module scopes through the export's node table."""
    from ngbench.traces import ort

    nodes, original_ops = _node_table(files)
    profile = _one_profile(files, "ONNX Runtime")
    df, info = ort.normalize(profile, nodes=nodes, skip_runs=files.skip_runs, **labels)
    info["original_ops"] = original_ops
    return df, info


def trt_run(files: RunFiles, labels: dict) -> tuple[pd.DataFrame, dict]:
    """TensorRT's per-layer profile and layer information, layers joined to ONNX nodes where named."""
    from ngbench.traces import trt

    nodes, _ = _node_table(files)
    profile = _one_profile(files, "TensorRT")
    df, info = trt.normalize(profile, files.layers, nodes=nodes or None, **labels)
    if nodes:
        info["original_ops"] = dict(Counter(n.op_type for n in nodes.values()))
    return df, info


def normalize(backend: str, files: RunFiles, labels: dict) -> tuple[pd.DataFrame, dict]:
    """One run's files -> (op table, info), by the normalizer of ``backend``'s catalog entry."""
    return catalog.get(backend).load_normalizer()(files, labels)


def read_meta(trace_dir: str | Path) -> dict[str, Any]:
    path = Path(trace_dir) / names.META_FILE
    try:
        meta = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the run record ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({exc}); expected the run record a profiling job writes") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object (the run record), got {type(meta).__name__}")
    return meta


def normalize_run(
    trace_dir: str | Path, out: str | Path, *, platform: str, backend: str, model: str, batch_size: int
) -> dict:
    """Raw trace directory -> op table parquet (the run's metadata embedded). A run that did not succeed
    gives an empty table carrying its status and reason, so figures can say why the cell is empty."""
    trace_dir = Path(trace_dir)
    catalog.get(backend)  # an unknown backend fails before anything is read
    meta = read_meta(trace_dir)
    if meta.get("status") != names.STATUS_OK:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in optable.COLUMNS}).astype(optable.INT_COLUMNS)
        optable.write(df, out, run=meta)
        return meta
    labels = {
        "platform": platform,
        "backend": backend,
        "model": model,
        "batch_size": batch_size,
        "seq_len": meta.get("seq_len"),
    }
    df, info = normalize(backend, RunFiles.of_run(trace_dir, backend, meta), labels)
    meta["normalize"] = info
    optable.write(df, out, run=meta)
    log.info("%s: %d rows, %d iterations", out, len(df), info["iterations"])
    return meta
