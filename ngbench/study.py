"""The study's jobs, one function per workflow rule; ``workflow/scripts/*.py`` only bridge to these.

Each job takes plain paths and settings (no Snakemake objects), so it runs the same from the workflow, the
CLI or a test.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ngbench import env, inputs, registry
from ngbench import table as optable
from ngbench.errors import Unavailable

log = logging.getLogger(__name__)
STATUS_OK, STATUS_FAILED, STATUS_SKIPPED = "ok", "failed", "skipped"


# -- settings -------------------------------------------------------------------------------------------------
def model_settings(config: dict, model: str) -> dict[str, Any]:
    """Per-model settings: registry defaults overridden by ``config['models'][model]``. A model entry with
    ``base: <registry name>`` is a variant of that model under its own name (e.g. the paper's debug sizes),
    so its results never collide with the base model's."""
    specs = registry.load(config.get("custom_models"))
    over = (config.get("models") or {}).get(model) or {}
    spec = registry.get(over.get("base") or model, specs)
    layers = over.get("layers", config.get("layers"))
    return {
        "spec": spec,
        "batch_sizes": list(over.get("batch_sizes") or config.get("batch_sizes") or spec.batch_sizes),
        "seq_len": over.get("seq_len") or spec.seq_len if spec.is_text else None,
        "layers": layers,
        "weights": over.get("weights") or (config.get("weights") or {}).get("paths", {}).get(model),
    }


def platform_device(config: dict, platform: str) -> str:
    platforms = config.get("platforms") or {}
    if platform not in platforms:
        raise KeyError(f"config platforms: no platform {platform!r}; configured: {sorted(platforms)}")
    return platforms[platform]["device"]


# -- inputs ---------------------------------------------------------------------------------------------------
def make_inputs(config: dict, model: str, batch_size: int, out: str) -> dict:
    """The model's real input batch. On error with ``on_error: record``, an empty batch whose provenance
    says ``status: failed`` and why, so the run that reads it records the failure (and the figures say so)."""
    cfg_inputs = config.get("inputs") or {}
    try:
        s = model_settings(config, model)
        tensors, prov = inputs.make_batch(
            s["spec"],
            batch_size,
            seq_len=s["seq_len"],
            image_dir=cfg_inputs.get("image_dir"),
            wikitext=cfg_inputs.get("wikitext"),
            seed=cfg_inputs.get("seed", 0),
        )
        prov.update(model=model, batch_size=batch_size, status=STATUS_OK)
    except Exception as exc:  # noqa: BLE001 - becomes a record or a failed job
        if config.get("on_error", "record") == "fail":
            raise
        log.error("inputs for %s bs%d failed:\n%s", model, batch_size, traceback.format_exc())
        tensors, prov = {}, {"model": model, "batch_size": batch_size, "status": STATUS_FAILED, "reason": _reason(exc)}
    inputs.save(tensors, prov, out)
    log.info("wrote %s: %s", out, {k: list(v.shape) for k, v in tensors.items()})
    return prov


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    lines = _ANSI.sub("", str(exc)).splitlines()
    return lines[0] if lines else ""


@contextmanager
def _failure_recorded(config: dict, record: dict, what: str, prefix: str = "") -> Iterator[None]:
    """``on_error: record`` (default): an exception in the block becomes ``record``'s failed status and
    reason (the traceback goes to the job's log); ``on_error: fail``: it propagates and the job fails. An
    absent device or optional library (:class:`ngbench.errors.Unavailable`) is status ``skipped`` with its
    reason either way: nothing failed."""
    try:
        yield
    except Unavailable as exc:  # a device or optional library absent here: skipped, whatever on_error says
        log.warning("%s skipped: %s", what, exc)
        record.update(status=STATUS_SKIPPED, reason=f"{prefix}{_first_line(exc)[:300]}")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record or a failed job
        if config.get("on_error", "record") == "fail":
            raise
        log.error("%s failed:\n%s", what, traceback.format_exc())
        record.update(status=STATUS_FAILED, reason=f"{prefix}{_reason(exc)}")


class UpstreamFailed(RuntimeError):
    """A job this one depends on recorded a failure; its reason is carried as is."""


def _reason(exc: BaseException) -> str:
    """One line for figures and records: the error, and its root cause when it wraps one (exporters raise
    a generic error whose cause says what failed, e.g. a data-dependent guard in torchvision's NMS)."""
    if isinstance(exc, UpstreamFailed):
        return str(exc)[:300]
    text = f"{type(exc).__name__}: {_first_line(exc)[:120]}"
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is not exc:
        where = next((ln.strip() for ln in str(root).splitlines() if ln.startswith("Caused by:")), "")
        text = f"{text} <- {type(root).__name__}: {_first_line(root)} {where}".strip()
    return text[:300]


# -- torch eager and TorchInductor ----------------------------------------------------------------------------
def run_torch(
    config: dict,
    platform: str,
    model: str,
    batch_size: int,
    input_path: str,
    trace_dir: str,
    latency_out: str,
    backend: str = "torch",
) -> dict:
    """Unprofiled latency + profiled trace for one (platform, model, batch) under PyTorch eager
    (``backend="torch"``) or TorchInductor (``backend="inductor"``). On error, writes failure records
    (config ``on_error: record``) or raises (``on_error: fail``)."""
    from ngbench.backends import torch_eager

    if backend not in TORCH_BACKENDS:
        raise ValueError(f"run_torch: backend {backend!r}, expected one of {TORCH_BACKENDS}")
    settings = (config.get("backends") or {}).get(backend, {})
    device = platform_device(config, platform)
    meta = _run_meta(config, platform, backend, model, batch_size, settings)
    with _failure_recorded(config, meta, f"{backend}/{model} bs{batch_size} on {platform}"):
        torch_eager.require_device(device)  # before building anything
        tensors, input_prov = inputs.load(input_path)
        meta["inputs"] = input_prov
        if input_prov.get("status") == STATUS_FAILED:
            raise inputs.InputError(f"inputs: {input_prov.get('reason')}")
        dtype = settings.get("dtype_cuda" if device.startswith("cuda") else "dtype_cpu", "float32")
        built = build_model(config, model, tensors, dtype, settings.get("attn_implementation"), meta)
        if backend == "torch-int8":
            from ngbench.backends import int8

            built, meta["quantization"] = int8.quantize(
                built, device=device, dtype=dtype, threshold=settings.get("llm_int8_threshold", 6.0)
            )
        record = torch_eager.run(
            built,
            tensors,
            device=device,
            trace_dir=trace_dir,
            warmup=settings.get("warmup", 3),
            iterations=settings.get("iterations", 10),
            profile_iterations=settings.get("profile_iterations", 5),
            threads=settings.get("threads"),
            dtype=dtype,
            scope_modules=settings.get("scope_modules", True) and backend != "inductor",
            shapes_pass=settings.get("record_shapes", True) and backend != "inductor",
            compiler=_inductor_compiler(settings) if backend == "inductor" else None,
            move_model=backend != "torch-int8",
        )
        meta["environment"]["torch"] = env.torch_env()
        meta.update(status=STATUS_OK, run=record)
    _write_run_outputs(meta, trace_dir, latency_out)
    return meta


# -- ONNX export and ONNX Runtime -----------------------------------------------------------------------------
def export_onnx(config: dict, model: str, batch_size: int, input_path: str, out: str, modules_out: str) -> dict:
    """Export the registry model (fp32, CPU) to ONNX, check it, verify it against PyTorch on the real input,
    and write the node -> module table. On error with ``on_error: record``: empty model files and a
    ``status: failed`` record whose reason the ORT runs and figures carry."""
    from ngbench.backends import onnx_export
    from ngbench.traces import onnx_graph

    settings = (config.get("backends") or {}).get("ort", {})
    report: dict[str, Any] = {"model": model, "batch_size": batch_size}
    with _failure_recorded(config, report, f"ONNX export of {model} bs{batch_size}", prefix="ONNX export: "):
        tensors, input_prov = inputs.load(input_path)
        report["inputs"] = input_prov
        if input_prov.get("status") == STATUS_FAILED:
            raise inputs.InputError(f"inputs: {input_prov.get('reason')}")
        built = build_model(config, model, tensors, "float32", settings.get("attn_implementation", "eager"), report)
        report.update(onnx_export.export(built, tensors, out, opset=settings.get("opset")))
        onnx_export.check(out)
        report["checker"] = "onnx.checker.check_model: passed"
        report["verify"] = onnx_export.verify(
            built, tensors, out, tolerance=settings.get("export_tolerance", 1e-3), threads=settings.get("threads")
        )
        onnx_export.save_feed(tensors, out, onnx_export.feed_path(out))
        nodes = onnx_graph.node_modules(onnx_graph.load_graph(out))
        report["nodes"] = len(nodes)
        report["nodes_with_module"] = sum(1 for n in nodes.values() if n.module)
        report["status"] = STATUS_OK
        onnx_graph.write_nodes(nodes, modules_out, export=report)
        log.info("%s: %d nodes, %d with a module scope", out, report["nodes"], report["nodes_with_module"])
    if report.get("status") != STATUS_OK:  # leave the declared outputs, empty
        for path in (out, onnx_export.data_path(out), onnx_export.feed_path(out)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(b"")
        onnx_graph.write_nodes({}, modules_out, export=report)
    data = onnx_export.data_path(out)
    if not data.exists():  # a model without initializers has no weights file; the rule declares one
        data.write_bytes(b"")
    return report


def run_ort(
    config: dict,
    platform: str,
    backend: str,
    model: str,
    batch_size: int,
    onnx_path: str,
    modules_path: str,
    input_path: str,
    trace_dir: str,
    latency_out: str,
) -> dict:
    """ORT latency + profile for one (platform, backend in ort / ort-opt, model, batch)."""
    from ngbench.backends import ort

    settings = (config.get("backends") or {}).get("ort", {})
    device = platform_device(config, platform)
    meta = _run_meta(config, platform, backend, model, batch_size, settings)
    with _failure_recorded(config, meta, f"{backend}/{model} bs{batch_size} on {platform}"):
        export = json.loads(Path(modules_path).read_text()).get("export", {})
        meta["export"] = {k: v for k, v in export.items() if k != "inputs"}
        meta["model_provenance"] = export.get("model_provenance")
        if export.get("status") != STATUS_OK:
            raise UpstreamFailed(export.get("reason") or "ONNX export failed")
        tensors, meta["inputs"] = inputs.load(input_path)
        record = ort.run(
            onnx_path,
            tensors,
            backend=backend,
            device=device,
            trace_dir=trace_dir,
            warmup=settings.get("warmup", 3),
            iterations=settings.get("iterations", 10),
            profile_iterations=settings.get("profile_iterations", 5),
            intra_op_threads=settings.get("threads"),
            inter_op_threads=settings.get("inter_op_threads"),
            provider_options=settings.get("cuda_provider_options"),
            dtype=settings.get("dtype_cuda", "float16") if device.startswith("cuda") else "float32",
        )
        meta.update(status=STATUS_OK, run=record)
    _write_run_outputs(meta, trace_dir, latency_out)
    return meta


def _inductor_compiler(settings: dict):
    from ngbench.backends import inductor

    return inductor.make_compiler(
        settings.get("cache_dir", "results/cache/inductor"),
        freezing=settings.get("freezing", False),
        mode=settings.get("mode"),
        dynamic=settings.get("dynamic", False),
    )


# -- TensorRT (CUDA platforms) ---------------------------------------------------------------------------------
def convert_onnx_fp16(onnx_path: str, modules_path: str, out: str, *, on_error: str = "record") -> dict:
    """fp16 copy of an ONNX export (for TensorRT's strongly typed fp16 engines). A failed export, or a failed
    conversion under ``on_error: record``, leaves empty outputs whose consumers report the reason."""
    from ngbench.backends import onnx_export

    record: dict[str, Any] = {"onnx": onnx_path}
    with _failure_recorded({"on_error": on_error}, record, f"fp16 copy of {onnx_path}"):
        export = json.loads(Path(modules_path).read_text()).get("export", {})
        if export.get("status") != STATUS_OK:
            raise UpstreamFailed(export.get("reason") or "ONNX export failed")
        record.update(onnx_export.to_fp16(onnx_path, out), status=STATUS_OK)
    if record.get("status") != STATUS_OK:
        for path in (Path(out), onnx_export.data_path(out)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    log.info("%s: %s", out, record)
    return record


def build_trt_engine(
    config: dict,
    platform: str,
    model: str,
    batch_size: int,
    modules_path: str,
    onnx_path: str,
    plan: str,
    log_path: str,
    precision: str = "fp16",
) -> dict:
    """ONNX export -> TensorRT engine. On error with ``on_error: record``: an empty plan and a ``.json``
    record beside it whose reason the profile job carries."""
    from ngbench.backends import trt

    settings = (config.get("backends") or {}).get("trt", {})
    record: dict[str, Any] = {"platform": platform, "model": model, "batch_size": batch_size}
    with _failure_recorded(config, record, f"TensorRT engine for {model} bs{batch_size} on {platform}"):
        export = json.loads(Path(modules_path).read_text()).get("export", {})
        if export.get("status") != STATUS_OK:
            raise UpstreamFailed(export.get("reason") or "ONNX export failed")
        record["onnx"] = str(onnx_path)
        if Path(onnx_path).stat().st_size == 0:
            raise UpstreamFailed(f"{onnx_path} is empty: its fp16 conversion failed (see its log)")
        record.update(
            trt.build_engine(
                onnx_path,
                plan,
                precision=precision,
                typing=settings.get("typing", "strong"),
                timing_cache=Path(settings.get("timing_cache_dir", "results/engines/timing-cache"))
                / f"{platform}.cache",
                log_path=log_path,
                workspace_gib=settings.get("workspace_gib"),
            )
        )
        record["status"] = STATUS_OK
    if record.get("status") != STATUS_OK:  # leave the declared outputs, empty
        Path(plan).parent.mkdir(parents=True, exist_ok=True)
        Path(plan).write_bytes(b"")
    Path(f"{plan}.json").write_text(json.dumps(record, indent=2))
    return record


def run_trt(
    config: dict,
    platform: str,
    model: str,
    batch_size: int,
    plan: str,
    modules_path: str,
    feed_path: str,
    input_path: str,
    trace_dir: str,
    latency_out: str,
) -> dict:
    """TensorRT latency + per-layer profile + layer information; the export's node table is copied into
    the trace directory so the run normalizes anywhere, even where results/onnx is absent. Runs in the
    TensorRT env (no torch): the input batch comes as the export's numpy feed."""
    import shutil

    from ngbench.backends import onnx_export, trt

    settings = (config.get("backends") or {}).get("trt", {})
    meta = _run_meta(config, platform, "trt", model, batch_size, settings)
    with _failure_recorded(config, meta, f"trt/{model} bs{batch_size} on {platform}"):
        engine = json.loads(Path(f"{plan}.json").read_text())
        meta["engine"] = engine
        if engine.get("status") == STATUS_SKIPPED:
            raise Unavailable(engine.get("reason") or "TensorRT is not available here")
        if engine.get("status") != STATUS_OK:
            raise UpstreamFailed(engine.get("reason") or "TensorRT engine build failed")
        meta["inputs"] = inputs.load_provenance(input_path)
        record = trt.run(
            plan,
            onnx_export.load_feed(feed_path),
            trace_dir=trace_dir,
            warmup=settings.get("warmup", 3),
            iterations=settings.get("iterations", 10),
            profile_iterations=settings.get("profile_iterations", 5),
            use_cuda_graph=settings.get("cuda_graph", True),
        )
        shutil.copy(modules_path, Path(trace_dir) / "nodes.json")
        meta.update(status=STATUS_OK, run=record)
    _write_run_outputs(meta, trace_dir, latency_out)
    return meta


# -- energy ---------------------------------------------------------------------------------------------------
def _cuda_pci_bus_id(device: str) -> str | None:
    """The PCI bus id of a CUDA device as NVML names it (None off CUDA, or where torch sees no GPU)."""
    if not device.startswith("cuda"):
        return None
    import torch

    from ngbench import energy

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.device(device))
    return energy.pci_bus_id(props.pci_domain_id, props.pci_bus_id, props.pci_device_id)


def measure_energy(config: dict, platform: str, model: str, batch_size: int, input_path: str, out: str) -> dict:
    """Energy per inference of the torch (eager) model, where counters exist; n/a with the reason where
    not. Counters are checked first, so a machine without them never builds the model."""
    from ngbench import energy
    from ngbench.backends import torch_eager

    settings = config.get("energy") or {}
    torch_settings = (config.get("backends") or {}).get("torch", {})
    device = platform_device(config, platform)
    record: dict[str, Any] = {
        "platform": platform,
        "device": device,
        "backend": "torch",
        "model": model,
        "batch_size": batch_size,
        "settings": settings,
        "environment": env.describe(config),
    }
    counters = energy.counters_for(
        device, settings.get("powercap_root") or energy.POWERCAP_ROOT, gpu_pci_bus_id=_cuda_pci_bus_id(device)
    )
    with _failure_recorded(config, record, f"energy of {model} bs{batch_size} on {platform}"):
        if all(isinstance(c, str) for c in counters.values()):
            record.update(energy.measure(lambda: None, lambda: None, counters, inferences=0, repeats=0, idle_s=0))
            record["status"] = STATUS_OK
        else:
            import torch

            tensors, record["inputs"] = inputs.load(input_path)
            if record["inputs"].get("status") == STATUS_FAILED:
                raise inputs.InputError(f"inputs: {record['inputs'].get('reason')}")
            dtype = torch_settings.get("dtype_cuda" if device.startswith("cuda") else "dtype_cpu", "float32")
            built = build_model(config, model, tensors, dtype, torch_settings.get("attn_implementation"), record)
            built, tensors, sync = torch_eager.prepare(
                built, tensors, device=device, dtype=dtype, threads=torch_settings.get("threads")
            )
            with torch.inference_mode():
                for _ in range(settings.get("warmup", 2)):
                    built(**tensors)
                record.update(
                    energy.measure(
                        lambda: built(**tensors),
                        sync,
                        counters,
                        inferences=settings.get("inferences", 20),
                        repeats=settings.get("repeats", 3),
                        idle_s=settings.get("idle_s", 2.0),
                        min_block_s=settings.get("min_block_s", 2.0),
                        resolution_s=settings.get("resolution_s", 0.5),
                    )
                )
            record["status"] = STATUS_OK
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(record, indent=2, default=str))
    return record


def build_model(config: dict, model: str, tensors: dict, dtype: str, attn_implementation: str | None, meta: dict):
    """The registry model as every backend runs it (weights, norm calibration, one prefill forward without a
    KV cache); provenance goes into ``meta``."""
    s = model_settings(config, model)
    built, prov = registry.build(
        s["spec"],
        dtype=dtype,
        layers=s["layers"],
        seed=config.get("seed", 0),
        weights_path=s["weights"],
        use_local_cache=(config.get("weights") or {}).get("use_local_cache", True),
        attn_implementation=attn_implementation if s["spec"].source == "transformers" else None,
    )
    meta["model_provenance"] = prov
    if prov["weights"] == "random" and config.get("calibrate_norms", True):
        prov["norm_layers_calibrated"] = registry.calibrate_norms(built, tensors)
        prov["init"] += "; normalization running statistics calibrated on the input batch"
    if s["spec"].source == "transformers":
        built.config.use_cache = False  # one prefill forward, as the paper ran it
        meta["attn_implementation"] = getattr(built.config, "_attn_implementation", None)
        prov["use_cache"] = False
    if s["spec"].source == "torchvision":
        import torch

        meta["mha_fastpath"] = torch.backends.mha.get_fastpath_enabled()
    return built


def _run_meta(config: dict, platform: str, backend: str, model: str, batch_size: int, settings: dict) -> dict:
    """What every run records before it starts (its meta.json grows from here)."""
    return {
        "platform": platform,
        "device": platform_device(config, platform),
        "backend": backend,
        "model": model,
        "batch_size": batch_size,
        "seq_len": model_settings(config, model)["seq_len"],
        "settings": settings,
        "environment": env.describe(config),
    }


def _write_run_outputs(meta: dict, trace_dir: str, latency_out: str) -> None:
    Path(trace_dir).mkdir(parents=True, exist_ok=True)
    (Path(trace_dir) / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    run = meta.get("run", {})
    latency = {k: meta[k] for k in ("platform", "backend", "model", "batch_size", "seq_len", "status") if k in meta}
    latency.update(
        reason=meta.get("reason"),
        samples_ms=run.get("latency_samples_ms"),
        stats=run.get("latency"),
        profiled_stats=run.get("profiled"),
        profiler_overhead_ratio=run.get("profiler_overhead_ratio"),
    )
    Path(latency_out).parent.mkdir(parents=True, exist_ok=True)
    Path(latency_out).write_text(json.dumps(latency, indent=2))


# -- normalize ------------------------------------------------------------------------------------------------
def normalize_run(trace_dir: str, out: str, *, platform: str, backend: str, model: str, batch_size: int) -> dict:
    """Raw trace directory -> op table parquet (with the run's metadata embedded)."""
    import pandas as pd

    from ngbench.traces import kineto

    meta = json.loads((Path(trace_dir) / "meta.json").read_text())
    seq_len = meta.get("seq_len")
    if meta.get("status") != STATUS_OK:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in optable.COLUMNS})
        df = df.astype(optable.INT_COLUMNS)
        optable.write(df, out, run=meta)
        return meta
    if backend not in NORMALIZERS:
        raise ValueError(f"no normalizer for backend {backend!r}; known: {sorted(NORMALIZERS)}")
    labels = {"platform": platform, "backend": backend, "model": model, "batch_size": batch_size, "seq_len": seq_len}
    if backend == "trt":
        from ngbench.backends import trt as trt_backend
        from ngbench.traces import onnx_graph, trt

        nodes_file = Path(trace_dir) / "nodes.json"
        nodes = onnx_graph.read_nodes(nodes_file) if nodes_file.is_file() else None
        df, info = trt.normalize(
            Path(trace_dir) / trt_backend.PROFILE_FILE, Path(trace_dir) / trt_backend.LAYERS_FILE, nodes=nodes, **labels
        )
        if nodes:
            info["original_ops"] = dict(Counter(n.op_type for n in nodes.values()))
    elif backend in ORT_BACKENDS:
        from ngbench.backends import ort as ort_backend
        from ngbench.traces import onnx_graph, ort

        nodes_file = Path(trace_dir) / ort_backend.NODES_FILE
        df, info = ort.normalize(
            Path(trace_dir) / ort_backend.PROFILE_FILE,
            nodes=onnx_graph.read_nodes(nodes_file),
            skip_runs=meta["run"]["profile_warmup_runs"],
            **labels,
        )
        info["original_ops"] = onnx_graph.read_extra(nodes_file, "original_ops")
    else:
        traces = sorted(Path(trace_dir).glob(NORMALIZERS[backend]))
        shapes = Path(trace_dir) / "shapes.json.gz"
        df, info = kineto.normalize_many(traces, shapes_trace=shapes if shapes.is_file() else None, **labels)
        if backend == "inductor":
            from ngbench.backends.inductor import ARTIFACT_DIR
            from ngbench.traces import inductor

            info["inductor"] = inductor.attribute(df, Path(trace_dir) / ARTIFACT_DIR)
            info["original_ops"] = info["inductor"].pop("original_ops")
    meta["normalize"] = info
    optable.write(df, out, run=meta)
    log.info("%s: %d rows, %d iterations", out, len(df), info["iterations"])
    return meta


# backend -> glob of its raw trace files inside a run's trace directory
ORT_BACKENDS = ("ort", "ort-opt")
TORCH_BACKENDS = ("torch", "inductor", "torch-int8")
NORMALIZERS = {
    "torch": "trace.*.json.gz",
    "inductor": "trace.*.json.gz",
    "torch-int8": "trace.*.json.gz",
    "ort": "profile.json",
    "ort-opt": "profile.json",
    "trt": "profile.json",
}
