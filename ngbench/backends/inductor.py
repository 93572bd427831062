"""TorchInductor backend (``backend=inductor``): ``torch.compile`` under ``torch.inference_mode`` (an
inference graph: the original study compiled with autograd on, a training graph), then the same latency and
profiling loop as PyTorch eager.

What makes the fused kernels attributable, all Inductor's own artifacts, saved per compiled graph under
``<trace_dir>/inductor/compile_<k>/`` (k: compile order):

* ``cpp.enable_kernel_profile``: each C++ kernel runs inside a profiler range ``graph_<id>_cpp_fused_*``;
  Triton kernels (GPU) appear as device kernels ``triton_*`` named the same way;
* ``trace.provenance_tracking_level=1``: ``inductor_provenance_tracking_node_mappings.json`` maps every
  kernel to the post-grad FX nodes it computes and those to the pre-grad (Dynamo) nodes;
* ``fx_graph_transformed.py``: the post-grad graph, i.e. the aten op of every post-grad node;
* ``pre_grad_nodes.json`` (ours): each Dynamo node's target and ``nn_module_stack``, captured by a thin
  backend wrapper around Inductor's ``compile_fx`` (module paths and classes, innermost first);
* ``graph.json`` (ours): the Dynamo compile id, which names the graph's ``Torch-Compiled Region: <id>``
  profiler range, so kernels are joined to the graph that ran them even when their names carry no graph id
  (Triton kernels never do) and several graphs define a kernel of the same name.

Inductor writes those debug artifacts only when it compiles, not on an FX-graph-cache hit, so the FX graph
cache is off and the C++/Triton kernel caches (``TORCHINDUCTOR_CACHE_DIR``, kept under ``results/``) make
recompiles cheap (swin_t: 112 s cold, a few seconds with warm kernel caches).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ngbench import names

log = logging.getLogger(__name__)
_SELF = re.compile(r"^L\['self'\]\.?")


def _module_chain(stack: dict | None) -> tuple[list[str], list[str]]:
    """(paths, classes) innermost first from a Dynamo node's ``nn_module_stack`` (outermost first)."""
    paths, classes = [], []
    for path, cls in (stack or {}).values():
        name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
        paths.append(_SELF.sub("", str(path)) or "<root>")
        classes.append(name.rsplit(".", 1)[-1])
    return paths[::-1], classes[::-1]


def pre_grad_nodes(gm) -> dict[str, dict[str, Any]]:
    """Dynamo graph node name -> target and module chain."""
    out = {}
    for n in gm.graph.nodes:
        if n.op not in ("call_function", "call_method", "call_module"):
            continue
        target = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
        paths, classes = _module_chain(n.meta.get("nn_module_stack"))
        out[n.name] = {"target": target, "module_paths": paths, "module_types": classes}
    return out


def make_compiler(cache_dir: str | Path, *, freezing: bool = False, mode: str | None = None, dynamic: bool = False):
    """A ``compiler`` for :func:`ngbench.backends.torch_eager.run`: compile, make the first call, and
    save each graph's attribution artifacts under ``<trace_dir>/inductor/``."""

    def compile_model(model, inputs: dict, trace_dir: Path) -> tuple[Any, dict]:
        cache = Path(cache_dir).resolve()
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)  # read when Inductor first needs its cache
        import torch
        import torch._inductor.config as inductor_config
        from torch._inductor.compile_fx import compile_fx

        out_root = Path(trace_dir) / names.INDUCTOR_ARTIFACT_DIR
        debug_root = out_root / "_debug"
        graphs: list[Path] = []

        def backend(gm, example_inputs):
            k = len(graphs)
            graph_dir = debug_root / f"compile_{k}"
            graphs.append(graph_dir)
            graph_dir.mkdir(parents=True, exist_ok=True)
            (graph_dir / names.INDUCTOR_PRE_GRAD_FILE).write_text(json.dumps(pre_grad_nodes(gm), indent=1))
            compile_id = torch._guards.CompileContext.current_compile_id()  # "0/1": names its profiler range
            (graph_dir / names.INDUCTOR_GRAPH_FILE).write_text(
                json.dumps({"compile_id": str(compile_id) if compile_id else None})
            )
            with inductor_config.patch({"trace.debug_dir": str(graph_dir)}):
                return compile_fx(gm, example_inputs)

        patches = {
            "cpp.enable_kernel_profile": True,
            "trace.enabled": True,
            "trace.provenance_tracking_level": 1,
            "fx_graph_cache": False,  # a cache hit writes no provenance (see the module docstring)
            "freezing": freezing,
        }
        torch._dynamo.reset()
        with inductor_config.patch(patches):
            compiled = torch.compile(model, backend=backend, mode=mode, dynamic=dynamic)
            t0 = time.perf_counter()
            compiled(**inputs)
            for device in {v.device for v in inputs.values() if v.is_cuda}:
                torch.cuda.synchronize(device)  # the inputs' device, which need not be the current one
            compile_s = time.perf_counter() - t0
        saved = [_collect(d, out_root) for d in graphs]
        shutil.rmtree(debug_root, ignore_errors=True)
        return compiled, {
            "compiler": "torch.compile(backend=inductor) under torch.inference_mode",
            "compile_s": compile_s,
            "graphs": len(graphs),
            "graph_ids": [g for g in saved if g is not None],
            "freezing": freezing,
            "mode": mode,
            "dynamic": dynamic,
            "cache_dir": str(cache),
            "fx_graph_cache": False,
        }

    return compile_model


def _collect(graph_dir: Path, out_root: Path) -> int | None:
    """Copy one compiled graph's artifacts to ``out_root/<compile_k>/`` (one folder per compiled graph,
    whatever its kernels are named) with ``graph.json``: its Dynamo compile id (the id in its
    ``Torch-Compiled Region: <id>`` profiler range) and the graph id Inductor baked into its C++ kernel
    names (``graph_<id>_cpp_fused_*``; Triton kernels carry none)."""
    found = {
        name: next(graph_dir.rglob(name), None)
        for name in (names.INDUCTOR_PROVENANCE_FILE, names.INDUCTOR_POST_GRAD_FILE, names.INDUCTOR_OUTPUT_CODE_FILE)
    }
    code = found[names.INDUCTOR_OUTPUT_CODE_FILE].read_text() if found[names.INDUCTOR_OUTPUT_CODE_FILE] else ""
    m = re.search(r"\bgraph_(\d+)_(?:cpp|triton)_", code)
    graph_id = int(m.group(1)) if m else None
    dest = out_root / graph_dir.name
    dest.mkdir(parents=True, exist_ok=True)
    meta = json.loads((graph_dir / names.INDUCTOR_GRAPH_FILE).read_text())
    (dest / names.INDUCTOR_GRAPH_FILE).write_text(json.dumps({**meta, "graph_id": graph_id}))
    shutil.copy(graph_dir / names.INDUCTOR_PRE_GRAD_FILE, dest / names.INDUCTOR_PRE_GRAD_FILE)
    for name, path in found.items():
        if path is not None:
            shutil.copy(path, dest / name)
        else:
            log.warning("Inductor wrote no %s for %s: its kernels will be attributed by name only", name, graph_dir)
    return graph_id
