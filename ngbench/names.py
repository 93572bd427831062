"""Names every layer shares: the files inside a run's trace directory, the module-scope range prefix, run
status values and the time classes. The bottom of the package: it imports nothing from ngbench, and runners
(``backends/``) and normalizers (``traces/``) meet here instead of importing each other.
"""

from __future__ import annotations

# -- a run's trace directory: results/traces/{platform}/{backend}/{model}/bs{bs}/ ------------------------------
META_FILE = "meta.json"  # environment, settings, provenance and status of the run (every backend)
KINETO_TRACE_FILE = "trace.{cycle}.json.gz"  # PyTorch profiler: one Chrome trace per measured iteration
KINETO_TRACE_GLOB = "trace.*.json.gz"
SHAPES_FILE = "shapes.json.gz"  # PyTorch profiler: one extra pass with record_shapes=True
EXEC_TRACE_FILE = "exec_trace.json.gz"  # PyTorch execution trace of the shapes pass: every op's tensors
ORT_PROFILE_FILE = "profile.json"  # ONNX Runtime's own profile (Chrome-trace-like JSON array)
NODES_FILE = "nodes.json"  # ONNX node -> module scope table (ngbench.onnx-nodes/1), beside ORT/TensorRT profiles
TRT_PROFILE_FILE = "profile.json"  # TensorRT per-layer profile (trtexec --exportProfile layout)
TRT_LAYERS_FILE = "layers.json"  # TensorRT engine inspector's layer information (trtexec --exportLayerInfo)

# TorchInductor's per-compile artifacts under <trace dir>/inductor/compile_<k>/
INDUCTOR_ARTIFACT_DIR = "inductor"
INDUCTOR_PRE_GRAD_FILE = "pre_grad_nodes.json"
INDUCTOR_PROVENANCE_FILE = "inductor_provenance_tracking_node_mappings.json"
INDUCTOR_POST_GRAD_FILE = "fx_graph_transformed.py"
INDUCTOR_OUTPUT_CODE_FILE = "output_code.py"
INDUCTOR_GRAPH_FILE = "graph.json"  # ours: the compiled graph's Dynamo compile id and Inductor graph id

# record_function range opened around every nn.Module call while profiling: <prefix><path>::<Class>
MODULE_SCOPE_PREFIX = "ngb.module::"

# -- run status (meta.json, latency records, op-table metadata, shares) ----------------------------------------
STATUS_OK, STATUS_FAILED, STATUS_SKIPPED = "ok", "failed", "skipped"
STATUS_MISSING = "missing"  # a cell a figure wants and no run provides

# -- time classes (the study's GEMM / non-GEMM split; group names live in taxonomy.yaml) ------------------------
NON_GEMM = "non-GEMM"
FUSED_MIXED = "fused GEMM+non-GEMM"  # kernels/layers doing GEMM and non-GEMM work together


# -- devices: a platform's ``device`` is torch's spelling (cpu, cuda, cuda:1) -----------------------------------
def device_kind(device: object) -> str:
    """``cuda`` for any CUDA device (``cuda``, ``cuda:1``, a ``torch.device``), else ``cpu``."""
    return "cuda" if str(device).split(":")[0] == "cuda" else "cpu"


def is_cuda(device: object) -> bool:
    """Whether ``device`` names a CUDA device: the one answer to "is this a GPU platform"."""
    return device_kind(device) == "cuda"
