"""What an ONNX graph says about its nodes: the module each node came from, and which original nodes an
optimized graph's fused nodes replaced.

Module scopes: torch's dynamo exporter (torch >= 2.5) writes ``pkg.torch.onnx.name_scopes`` (module paths,
outermost first, ending with the FX node's name) and ``pkg.torch.onnx.class_hierarchy`` (module classes,
ending with the aten op) into every node's ``metadata_props``. Exporters that do not (the TorchScript one,
other frameworks) leave ``module`` empty and the op type decides.

Fused nodes: ONNX Runtime's optimized model (``SessionOptions.optimized_model_filepath``) keeps no node
metadata and renames some nodes (``GPT2Gelu``, ``SkipLayerNormalization``), but the tensors at a fused
subgraph's boundary keep their names. So a fused node's constituents are found by walking the original
graph backwards from the fused node's outputs through tensors that no longer exist in the optimized graph.
"""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ngbench.errors import InputError
from ngbench.scopes import common_chain

NAME_SCOPES = "pkg.torch.onnx.name_scopes"
CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
NODES_FORMAT = "ngbench.onnx-nodes/1"


@dataclass
class NodeInfo:
    """One node of the graph that ran: its op type, module and the original nodes it stands for."""

    op_type: str
    module: str = ""
    module_type: str = ""
    module_types: list[str] = field(default_factory=list)  # innermost first, short class names
    module_paths: list[str] = field(default_factory=list)  # innermost first, parallel to module_types
    aten: str = ""  # the aten op the exporter lowered (dynamo exporter only)
    # constituents: node, op_type, module, module_types, output (it produces one of the fused node's outputs)
    fused: list[dict[str, Any]] = field(default_factory=list)


def load_graph(path: str | Path):
    """The graph structure of an ONNX file, without its weights."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types
        raise InputError(f"{path}: not a readable ONNX model: {exc}") from exc


def _short(cls: str) -> str:
    return cls.rsplit(".", 1)[-1]


def _literal_list(text: str, key: str, node: str) -> list[str]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise InputError(f"ONNX node {node!r}: metadata {key!r} is not a list literal: {text[:80]!r}") from exc
    if not isinstance(value, list | tuple):
        raise InputError(
            f"ONNX node {node!r}: metadata {key!r} is a {type(value).__name__}, expected a list: {text[:80]!r}"
        )
    return [str(v) for v in value]


def node_modules(model) -> dict[str, NodeInfo]:
    """node name -> NodeInfo for every node of an exported (unoptimized) ONNX model."""
    out: dict[str, NodeInfo] = {}
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        props = {p.key: p.value for p in node.metadata_props}
        info = NodeInfo(op_type=node.op_type)
        if NAME_SCOPES in props and CLASS_HIERARCHY in props:
            scopes = _literal_list(props[NAME_SCOPES], NAME_SCOPES, name)
            classes = _literal_list(props[CLASS_HIERARCHY], CLASS_HIERARCHY, name)
            # the last entries are the FX node and its aten op; the rest are modules, outermost first
            modules = list(zip(scopes[:-1], classes[:-1], strict=False))
            info.aten = classes[-1] if classes else ""
            if modules:
                path, cls = modules[-1]
                info.module = path or "<root>"
                info.module_type = _short(cls)
                info.module_types = [_short(c) for _, c in reversed(modules)]
                info.module_paths = [p or "<root>" for p, _ in reversed(modules)]
        out[name] = info
    return out


def inherit_scopes(model, nodes: dict[str, NodeInfo]) -> int:
    """Give nodes without a module scope (the Casts an fp16 converter inserts around the nodes it keeps in
    fp32) the scope of a node they feed, else of the node feeding them; repeated until nothing changes, so
    a chain of inserted nodes takes its neighbour's. Returns how many nodes were given one."""
    consumers: dict[str, list[str]] = {}
    producer: dict[str, str] = {}
    names_ = [n.name or f"{n.op_type}_{i}" for i, n in enumerate(model.graph.node)]
    for name, node in zip(names_, model.graph.node):
        for t in node.input:
            consumers.setdefault(t, []).append(name)
        for t in node.output:
            producer[t] = name
    given = 0
    changed = True
    while changed:
        changed = False
        for name, node in zip(names_, model.graph.node):
            info = nodes.get(name)
            if info is None or info.module_types:
                continue
            near = [c for t in node.output for c in consumers.get(t, [])] + [
                producer[t] for t in node.input if t in producer
            ]
            donor = next((nodes[n] for n in near if n in nodes and nodes[n].module_types), None)
            if donor is not None:
                info.module, info.module_type = donor.module, donor.module_type
                info.module_types, info.module_paths = list(donor.module_types), list(donor.module_paths)
                given += 1
                changed = True
    return given


def fused_node_map(original, optimized) -> dict[str, list[str]]:
    """optimized node name -> the original node names it replaced (empty for nodes new to the optimized
    graph with no original counterpart, e.g. layout reorders). Nodes kept as they were map to themselves."""
    orig_names = {n.name for n in original.graph.node}
    producer: dict[str, Any] = {}
    for n in original.graph.node:
        for o in n.output:
            if o:
                producer[o] = n
    kept_tensors = {i.name for i in optimized.graph.input} | {t.name for t in optimized.graph.initializer}
    for n in optimized.graph.node:
        kept_tensors.update(o for o in n.output if o)
    kept_nodes = {n.name for n in optimized.graph.node} & orig_names

    out: dict[str, list[str]] = {}
    for n in optimized.graph.node:
        if n.name in kept_nodes and _same_io(n, producer, original):
            out[n.name] = [n.name]
            continue
        claimed: list[str] = []
        seen: set[str] = set()
        boundary = set(n.input)
        stack = [(o, True) for o in n.output if o]  # (tensor, is one of the fused node's own outputs)
        while stack:
            tensor, own_output = stack.pop()
            if not own_output and (tensor in boundary or tensor in kept_tensors):
                continue
            p = producer.get(tensor)
            if p is None or p.name in seen or (p.name in kept_nodes and p.name != n.name):
                continue
            seen.add(p.name)
            claimed.append(p.name)
            stack.extend((i, False) for i in p.input if i)
        out[n.name] = sorted(claimed, key=_order(original))
    return out


def _same_io(node, producer: dict, original) -> bool:
    outs = [o for o in node.output if o]
    return bool(outs) and all(producer.get(o) is not None and producer[o].name == node.name for o in outs)


def _order(original):
    index = {n.name: i for i, n in enumerate(original.graph.node)}
    return lambda name: index.get(name, -1)


def node_table(original, optimized=None) -> dict[str, NodeInfo]:
    """node name -> NodeInfo for the graph that ran: the original graph, or the optimized one with each
    fused node's constituents (and their modules) from the original."""
    modules = node_modules(original)
    if optimized is None:
        return modules
    mapping = fused_node_map(original, optimized)
    outputs_of = {n.name: {o for o in n.output if o} for n in original.graph.node}
    out: dict[str, NodeInfo] = {}
    for i, node in enumerate(optimized.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        constituents = [n for n in mapping.get(node.name, []) if n in modules]
        if constituents == [name] and modules[name].op_type == node.op_type:
            out[name] = modules[name]
            continue
        info = NodeInfo(op_type=node.op_type)
        own_outputs = {o for o in node.output if o}
        info.fused = [
            {
                "node": c,
                "op_type": m.op_type,
                "module": m.module,
                "module_types": m.module_types,
                "output": bool(outputs_of.get(c, set()) & own_outputs),  # it produces a tensor the node outputs
            }
            for c, m in ((c, modules[c]) for c in constituents)
        ]
        chains = [(modules[c].module_paths, modules[c].module_types) for c in constituents]
        info.module, info.module_type, info.module_types, info.module_paths = common_chain(chains)
        out[name] = info
    return out


def op_counts(model) -> dict[str, int]:
    """How many nodes of each op type the graph has (the denominators of the fusion rates)."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def write_nodes(nodes: dict[str, NodeInfo], path: str | Path, **extra: Any) -> None:
    payload = {"format": NODES_FORMAT, **extra, "nodes": {k: asdict(v) for k, v in nodes.items()}}
    Path(path).write_text(json.dumps(payload, indent=1))


def read_nodes(path: str | Path) -> dict[str, NodeInfo]:
    try:
        payload = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not a readable node table: {exc}") from exc
    if not isinstance(payload, dict):
        raise InputError(f"{path}: a JSON {type(payload).__name__}, expected a node table object ({NODES_FORMAT})")
    if payload.get("format") != NODES_FORMAT:
        raise InputError(f"{path}: 'format' is {payload.get('format')!r}, expected {NODES_FORMAT!r}")
    nodes = payload.get("nodes")
    if not isinstance(nodes, dict):
        raise InputError(f"{path}: 'nodes' is a {type(nodes).__name__}, expected an object of node name -> node")
    try:
        return {str(k): NodeInfo(**v) for k, v in nodes.items()}
    except TypeError as exc:
        raise InputError(f"{path}: a node entry does not match the node table format: {exc}") from exc


def read_extra(path: str | Path, key: str) -> Any:
    """A top-level entry of a node-table file other than the nodes (e.g. ``original_ops``)."""
    try:
        payload = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable node table: {exc}") from exc
    return payload.get(key) if isinstance(payload, dict) else None
