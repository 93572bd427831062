"""Attribute TorchInductor's fused kernels to the ops and modules they implement.

Input: the op table of an Inductor run (the Kineto normalizer's rows: ``graph_<id>_cpp_fused_*`` C++ kernel
ranges, ``triton_*`` device kernels, extern ``aten::mm/addmm/convolution`` calls) and the artifacts saved by
:mod:`ngbench.backends.inductor` per compiled graph. For each kernel row:

* post-grad nodes from Inductor's provenance map (kernel -> post-grad nodes), their aten ops from the
  post-grad graph (``fx_graph_transformed.py``), and the pre-grad (Dynamo) node each came from, with its
  module chain;
* constituents = the pre-grad nodes: one whose post-grad pieces in this kernel include a GEMM op is GEMM
  when the kernel's own code multiplies matrices (CPP GEMM template, Triton ``tl.dot``), else those pieces
  are the layout copy of a GEMM run as an extern call (``cpp_fused_convolution_*``): Memory;
  one whose op is a GEMM but whose pieces here are not (the reshape after an ``addmm``, fused into the next
  element-wise kernel) counts as those pieces; any other is its own op in its modules (so softmax's
  amax/sub/exp/sum/div are one Logit constituent with weight 5);
* group: :meth:`ngbench.taxonomy.Taxonomy.classify_fused`; ``fused_ops``: one (aten op, post-grad node,
  module, class) entry per post-grad node.

Kernels with no provenance entry keep the name-based decision of the normalizer and are counted in the
info (``kernel_time_us_by_name``), so the attributable fraction is always reported.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ngbench import names
from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench import work as wk
from ngbench.errors import InputError
from ngbench.scopes import common_chain

log = logging.getLogger(__name__)
_EXTERN = re.compile(r"^extern_kernels\.(?P<op>\w+):(?P<handle>\d+)$")  # Inductor's provenance handle
_KERNEL = re.compile(r"^(?:graph_(?P<graph>\d+)_)?(?P<name>(?:cpp|triton)_\w+)$")
_KERNEL_DEF = re.compile(r"^(?P<name>(?:cpp|triton)_\w+) = async_compile\.\w+\(", re.M)
# a generated kernel that multiplies matrices itself: CPP GEMM templates, Triton dot products
_MATMUL_CODE = re.compile(r"micro_gemm|MicroGemm|cpp_gemm_template|tl\.dot\(|triton_tem_")
_POST_GRAD_LINE = re.compile(
    r"^\s+(?P<node>\w+)(?:: \"(?P<ann>[^\"]*)\")? = torch\.ops\.(?P<op>[\w.]+)\((?P<args>.*?)\)(?:;  .*)?$", re.M
)
_GRAPH_INPUT = re.compile(r"(?P<node>\w+): \"(?P<ann>[^\"]*)\"")
_FORWARD = re.compile(r"^\s*def forward\(self, (?P<params>.*)\):", re.M)
# Inductor's annotation "f32[2, 16, 64]" (+ "[strides]device" in newer releases): element type and shape
_ANNOTATION = re.compile(r"^(?P<dtype>[a-z]+\d*)\[(?P<shape>[^\]]*)\]")
_ANNOTATION_DTYPES = {"f64": "float64", "f32": "float32", "f16": "float16", "bf16": "bfloat16", "i64": "int64",
                      "i32": "int32", "i16": "int16", "i8": "int8", "u8": "uint8", "b8": "bool",
                      "f8e4m3fn": "float8", "f8e5m2": "float8"}  # fmt: skip
# post-grad ops that alias their input: Inductor reads the buffer behind them
_VIEW_OPS = {"aten::view", "aten::reshape", "aten::permute", "aten::unsqueeze", "aten::squeeze", "aten::select",
             "aten::expand", "aten::slice", "aten::transpose", "aten::t", "aten::alias", "aten::as_strided",
             "aten::_unsafe_view", "aten::unflatten", "aten::split", "aten::split_with_sizes",
             "aten::unbind"}  # fmt: skip
_RETURN_LINE = re.compile(r"^\s+return \((?P<names>[^)]*)\)", re.M)
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")


@dataclass
class GraphArtifacts:
    kernels: dict[str, list[str]] = field(default_factory=dict)  # kernel name -> post-grad nodes
    post_to_pre: dict[str, list[str]] = field(default_factory=dict)
    post_ops: dict[str, str] = field(default_factory=dict)  # post-grad node -> aten op (aten::add)
    pre: dict[str, dict] = field(default_factory=dict)  # pre-grad node -> target, module chain
    gemm_kernels: set[str] = field(default_factory=set)  # generated kernels whose code runs a matmul itself
    graph_id: int | None = None  # the id in its C++ kernels' names (graph_<id>_cpp_fused_*), if any
    compile_id: str = ""  # Dynamo's compile id: its Torch-Compiled Region range in the trace
    users: dict[str, set[str]] = field(default_factory=dict)  # post-grad node -> post-grad nodes reading it
    returned: set[str] = field(default_factory=set)  # post-grad nodes the graph returns
    args: dict[str, list[str]] = field(default_factory=dict)  # post-grad node -> nodes/graph inputs it reads
    tensors: dict[str, wk.TensorSpec] = field(default_factory=dict)  # node or graph input -> its value
    # extern calls (extern_kernels.addmm, .bmm, .convolution) in the order the graph's code makes them:
    # (aten op they run, their post-grad nodes); Inductor numbers them with its provenance debug handles
    externs: list[tuple[str, list[str]]] = field(default_factory=list)

    def base(self, name: str) -> str:
        """The buffer behind a value: through view ops that no kernel computes (Inductor reads the base)."""
        seen = set()
        while self.post_ops.get(name) in _VIEW_OPS and name not in seen and self.args.get(name):
            seen.add(name)
            name = self.args[name][0]
        return name

    def kernel_work(self, kernel: str, taxonomy: tax.Taxonomy, runs_gemm: bool) -> wk.Work:
        """The bytes a fused kernel loads and stores: each distinct buffer its nodes read from outside it,
        once, and each value it stores (:meth:`stored`), once; FLOPs per node: GEMM nodes by PyTorch's
        formulas (when the kernel multiplies matrices itself), the rest per element of each node's output."""
        mine = set(self.kernels.get(kernel, ()))
        readers: dict[str, list[str]] = {}  # buffer read from outside the kernel -> the kernel's nodes reading it
        for n in mine:
            for a in self.args.get(n, ()):
                if a not in mine and self.base(a) not in mine:
                    readers.setdefault(self.base(a), []).append(n)
        stored = [self.tensors.get(s) for s in self.stored(kernel)]
        if not mine or any(self.tensors.get(r) is None for r in readers) or any(v is None for v in stored):
            return wk.unknown("kernel buffers without static shapes in the post-grad graph")
        nbytes = sum(v.nbytes for v in stored)  # type: ignore[union-attr]
        for buffer, nodes in readers.items():
            size = self.tensors[buffer].nbytes
            if all(wk.is_gather(self.post_ops.get(n, "")) and self.base(self.args[n][0]) == buffer for n in nodes):
                # an embedding table the kernel gathers rows of: the rows, not the table
                size = min(size, sum(self.tensors[n].nbytes for n in nodes if n in self.tensors))
            nbytes += size
        costs = wk.load_costs()
        flops = 0.0
        for node in mine:
            op, out = self.post_ops.get(node, ""), self.tensors.get(node)
            if out is None or op in _VIEW_OPS:
                continue
            group = taxonomy.op_group(op) or tax.OTHER
            if group == tax.GEMM:
                shapes = [self.tensors[a].shape for a in self.args.get(node, ()) if a in self.tensors]
                if runs_gemm and len(shapes) >= 2:
                    flops += wk.matmul_flops(shapes[-2], shapes[-1]) or 0.0
                continue
            inputs = [self.tensors[a] for a in self.args.get(node, ()) if a in self.tensors]
            flops += costs.flops(op, group, inputs, [out])
        return wk.Work(nbytes, flops, "kernel-graph")

    def stored(self, kernel: str) -> set[str]:
        """The post-grad nodes whose values ``kernel`` stores: read by a node outside it that no kernel
        holding the node recomputes, or returned by the graph. A node Inductor inlines into several kernels
        (the interpolated mask DETR's softmax kernels recompute) is stored by none of them."""
        mine = set(self.kernels.get(kernel, ()))
        homes: dict[str, set[str]] = {}
        for name, nodes in self.kernels.items():
            for node in nodes:
                homes.setdefault(node, set()).add(name)
        out = set()
        for node in mine:
            if node in self.returned:
                out.add(node)
                continue
            for user in self.users.get(node, ()):
                if user in mine:
                    continue
                if not any(node in self.kernels[k] for k in homes.get(user, ())):
                    out.add(node)
                    break
        return out


def _aten(op: str) -> str:
    """``aten.add.Tensor`` -> ``aten::add``; ``prims.convert_element_type.default`` -> ``prims::convert_...``"""
    parts = op.split(".")
    return f"{parts[0]}::{parts[1]}" if len(parts) > 1 else op


def load_artifacts(artifact_dir: str | Path) -> dict[str, GraphArtifacts]:
    """Folder name -> artifacts of each compiled graph under ``<trace_dir>/inductor/`` (``compile_<k>/`` with
    ``graph.json``; runs saved before it, ``graph_<id>/``, keep their id from the folder name)."""
    out: dict[str, GraphArtifacts] = {}
    for graph_dir in sorted(Path(artifact_dir).glob("*")):
        if not graph_dir.is_dir():
            continue
        art = out[graph_dir.name] = GraphArtifacts()
        m = re.fullmatch(r"graph_(\d+)", graph_dir.name)
        art.graph_id = int(m.group(1)) if m else None
        meta_path = graph_dir / names.INDUCTOR_GRAPH_FILE
        if meta_path.is_file():
            meta = _json(meta_path)
            art.graph_id = meta.get("graph_id", art.graph_id) if isinstance(meta, dict) else art.graph_id
            art.compile_id = (meta.get("compile_id") or "") if isinstance(meta, dict) else ""
        prov_path = graph_dir / names.INDUCTOR_PROVENANCE_FILE
        if prov_path.is_file():
            prov = _json(prov_path)
            externs = []
            for kernel, nodes in (prov.get("cppCodeToPost") or {}).items():
                art.kernels[kernel.split(":")[0]] = list(nodes)
                m = _EXTERN.match(kernel)
                if m:
                    externs.append((int(m.group("handle")), f"aten::{m.group('op')}", list(nodes)))
            art.externs = [(op, nodes) for _, op, nodes in sorted(externs)]
            art.post_to_pre.update(prov.get("postToPre") or {})
        post = graph_dir / names.INDUCTOR_POST_GRAD_FILE
        if post.is_file():
            _read_post_grad(post.read_text(), art)
        code = graph_dir / names.INDUCTOR_OUTPUT_CODE_FILE
        if code.is_file():
            art.gemm_kernels.update(_gemm_kernels(code.read_text()))
        pre = graph_dir / names.INDUCTOR_PRE_GRAD_FILE
        if pre.is_file():
            art.pre.update(_json(pre))
    return out


def _json(path: Path):
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a JSON {type(data).__name__}, expected an object")
    return data


def _read_post_grad(code: str, art: GraphArtifacts) -> None:
    """Each post-grad node's aten op and its users (the nodes whose arguments name it), and the nodes the
    graph returns, from Inductor's ``fx_graph_transformed.py``."""
    lines = list(_POST_GRAD_LINE.finditer(code))
    for params in _FORWARD.finditer(code):
        for m in _GRAPH_INPUT.finditer(params.group("params")):
            _annotate(art, m.group("node"), m.group("ann"))
    node_names = {m.group("node") for m in lines} | set(art.tensors)
    for m in lines:
        node = m.group("node")
        art.post_ops[node] = _aten(m.group("op"))
        _annotate(art, node, m.group("ann"))
        args = [a for a in dict.fromkeys(_NAME.findall(m.group("args"))) if a in node_names]
        art.args[node] = args
        for arg in args:
            art.users.setdefault(arg, set()).add(node)
    for m in _RETURN_LINE.finditer(code):
        art.returned.update(set(_NAME.findall(m.group("names"))) & node_names)


def _annotate(art: GraphArtifacts, node: str, annotation: str | None) -> None:
    m = _ANNOTATION.match(annotation or "")
    if not m or m.group("dtype") not in _ANNOTATION_DTYPES:
        return
    dims = [d.strip() for d in m.group("shape").split(",") if d.strip()]
    if all(d.isdigit() for d in dims):  # symbolic sizes (s0) are not static: no tensor
        art.tensors[node] = wk.TensorSpec(tuple(int(d) for d in dims), _ANNOTATION_DTYPES[m.group("dtype")])


def _gemm_kernels(code: str) -> set[str]:
    """Kernels of Inductor's generated module whose own source multiplies matrices."""
    defs = list(_KERNEL_DEF.finditer(code))
    out = set()
    for i, m in enumerate(defs):
        end = defs[i + 1].start() if i + 1 < len(defs) else len(code)
        if _MATMUL_CODE.search(code[m.start() : end]) or m.group("name").startswith("triton_tem_"):
            out.add(m.group("name"))
    return out


def _constituents(art: GraphArtifacts, kernel: str, taxonomy: tax.Taxonomy, runs_gemm: bool):
    """[Constituent], fused_ops entries, and the module chains of the kernel's constituents. In a kernel
    that does not multiply matrices itself (``runs_gemm`` false), a GEMM node among its post-grad nodes is
    the layout copy or epilogue of a GEMM run elsewhere (an extern call): Memory, not GEMM. A constituent
    is an output when one of its post-grad nodes is a value the kernel stores (:meth:`GraphArtifacts.stored`)."""
    post_nodes = art.kernels[kernel]
    stored = art.stored(kernel) if art.users or art.returned else set()
    by_pre: dict[str, list[str]] = {}
    for node in post_nodes:
        pres = art.post_to_pre.get(node) or [f"<post:{node}>"]
        by_pre.setdefault(pres[0], []).append(node)
    parts: list[tax.Constituent] = []
    fused: list[str] = []
    chains: list[tuple[list[str], list[str]]] = []
    for pre_name, posts in by_pre.items():
        pre = art.pre.get(pre_name, {})
        modules = pre.get("module_types", [])
        paths = pre.get("module_paths", [])
        chains.append((paths, modules))
        ops = [art.post_ops.get(p, "") for p in posts]
        outputs = [p in stored for p in posts]
        module, module_type = (paths[0], modules[0]) if paths and modules else ("", "")
        fused += [optable.fused_entry(op, p, module, module_type) for op, p in zip(ops, posts)]
        gemm_pieces = [op for op in ops if op and taxonomy.op_group(op) == tax.GEMM]
        if gemm_pieces and runs_gemm:
            parts.append(tax.Constituent(tax.GEMM, float(len(posts)), any(outputs)))
        elif gemm_pieces:
            parts += [
                tax.Constituent(
                    "Memory" if op in gemm_pieces else taxonomy.constituent_group(op or "unknown", modules), 1.0, out
                )
                for op, out in zip(ops, outputs)
            ]
        elif pre.get("target") and taxonomy.op_group(pre["target"]) == tax.GEMM:
            parts += [
                tax.Constituent(taxonomy.constituent_group(op or "unknown", modules), 1.0, out)
                for op, out in zip(ops, outputs)
            ]
        elif pre.get("target"):
            group = taxonomy.constituent_group(pre["target"], modules)
            parts.append(tax.Constituent(group, float(len(posts)), any(outputs)))
        else:
            parts += [
                tax.Constituent(taxonomy.constituent_group(op or "unknown", modules), 1.0, out)
                for op, out in zip(ops, outputs)
            ]
    return parts, fused, chains


def attribute(df: pd.DataFrame, artifact_dir: str | Path | None, taxonomy: tax.Taxonomy | None = None) -> dict:
    """Rewrite the kernel rows of ``df`` in place (module, group, fused_ops); return what was attributed.

    A kernel row is joined to the compiled graph that ran it: by the graph id in its name
    (``graph_<id>_cpp_*``), else by the compile id of the ``Torch-Compiled Region`` around it (the row's
    ``node``), else by its name when exactly one graph defines it. A kernel name several graphs define,
    with neither id, stays unattributed (counted, never guessed)."""
    taxonomy = taxonomy or tax.load()
    graphs = load_artifacts(artifact_dir) if artifact_dir and Path(artifact_dir).is_dir() else {}
    by_name: dict[str, list[str]] = {}
    for key, art in graphs.items():
        for kernel in art.kernels:
            by_name.setdefault(kernel, []).append(key)
    decided: dict[tuple[str, str], tuple | None] = {}
    for op, node in df[["op", "node"]].drop_duplicates().itertuples(index=False):
        m = _KERNEL.match(op)
        if not m:
            continue
        name = m.group("name")
        owners = by_name.get(name, [])
        if m.group("graph") and len(owners) > 1:
            owners = [k for k in owners if graphs[k].graph_id == int(m.group("graph"))]
        if node and len(owners) > 1:
            owners = [k for k in owners if graphs[k].compile_id == node]
        if len(owners) != 1:  # unknown, or defined by several graphs and nothing says which ran it
            decided[(op, node)] = None
            continue
        art = graphs[owners[0]]
        parts, fused, chains = _constituents(art, name, taxonomy, name in art.gemm_kernels)
        module, _, module_types, _ = common_chain(chains)
        d = taxonomy.classify_fused(op, module_types, parts, kind="torch")
        w = art.kernel_work(name, taxonomy, name in art.gemm_kernels)
        decided[(op, node)] = (module, module_types[0] if module_types else "", d.group, d.source, fused, w)
    keys = pd.Series(list(zip(df["op"], df["node"])), index=df.index)
    kernel_rows = keys.isin(list(decided))
    attributed = keys.map(lambda k: decided.get(k) is not None)
    for key, value in decided.items():
        if value is None:
            continue
        rows = keys == key
        module, module_type, group, source, fused, w = value
        df.loc[rows, "module"] = module
        df.loc[rows, "module_type"] = module_type
        df.loc[rows, "group"] = group
        df.loc[rows, "group_source"] = source
        df.loc[rows, "is_gemm"] = taxonomy.is_gemm(group)
        df.loc[rows, "fused_ops"] = pd.Series([list(fused)] * int(rows.sum()), index=df.index[rows], dtype=object)
        df.loc[rows, "bytes"] = w.bytes
        df.loc[rows, "flops"] = w.flops
        df.loc[rows, "work_source"] = w.source
    for column in ("bytes", "flops"):
        df[column] = pd.to_numeric(df[column], errors="coerce")
    externs = _attribute_externs(df, graphs)
    total = float(df.loc[kernel_rows, "time_us"].sum())
    by_provenance = float(df.loc[kernel_rows & attributed, "time_us"].sum())
    original: dict[str, int] = {}
    for art in graphs.values():
        for op in art.post_ops.values():
            original[op] = original.get(op, 0) + 1
    return {
        "original_ops": original,  # post-grad graph ops: the fusion rates' denominators
        "inductor_graphs": sorted(graphs),
        "kernels": int(len(decided)),
        "kernels_with_provenance": int(sum(v is not None for v in decided.values())),
        "kernel_time_us": total,
        "kernel_time_us_by_provenance": by_provenance,
        "kernel_time_us_by_name": total - by_provenance,
        "kernels_without_provenance": sorted(op for (op, _), v in decided.items() if v is None)[:50],
        "extern_calls": externs,
    }


def _extern_module(art: GraphArtifacts, nodes: list[str]) -> tuple[str, str]:
    chains = []
    for node in nodes:
        pre = art.pre.get((art.post_to_pre.get(node) or [""])[0], {})
        chains.append((pre.get("module_paths", []), pre.get("module_types", [])))
    module, module_type, _, _ = common_chain(chains)
    return module, module_type


def _attribute_externs(df: pd.DataFrame, graphs: dict[str, GraphArtifacts]) -> dict[str, int]:
    """Give the extern calls' rows (``aten::addmm`` under a compiled region) the module of the post-grad
    nodes they run: in each iteration, the k-th call of an op inside the region of compile id ``c`` is the
    k-th extern call of that op in graph ``c``'s code (Inductor runs its calls in code order). A graph
    whose rows do not match its calls one to one in some iteration keeps them unattributed (counted)."""
    matched = unmatched = 0
    for art in graphs.values():
        if not art.externs or not art.compile_id:
            continue
        ops = {op for op, _ in art.externs}
        mine = df[(df["node"] == art.compile_id) & df["op"].isin(ops)]
        plan: dict[int, tuple[str, str]] = {}
        ok = True
        for _, rows in mine.sort_values(["iteration", "seq"]).groupby("iteration", sort=False):
            for op in ops:
                calls = [nodes for o, nodes in art.externs if o == op]
                idx = list(rows.index[rows["op"] == op])
                if len(idx) % len(calls):  # the graph ran a whole number of times, or this is not its rows
                    ok = False
                    break
                for i, row in enumerate(idx):
                    plan[row] = _extern_module(art, calls[i % len(calls)])
            if not ok:
                break
        if not ok:
            unmatched += len(mine)
            continue
        for row, (module, module_type) in plan.items():
            if module:
                df.at[row, "module"] = module
                df.at[row, "module_type"] = module_type
                matched += 1
            else:
                unmatched += 1
    return {"rows_with_module": matched, "rows_without": unmatched}
