"""A run's raw trace directory -> the unified op table, through the normalizer its backend's catalog entry
names. One normalizer per trace format; each takes (trace directory, the run's meta.json, row labels) and
returns (op table, normalization info).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ngbench import catalog, names, onnx_graph
from ngbench import table as optable
from ngbench.errors import InputError

log = logging.getLogger(__name__)


def kineto_run(trace_dir: Path, meta: dict, labels: dict) -> tuple[pd.DataFrame, dict]:
    """PyTorch profiler traces: one per measured iteration, plus the shapes pass when recorded."""
    from ngbench.traces import kineto

    traces = sorted(trace_dir.glob(names.KINETO_TRACE_GLOB))
    shapes = trace_dir / names.SHAPES_FILE
    exec_trace = trace_dir / names.EXEC_TRACE_FILE
    return kineto.normalize_many(
        traces,
        shapes_trace=shapes if shapes.is_file() else None,
        exec_trace=exec_trace if exec_trace.is_file() else None,
        **labels,
    )


def inductor_run(trace_dir: Path, meta: dict, labels: dict) -> tuple[pd.DataFrame, dict]:
    """Kineto traces of the compiled model, its kernels attributed through Inductor's own artifacts."""
    from ngbench.traces import inductor

    df, info = kineto_run(trace_dir, meta, labels)
    info["inductor"] = inductor.attribute(df, trace_dir / names.INDUCTOR_ARTIFACT_DIR)
    info["original_ops"] = info["inductor"].pop("original_ops")
    return df, info


def ort_run(trace_dir: Path, meta: dict, labels: dict) -> tuple[pd.DataFrame, dict]:
    """ONNX Runtime's profile, nodes joined to module scopes through the export's node table."""
    from ngbench.traces import ort

    nodes_file = trace_dir / names.NODES_FILE
    df, info = ort.normalize(
        trace_dir / names.ORT_PROFILE_FILE,
        nodes=onnx_graph.read_nodes(nodes_file),
        skip_runs=meta["run"]["profile_warmup_runs"],
        **labels,
    )
    info["original_ops"] = onnx_graph.read_extra(nodes_file, "original_ops")
    return df, info


def trt_run(trace_dir: Path, meta: dict, labels: dict) -> tuple[pd.DataFrame, dict]:
    """TensorRT's per-layer profile and layer information, layers joined to ONNX nodes where named."""
    from ngbench.traces import trt

    nodes_file = trace_dir / names.NODES_FILE
    nodes = onnx_graph.read_nodes(nodes_file) if nodes_file.is_file() else None
    df, info = trt.normalize(
        trace_dir / names.TRT_PROFILE_FILE, trace_dir / names.TRT_LAYERS_FILE, nodes=nodes, **labels
    )
    if nodes:
        info["original_ops"] = dict(Counter(n.op_type for n in nodes.values()))
    return df, info


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
    entry = catalog.get(backend)
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
    df, info = entry.load_normalizer()(trace_dir, meta, labels)
    meta["normalize"] = info
    optable.write(df, out, run=meta)
    log.info("%s: %d rows, %d iterations", out, len(df), info["iterations"])
    return meta
