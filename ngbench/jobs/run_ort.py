"""ONNX export (once per model and batch) and ONNX Runtime runs (ort: graph optimizations off; ort-opt:
ORT_ENABLE_ALL; the catalog entry's ``options`` say which)."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from ngbench import inputs, names, onnx_graph
from ngbench.jobs import model as model_job
from ngbench.jobs import records, trust

log = logging.getLogger(__name__)


def export(
    params: dict, *, batch_size: int, input_path: str, out: str, modules_out: str, threads: int | None = None
) -> dict:
    """Export the registry model (fp32, CPU) to ONNX, check it, verify it against PyTorch on the real input,
    and write the node -> module table. On error with ``on_error: record``: empty model files and a
    ``status: failed`` record whose reason the ORT runs and figures carry. ``params``:
    :func:`ngbench.jobs.settings.export_params`."""
    from ngbench.backends import onnx_export

    model, settings = params["model"], params["export"]
    report: dict[str, Any] = {"model": model["name"], "batch_size": batch_size}
    what = f"ONNX export of {model['name']} bs{batch_size}"
    with records.failure_recorded(params["on_error"], report, what, prefix="ONNX export: "):
        tensors, report["inputs"] = inputs.load(input_path)
        records.input_failed(report["inputs"])
        built = model_job.build(model, tensors, "float32", settings["attn_implementation"], report)
        report.update(onnx_export.export(built, tensors, out, opset=settings["opset"]))
        onnx_export.check(out)
        report["checker"] = "onnx.checker.check_model: passed"
        report["verify"] = onnx_export.verify(
            built, tensors, out, tolerance=settings["export_tolerance"], threads=params["threads"] or threads
        )
        onnx_export.save_feed(tensors, out, onnx_export.feed_path(out))
        nodes = onnx_graph.node_modules(onnx_graph.load_graph(out))
        report["nodes"] = len(nodes)
        report["nodes_with_module"] = sum(1 for n in nodes.values() if n.module)
        report["status"] = names.STATUS_OK
        onnx_graph.write_nodes(nodes, modules_out, export=report)
        log.info("%s: %d nodes, %d with a module scope", out, report["nodes"], report["nodes_with_module"])
    if report.get("status") != names.STATUS_OK:  # leave the declared outputs, empty
        records.write_empty(out, onnx_export.data_path(out), onnx_export.feed_path(out))
        onnx_graph.write_nodes({}, modules_out, export=report)
    data = onnx_export.data_path(out)
    if not data.exists():  # a model without initializers has no weights file; the rule declares one
        data.write_bytes(b"")
    return report


def run(params: dict, *, batch_size: int, files: dict, trace_dir: str, latency_out: str, threads: int | None = None):
    """ORT latency + profile for one run. ``files``: ``batch``, ``onnx`` and ``modules`` (the export)."""
    from ngbench.backends import ort

    settings, device = params["settings"], params["device"]
    meta = records.run_meta(params, batch_size)
    what = f"{params['backend']}/{params['model']['name']} bs{batch_size} on {params['platform']}"
    with records.failure_recorded(params["on_error"], meta, what):
        records.require_packages(params["backend"])
        export = records.export_record(files["modules"])
        meta["export"] = {k: v for k, v in export.items() if k != "inputs"}
        meta["model_provenance"] = export.get("model_provenance")
        records.require_ok(export, "ONNX export")
        tensors, meta["inputs"] = inputs.load(files["batch"])
        record, meta["trust"] = trust.measure(
            lambda: ort.run(
                files["onnx"],
                tensors,
                optimized=params["options"]["graph_optimization"] == "all",
                device=device,
                trace_dir=trace_dir,
                warmup=settings["warmup"],
                iterations=settings["iterations"],
                profile_iterations=settings["profile_iterations"],
                intra_op_threads=settings["threads"] or threads,
                inter_op_threads=settings["inter_op_threads"],
                provider_options=settings["cuda_provider_options"],
                dtype=settings["dtype_cuda"] if names.is_cuda(device) else "float32",
            ),
            params["trust"],
            what,
            reset=lambda: shutil.rmtree(trace_dir, ignore_errors=True),
        )
        meta.update(status=names.STATUS_OK, run=record)
    records.write_run_outputs(meta, trace_dir, latency_out)
    return meta
