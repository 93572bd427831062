"""TensorRT (CUDA platforms): the fp16 copy of an export, engine builds and profiled runs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ngbench import inputs, names
from ngbench.errors import Unavailable
from ngbench.jobs import records

log = logging.getLogger(__name__)


def convert_fp16(onnx_path: str, modules_path: str, out: str, *, on_error: str, modules_out: str | None = None) -> dict:
    """fp16 copy of an ONNX export (for TensorRT's strongly typed fp16 engines) and, to ``modules_out``, its
    node table (the converter's Cast nodes given their neighbours' modules), carrying the export's record.
    A failed export, or a failed conversion under ``on_error: record``, leaves empty model outputs and a
    node table without nodes whose record says why."""
    from ngbench import onnx_graph
    from ngbench.backends import onnx_export

    record: dict[str, Any] = {"onnx": onnx_path}
    nodes: dict = {}
    with records.failure_recorded(on_error, record, f"fp16 copy of {onnx_path}"):
        records.require_ok(records.export_record(modules_path), "ONNX export")
        record.update(onnx_export.to_fp16(onnx_path, out), status=names.STATUS_OK)
        if modules_out:
            nodes, record["cast_nodes_given_scopes"] = onnx_export.fp16_node_table(out)
    if record.get("status") != names.STATUS_OK:
        records.write_empty(out, onnx_export.data_path(out))
    if modules_out:
        export = records.export_record(modules_path)
        if record.get("status") != names.STATUS_OK and export.get("status") == names.STATUS_OK:
            export = {**export, "status": record.get("status"), "reason": f"fp16 copy: {record.get('reason')}"}
        onnx_graph.write_nodes(nodes, modules_out, export=export, fp16=record)
    log.info("%s: %s", out, record)
    return record


def build_engine(
    params: dict,
    *,
    model: str,
    batch_size: int,
    modules_path: str,
    onnx_path: str,
    plan: str,
    log_path: str,
    precision: str,
) -> dict:
    """ONNX export -> TensorRT engine. On error with ``on_error: record``: an empty plan and a ``.json``
    record beside it whose reason the profile job carries. ``params``:
    :func:`ngbench.jobs.settings.engine_params`."""
    from ngbench.backends import trt

    platform = params["platform"]
    record: dict[str, Any] = {"platform": platform, "model": model, "batch_size": batch_size}
    with records.failure_recorded(params["on_error"], record, f"TensorRT engine for {model} bs{batch_size}"):
        records.require_ok(records.export_record(modules_path), "ONNX export")
        record["onnx"] = str(onnx_path)
        if Path(onnx_path).stat().st_size == 0:
            raise records.UpstreamFailed(f"{onnx_path} is empty: its fp16 conversion failed (see its log)")
        record.update(
            trt.build_engine(
                onnx_path,
                plan,
                precision=precision,
                typing=params["typing"],
                timing_cache=Path(params["timing_cache_dir"]) / f"{platform}.cache",
                log_path=log_path,
                workspace_gib=params["workspace_gib"],
            )
        )
        record["status"] = names.STATUS_OK
    if record.get("status") != names.STATUS_OK:
        records.write_empty(plan)
    Path(f"{plan}.json").write_text(json.dumps(record, indent=2))
    return record


def run(params: dict, *, batch_size: int, files: dict, trace_dir: str, latency_out: str, threads: int | None = None):
    """TensorRT latency + per-layer profile + layer information; the export's node table is copied into the
    trace directory so the run normalizes anywhere, even where results/onnx is absent. Runs in the TensorRT
    env (no torch): the input batch comes as the export's numpy feed. ``files``: ``batch``, ``plan`` (+ its
    ``.json`` record), ``modules``, ``feed``."""
    from ngbench.backends import onnx_export, trt

    settings = params["settings"]
    meta = records.run_meta(params, batch_size)
    what = f"{params['backend']}/{params['model']['name']} bs{batch_size} on {params['platform']}"
    with records.failure_recorded(params["on_error"], meta, what):
        records.require_packages(params["backend"])
        engine = json.loads(Path(f"{files['plan']}.json").read_text())
        meta["engine"] = engine
        if engine.get("status") == names.STATUS_SKIPPED:
            raise Unavailable(engine.get("reason") or "TensorRT is not available here")
        records.require_ok(engine, "TensorRT engine build")
        meta["inputs"] = inputs.load_provenance(files["batch"])
        record = trt.run(
            files["plan"],
            onnx_export.load_feed(files["feed"]),
            trace_dir=trace_dir,
            warmup=settings["warmup"],
            iterations=settings["iterations"],
            profile_iterations=settings["profile_iterations"],
            use_cuda_graph=settings["cuda_graph"],
        )
        shutil.copy(files["modules"], Path(trace_dir) / names.NODES_FILE)
        meta.update(status=names.STATUS_OK, run=record)
    records.write_run_outputs(meta, trace_dir, latency_out)
    return meta
