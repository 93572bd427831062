"""ONNX Runtime backends: ``ort`` (graph optimizations off: one ORT node per ONNX node) and ``ort-opt``
(``ORT_ENABLE_ALL``: fused nodes such as FusedMatMul, SkipLayerNormalization, FastGelu, FusedConv).

Per run: unprofiled latency in its own session (warm-up, then N timed runs), then a second session with
``enable_profiling`` (warm-up runs, then the profiled runs; the normalizer skips the warm-up runs, whose
count is recorded). ``end_profiling()`` is always called and its file renamed to ``profile.json``. For
``ort-opt`` the optimized graph is saved (weights to a scratch file that is deleted) and joined to the
exported graph, so ``nodes.json`` says which original nodes, and modules, each fused node replaced.

CUDA execution provider: provider options from config, inputs bound on the device once (IO binding) so
host-to-device copies are not in the timed runs, fp16 by converting the exported graph (``keep_io_types``)
with ONNX Runtime's own converter. It needs a GPU and ``onnxruntime-gpu``; without them the run fails with
that reason (recorded, not crashed).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ngbench import names, onnx_graph
from ngbench.backends import onnx_export
from ngbench.backends.load import measured_phase
from ngbench.backends.timing import summarize, time_iterations
from ngbench.errors import Unavailable

log = logging.getLogger(__name__)


class ProviderUnavailable(Unavailable):
    pass


def providers_for(device: str, provider_options: dict | None = None) -> list:
    """ORT providers for a platform device (``cpu``, ``cuda``, ``cuda:1``)."""
    import onnxruntime as ort

    if not names.is_cuda(device):
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise ProviderUnavailable(
            f"device {device!r}: onnxruntime has no CUDAExecutionProvider here (available: {available}); "
            "install onnxruntime-gpu on a machine with an NVIDIA GPU"
        )
    options = {"device_id": int(device.split(":")[1]) if ":" in device else 0, **(provider_options or {})}
    return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]


def session_options(optimized: bool, intra_op_threads: int | None, inter_op_threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if intra_op_threads:
        so.intra_op_num_threads = intra_op_threads
    if inter_op_threads:
        so.inter_op_num_threads = inter_op_threads
    return so


class _Runner:
    """One session plus a run() that feeds the real inputs (bound on the device for CUDA)."""

    def __init__(self, model_path: Path, so, providers: list, feed: dict, cuda: bool):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(model_path), so, providers=providers)
        self.feed = {i.name: feed[i.name] for i in self.session.get_inputs()}
        self.binding = None
        if cuda:
            binding = self.session.io_binding()
            device_id = providers[0][1].get("device_id", 0)
            for name, array in self.feed.items():
                binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", device_id))
            for out in self.session.get_outputs():
                binding.bind_output(out.name, "cuda", device_id)
            self.binding = binding

    def run(self) -> None:
        if self.binding is not None:
            self.session.run_with_iobinding(self.binding)  # returns after the device finished
        else:
            self.session.run(None, self.feed)


def _profiling_options(optimized: bool, intra_op_threads, inter_op_threads, scratch: Path):
    """A profiled session's options: the profile (and, optimized, the graph ORT ran) into ``scratch``."""
    so = session_options(optimized, intra_op_threads, inter_op_threads)
    so.enable_profiling = True
    so.profile_file_prefix = str(scratch / "ort_profile")
    if optimized:
        so.optimized_model_filepath = str(scratch / "optimized.onnx")
        # the graph is what we need; weights go to a scratch file that is deleted with the directory
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.data")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return so


def _write_node_table(model_path: Path, optimized_path: Path | None, source: Path, trace_dir: Path) -> None:
    """The node table of the graph that ran (fused nodes with their constituents), beside the profile."""
    original = onnx_graph.load_graph(model_path)
    optimized_graph = onnx_graph.load_graph(optimized_path) if optimized_path else None
    nodes = onnx_graph.node_table(original, optimized_graph)
    onnx_graph.write_nodes(
        nodes,
        trace_dir / names.NODES_FILE,
        source=str(source),
        optimized_graph=optimized_path is not None,
        fused_nodes=sum(1 for n in nodes.values() if n.fused),
        original_ops=onnx_graph.op_counts(original),
    )


def run(
    onnx_path: str | Path,
    inputs: dict,
    *,
    optimized: bool,
    device: str,
    trace_dir: str | Path,
    warmup: int,
    iterations: int,
    profile_iterations: int,
    intra_op_threads: int | None,
    inter_op_threads: int | None = None,
    provider_options: dict | None = None,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Latency, then a profiled session; writes ``profile.json`` and ``nodes.json`` to ``trace_dir``."""
    import onnxruntime as ort

    trace_dir = Path(trace_dir)
    trace_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = Path(onnx_path)
    providers = providers_for(device, provider_options)
    cuda = names.is_cuda(device)
    feed = {k: v.detach().cpu().numpy() for k, v in inputs.items()}
    with tempfile.TemporaryDirectory(prefix="ngbench-ort-") as scratch:
        scratch = Path(scratch)
        model_path, fp16 = onnx_path, None
        if cuda and dtype == "float16":
            model_path = scratch / "model.fp16.onnx"
            fp16 = onnx_export.to_fp16(onnx_path, model_path)

        # unprofiled latency, its own session
        load: dict[str, Any] = {}
        so = session_options(optimized, intra_op_threads, inter_op_threads)
        runner = _Runner(model_path, so, providers, feed, cuda)
        time_iterations(runner.run, lambda: None, warmup)
        with measured_phase(load, "unprofiled"):
            samples = time_iterations(runner.run, lambda: None, iterations)
        used_providers = runner.session.get_providers()
        del runner

        so = _profiling_options(optimized, intra_op_threads, inter_op_threads, scratch)
        runner = _Runner(model_path, so, providers, feed, cuda)
        try:  # warm-up runs are in the profile too (profiling starts with the session)
            time_iterations(runner.run, lambda: None, warmup)
            with measured_phase(load, "profiled"):
                profiled = time_iterations(runner.run, lambda: None, profile_iterations)
        finally:
            written = runner.session.end_profiling()
        shutil.move(written, trace_dir / names.ORT_PROFILE_FILE)
        _write_node_table(model_path, scratch / "optimized.onnx" if optimized else None, onnx_path, trace_dir)
    latency, prof = summarize(samples), summarize(profiled)
    return {
        "onnxruntime": ort.__version__,
        "graph_optimization_level": "ORT_ENABLE_ALL" if optimized else "ORT_DISABLE_ALL",
        "execution_mode": "ORT_SEQUENTIAL",
        "providers": used_providers,
        "provider_options": provider_options or {},
        "io_binding": cuda,
        "model_dtype": dtype if cuda else "float32",
        "fp16_conversion": fp16,
        "intra_op_threads": intra_op_threads,
        "inter_op_threads": inter_op_threads,
        "warmup": warmup,
        "latency_samples_ms": samples,
        "latency": latency,
        "profiled_samples_ms": profiled,
        "profiled": prof,
        "load": load,
        "profile_warmup_runs": warmup,
        "profile_runs": profile_iterations,
        "profiler_overhead_ratio": prof["median_ms"] / latency["median_ms"] if latency and prof else None,
        "time_basis": "host-side node times unless the profile holds device Kernel events",
    }
