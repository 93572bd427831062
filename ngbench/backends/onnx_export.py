"""ONNX export of a registry model (``results/onnx/{model}/bs{bs}.onnx``), checked and verified.

torch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``) is used because it writes each node's
module path and class into the node's ``metadata_props``; that is what lets ORT's (and TensorRT's) nodes be
classified by the same innermost-module rule as PyTorch's ops. The TorchScript exporter keeps scopes only
in node names and fails on GPT-2 (``aten::diff``) with torch 2.14. Weights always go to an external data
file beside the model (``bs{bs}.onnx.data``): the protobuf limit is 2 GiB and the truncated Llama-2 alone
passes it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ExportMismatch(AssertionError):
    pass


def data_path(onnx_path: str | Path) -> Path:
    return Path(f"{onnx_path}.data")


def feed_path(onnx_path: str | Path) -> Path:
    """The input batch as numpy arrays under the ONNX input names (for runtimes without torch: TensorRT)."""
    return Path(str(onnx_path).removesuffix(".onnx") + ".inputs.npz")


def save_feed(inputs: dict, onnx_path: str | Path, out: str | Path) -> None:
    import numpy as np

    names = [i.name for i in load_graph_inputs(onnx_path)]
    missing = [n for n in names if n not in inputs]
    if missing:
        raise KeyError(f"{onnx_path}: ONNX inputs {missing} have no tensor in the input batch ({sorted(inputs)})")
    np.savez(out, **{n: inputs[n].detach().cpu().numpy() for n in names})


def load_feed(path: str | Path) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:  # plain arrays only: never unpickle
        return {k: data[k] for k in data.files}


def load_graph_inputs(onnx_path: str | Path) -> list:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def export(model, inputs: dict, out: str | Path, *, opset: int | None = None) -> dict[str, Any]:
    """Export ``model(**inputs)`` to ``out`` (+ ``out.data``); returns what happened."""
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(
            model, (), kwargs=dict(inputs), dynamo=True, opset_version=opset, verbose=False, report=False
        )
    export_s = time.perf_counter() - t0
    program.save(str(out), external_data=True)
    return {"exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}", "export_s": export_s}


def check(out: str | Path) -> None:
    """``onnx.checker`` on the saved model (by path, so external data and > 2 GiB models are checked)."""
    import onnx

    onnx.checker.check_model(str(out))


def verify(model, inputs: dict, out: str | Path, *, tolerance: float, threads: int | None = None) -> dict[str, Any]:
    """Run the export in ONNX Runtime (CPU, basic optimizations) on the real input and compare every output
    with PyTorch's: ``max|ort - torch| / max(max|torch|, 1e-6)`` must be within ``tolerance``."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from torch.utils._pytree import tree_leaves

    with torch.inference_mode():
        expected = [t.detach().float().cpu().numpy() for t in tree_leaves(model(**inputs)) if torch.is_tensor(t)]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if threads:
        so.intra_op_num_threads = threads
    session = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name].detach().cpu().numpy() for i in session.get_inputs()}
    got = session.run(None, feed)
    if len(got) != len(expected):
        raise ExportMismatch(f"{out}: ONNX model has {len(got)} outputs, PyTorch returned {len(expected)} tensors")
    errors = []
    for i, (g, e) in enumerate(zip(got, expected)):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != e.shape:
            raise ExportMismatch(f"{out}: output {i} has shape {list(g.shape)}, PyTorch's is {list(e.shape)}")
        scale = max(float(np.abs(e).max()) if e.size else 0.0, 1e-6)
        errors.append(float(np.abs(g - e).max()) / scale if e.size else 0.0)
    worst = max(errors) if errors else 0.0
    if worst > tolerance:
        raise ExportMismatch(
            f"{out}: ONNX Runtime output differs from PyTorch's by {worst:.3g} (relative to the output's max), "
            f"over the tolerance {tolerance} (config backends.ort.export_tolerance)"
        )
    return {"outputs": len(got), "max_relative_error": worst, "tolerance": tolerance}


# Computations the models themselves run in float32 whatever their dtype (HF's RMSNorm upcasts its
# statistics, eager attention its softmax): in an fp32 export those upcasts are no-op casts the exporter
# drops, so they are found by what the nodes compute, through the taxonomy.
FP32_GROUPS = ("Normalization", "Logit")


def fp32_nodes(model, taxonomy=None) -> list[str]:
    """Nodes of an exported graph that stay float32 in its fp16 copy: those the taxonomy puts in a group of
    ``FP32_GROUPS`` (by their innermost module, else their op type)."""
    from ngbench import onnx_graph
    from ngbench import taxonomy as tax

    taxonomy = taxonomy or tax.load()
    infos = onnx_graph.node_modules(model)
    keep = []
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        info = infos.get(name)
        group = taxonomy.classify(node.op_type, info.module_types if info else (), kind="onnx").group
        if group in FP32_GROUPS:
            keep.append(node.name)
    return keep


def to_fp16(onnx_path: str | Path, out: str | Path) -> dict[str, Any]:
    """fp16 copy of an fp32 export (``out`` + ``out.data``), for the ORT CUDA provider and TensorRT's
    strongly typed networks. Converted from disk: ONNX Runtime's converter runs shape inference by path
    (``infer_shapes_path``), which works past protobuf's 2 GiB where in-memory inference fails (the truncated
    Llama-2 export is larger). Inputs and outputs stay float32 (``keep_io_types``); normalization and
    softmax nodes stay float32 (:func:`fp32_nodes`), as the models' own upcasts keep them."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keep = fp32_nodes(onnx.load(str(onnx_path), load_external_data=False))
    half = convert_float_to_float16(str(onnx_path), keep_io_types=True, node_block_list=keep)
    data = data_path(out)
    data.unlink(missing_ok=True)  # save_model appends to an existing data file
    onnx.save_model(half, str(out), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
    return {"converter": "onnxruntime.transformers.float16 (from disk)", "nodes_kept_fp32": len(keep)}


def fp16_node_table(fp16_path: str | Path):
    """The fp16 copy's node table: the export's scopes (kept on every converted node) and, for the Cast nodes
    the converter inserted around fp32 normalization and softmax, their neighbours' scopes, so TensorRT layers
    that fuse them keep their module."""
    from ngbench import onnx_graph

    model = onnx_graph.load_graph(fp16_path)
    nodes = onnx_graph.node_modules(model)
    inherited = onnx_graph.inherit_scopes(model, nodes)
    return nodes, inherited
