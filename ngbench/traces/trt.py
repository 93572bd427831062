"""TensorRT per-layer profile + engine layer information -> op table rows.

The two files trtexec writes (``--exportProfile``, ``--exportLayerInfo`` with
``--profilingVerbosity=detailed``) and that our TRT backend writes through the Python API
(``IProfiler`` records, ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``):

* profile: a JSON array, optionally led by ``{"count": N}`` (profiled iterations), then one record per layer
  ``{"name", "timeMs", "averageMs", "medianMs", "percentage"}`` (TensorRT 8.4 to 10.x);
* layer info: ``{"Layers": [...], "Bindings": [...]}``; each layer a dict with ``Name``, ``LayerType``,
  ``Inputs``/``Outputs``, ``TacticValue`` (and from 8.6 on ``Metadata``: the fused ONNX nodes as
  ``[ONNX Layer: <node>]`` entries separated by ``\\x1e``, ``TacticName``), or just the layer's name when the
  engine was built without detailed profiling verbosity.

Rows: ``op`` = the layer type, ``node`` = the layer name, ``time_us`` = the layer's average time. The
fused ONNX nodes of a layer come from its ``Metadata``, else from the layer name (TensorRT names fused
layers ``a + b + PWN(c, d)``); with the exporter's node table each gets its op type and module, and the
layer's group follows the same rule as every other backend (:meth:`Taxonomy.classify_fused`).

Closure: per-layer timing synchronizes after every layer, so the per-layer averages add up to more than
the end-to-end latency; the iteration is therefore the profile's own total (Σ average layer times), the
``Idle`` row is zero, and the unprofiled end-to-end latency is reported beside it, never mixed in.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ngbench import table as optable
from ngbench import taxonomy as tax
from ngbench import work as wk
from ngbench.errors import MAX_DURATION_US, InputError, finite_number, json_type
from ngbench.onnx_graph import NodeInfo
from ngbench.scopes import common_chain
from ngbench.traces import graph_work

log = logging.getLogger(__name__)
_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]\x1e]+)\]")
_FOREIGN_NODE = re.compile(r"^\{?ForeignNode\[(?P<body>.*)\]\}?$")  # a Myelin region: first...last node
MATCHED_FRACTION_MIN = 0.5  # fewer profile layers than this found in the layer info: the files do not belong together
_PROFILE_KEYS = ("name", "averageMs")
_NODE_LIKE = re.compile(r"^/?[A-Za-z][\w./:-]*$")  # torch exporter names start with /
_CONSTANT = re.compile(r"(\.weight|\.bias|\.running_mean|\.running_var|^onnx::|^Constant_?\d*$)")


def _load(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise InputError(f"{path}: the {what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputError(f"{path}: the {what} nests too deeply to be one") from exc


def read_profile(path: str | Path) -> tuple[list[dict[str, Any]], int | None]:
    """(layer records, profiled iteration count or None). Each record's ``name`` must be a string and its
    ``averageMs`` a finite number >= 0."""
    data = _load(path, "TensorRT per-layer profile")
    if not isinstance(data, list):
        raise InputError(
            f"{path}: expected a TensorRT per-layer profile (a JSON array of {{name, averageMs, ...}} records, "
            f"as trtexec --exportProfile writes), got a JSON {type(data).__name__}"
        )
    count = None
    records = []
    for i, rec in enumerate(data):
        if isinstance(rec, dict) and set(rec) == {"count"}:
            value = rec["count"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{path}: record {i}: 'count' is {value!r}, expected a whole number >= 0")
            count = value
            continue
        if not isinstance(rec, dict) or any(k not in rec for k in _PROFILE_KEYS):
            missing = [k for k in _PROFILE_KEYS if not isinstance(rec, dict) or k not in rec]
            raise InputError(f"{path}: record {i} lacks {missing}: not a TensorRT per-layer profile record")
        if not isinstance(rec["name"], str):
            raise InputError(f"{path}: record {i}: 'name' is {rec['name']!r}, expected a string (the layer name)")
        average = finite_number(rec["averageMs"], f"{path}: record {i} ({rec['name'][:60]!r}) 'averageMs'", minimum=0)
        if not average * 1e3 < MAX_DURATION_US:
            raise InputError(
                f"{path}: record {i}: 'averageMs' is {average!r}: expected less than {MAX_DURATION_US / 1e3:g} ms"
            )
        records.append({**rec, "averageMs": average})
    if not records:
        raise InputError(f"{path}: no layer records")
    return records, count


_LAYER_FIELDS = {"LayerType": str, "Metadata": str, "Inputs": list, "Outputs": list}


def read_layers(path: str | Path) -> dict[str, dict[str, Any]]:
    """Layer name -> layer info dict (``{"Name": name}`` only, for engines built without detailed
    profiling verbosity). The fields the parser reads are checked: ``Name``, ``LayerType`` and ``Metadata``
    strings, ``Inputs`` a list of objects whose ``Dimensions`` (when present) is a list."""
    data = _load(path, "TensorRT engine layer information")
    layers = data.get("Layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        raise InputError(
            f"{path}: expected TensorRT engine layer information ({{'Layers': [...], 'Bindings': [...]}}, as "
            "trtexec --exportLayerInfo or IEngineInspector writes); no 'Layers' list found"
        )
    out: dict[str, dict[str, Any]] = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, str):
            out[layer] = {"Name": layer}
            continue
        if not isinstance(layer, dict) or "Name" not in layer:
            raise InputError(f"{path}: layer {i} has no 'Name'")
        if not isinstance(layer["Name"], str):
            raise InputError(f"{path}: layer {i}: 'Name' is {layer['Name']!r}, expected a string")
        for key, kind in _LAYER_FIELDS.items():
            if key in layer and layer[key] is not None and not isinstance(layer[key], kind):
                raise InputError(
                    f"{path}: layer {i} ({layer['Name'][:60]!r}): {key!r} is {json_type(layer[key])} "
                    f"{str(layer[key])[:40]!r}, expected {json_type(kind())}"
                )
        for tensor in layer.get("Inputs") or []:
            if not isinstance(tensor, dict) or not isinstance(tensor.get("Dimensions", []), list):
                raise InputError(
                    f"{path}: layer {i} ({layer['Name'][:60]!r}): each of 'Inputs' must be an object with a "
                    f"'Dimensions' list, got {str(tensor)[:60]!r}"
                )
        out[layer["Name"]] = layer
    return out


def fused_onnx_nodes(layer: dict[str, Any], known: dict[str, NodeInfo] | None = None) -> list[str]:
    """The ONNX nodes a layer implements: from ``Metadata`` (TensorRT >= 8.6), else from its name (``a + b
    + PWN(c, d)``; a Myelin region ``{ForeignNode[first...last]}`` names only its first and last node)."""
    meta = layer.get("Metadata")
    if isinstance(meta, str) and "ONNX Layer" in meta:
        return [n.strip() for n in _ONNX_LAYER.findall(meta)]
    name = layer.get("Name", "")
    foreign = _FOREIGN_NODE.match(name)
    if foreign:
        name = foreign.group("body").replace("...", " + ")
    tokens = [t.strip() for t in re.split(r"\s\+\s|PWN\(|\)|,\s*", name) if t.strip()]
    if known:
        return [t for t in tokens if t in known]
    return [t for t in tokens if _NODE_LIKE.match(t) and not _CONSTANT.search(t) and t != "PWN"]


def _layer_tensors(entries: list | None) -> list[wk.TensorSpec] | None:
    out = []
    for t in entries or []:
        dims = t.get("Dimensions") if isinstance(t, dict) else None
        if not isinstance(dims, list) or not all(_whole(d) for d in dims):
            return None  # dynamic (-1) or missing: the layer's tensors are not known
        out.append(wk.TensorSpec(tuple(dims), wk.trt_dtype(str(t.get("Format/Datatype"))) or "float32"))
    return out


def _constant_bytes(layer: dict[str, Any], key: str) -> float:
    spec = layer.get(key)
    if not isinstance(spec, dict) or not _whole(spec.get("Count")):
        return 0.0
    return spec["Count"] * wk.ITEMSIZE.get(wk.trt_dtype(str(spec.get("Type"))) or "float32", 4)


def layer_work(layer: dict[str, Any], layer_type: str, group: str, constituents: list[tuple[str, str]]) -> wk.Work:
    """A layer's work from the engine's layer information: its own input and output tensors (dimensions and
    element type from ``Format/Datatype``) plus its weights and bias (``Weights``/``Bias`` counts). Fields
    that are not what TensorRT writes leave the work unknown (the times are read all the same)."""
    try:
        return _layer_work(layer, layer_type, group, constituents)
    except (TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError):
        return wk.unknown("layer information's shape fields are not what TensorRT writes")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _layer_work(layer: dict[str, Any], layer_type: str, group: str, constituents: list[tuple[str, str]]) -> wk.Work:
    inputs, outputs = _layer_tensors(layer.get("Inputs")), _layer_tensors(layer.get("Outputs"))
    if inputs is None or outputs is None or (not inputs and not outputs):
        return wk.unknown("layer information without static input/output dimensions")
    conv_weight = None
    kernel = layer.get("Kernel")
    if isinstance(kernel, list) and all(_whole(k) for k in kernel) and _whole(layer.get("OutMaps")) and inputs:
        groups = layer["Groups"] if _whole(layer.get("Groups")) and layer["Groups"] > 0 else 1
        conv_weight = [layer["OutMaps"], inputs[0].shape[1] // groups, *layer["Kernel"]]
    return graph_work.node_work(
        layer_type,
        group,
        inputs,
        outputs,
        source="layer-info",
        kind="trt",
        constituents=constituents,
        weight_bytes=_constant_bytes(layer, "Weights") + _constant_bytes(layer, "Bias"),
        conv_weight=conv_weight,
    )


_NODE_OP = re.compile(r"^(?:node_)?(?P<op>[A-Za-z][A-Za-z0-9]*?)(?:_(?:token_|myl)?\d+)*$")


def op_type_of(node: str, known: dict[str, NodeInfo] | None = None) -> str:
    """The ONNX op type of a node: from the exporter's node table, else from its name (``/fc/Gemm`` ->
    Gemm, ``/attn/MatMul_1`` -> MatMul, ``node_Conv_12`` -> Conv, ``Conv_12`` -> Conv)."""
    if known and node in known:
        return known[node].op_type
    last = node.rstrip("/").rsplit("/", 1)[-1]
    m = _NODE_OP.match(last)
    return m.group("op") if m else node


def normalize(
    profile_path: str | Path,
    layers_path: str | Path | None = None,
    *,
    nodes: dict[str, NodeInfo] | None = None,
    platform: str = "unknown",
    backend: str = "trt",
    model: str = "unknown",
    batch_size: int = 0,
    seq_len: int | None = None,
    taxonomy: tax.Taxonomy | None = None,
):
    """A TensorRT per-layer profile (+ layer info) -> (op table DataFrame, info)."""
    taxonomy = taxonomy or tax.load()
    records, count = read_profile(profile_path)
    layers = read_layers(layers_path) if layers_path else {}
    nodes = nodes or {}
    found = _layer_rows(records, layers, nodes, taxonomy)
    if layers_path and found.unmatched:
        _check_layers_belong(profile_path, layers_path, len(records), found.unmatched)
    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    # one averaged iteration, as long as its layers: nothing between layers is measured (an Idle row of 0)
    total = sum(found.ops.columns["time_us"])  # finite: each average is below MAX_DURATION_US (read_profile)
    optable.append_iteration(cols, 0, total, found.ops.columns)
    df = optable.frame(
        cols, platform=platform, device="cuda", backend=backend, model=model, batch_size=batch_size, seq_len=seq_len
    )
    detailed = any("LayerType" in v for v in layers.values())
    info = {
        "trace": str(profile_path),
        "layers_file": str(layers_path) if layers_path else None,
        "iterations": 1,
        "profiled_iterations": count,
        "iteration_source": "per-layer averages over the profiled iterations (one averaged iteration)",
        "time_basis": "per-layer device time averages (layers synchronized one by one; their sum exceeds the "
        "end-to-end latency, which is reported separately)",
        "layer_info": "detailed" if detailed else ("names only" if layers else "none"),
        "layers": len(records),
        "layers_missing_from_layer_info": found.unmatched[:50],
        "layers_fused_gemm_non_gemm": found.mixed,
        "node_table": bool(nodes),
        "work_unknown_reasons": found.no_work,
    }
    optable.check(df, source=str(profile_path), types=False)
    return df, info


@dataclass
class _LayerRows:
    ops: optable.OpRows = field(default_factory=optable.OpRows)
    unmatched: list[str] = field(default_factory=list)  # profiled layers the layer information does not name
    mixed: list[str] = field(default_factory=list)  # GEMM layers that fused non-GEMM work
    no_work: dict[str, int] = field(default_factory=dict)  # why a layer's work is unknown, per reason


def _layer_rows(records: list[dict], layers: dict, nodes: dict[str, NodeInfo], taxonomy: tax.Taxonomy) -> _LayerRows:
    """One row per profiled layer, classified by the ONNX nodes it fused (from the layer information)."""
    out = _LayerRows()
    for rec in records:
        name = rec["name"]
        layer = layers.get(name)
        if layer is None:
            out.unmatched.append(name)
            layer = {"Name": name}
        layer_type = layer.get("LayerType") or "unknown layer"
        fused = fused_onnx_nodes(layer, nodes)
        parts, fused_ops, chains = [], [], []  # chains: (module paths, classes) of each known node
        for node in fused:
            info = nodes.get(node)
            op_type = op_type_of(node, nodes)
            module_types = info.module_types if info else []
            # TensorRT lists a layer's nodes in execution order: the last one produces what the layer outputs
            group = taxonomy.constituent_group(op_type, module_types, "onnx")
            parts.append(tax.Constituent(group, 1.0, node == fused[-1]))
            fused_ops.append(
                optable.fused_entry(op_type, node, info.module if info else "", info.module_type if info else "")
            )
            chains.append((info.module_paths, info.module_types) if info else ([], []))
        common = common_chain(chains)
        if parts:
            d = taxonomy.classify_fused(layer_type, common[2], parts, kind="trt")
        else:
            d = taxonomy.classify(layer_type, (), kind="trt")
        if d.group == tax.GEMM and any(c.group not in (tax.GEMM, "Memory") for c in parts):
            out.mixed.append(name)
        w = layer_work(layer, layer_type, d.group, [(f.split("|")[0], c.group) for f, c in zip(fused_ops, parts)])
        if w.source == "none":
            out.no_work[w.note] = out.no_work.get(w.note, 0) + 1
        out.ops.add(
            layer_type,
            node=name,
            module=common[0],
            module_type=common[1],
            group=d.group,
            group_source=d.source,
            is_gemm=taxonomy.is_gemm(d.group),
            time_us=float(rec["averageMs"]) * 1e3,
            device_time_us=float(rec["averageMs"]) * 1e3,
            input_shapes=json.dumps([i.get("Dimensions") for i in layer["Inputs"]]) if layer.get("Inputs") else "",
            fused_ops=fused_ops,
            work=w,
        )
    return out


def _check_layers_belong(profile_path, layers_path, n_records: int, unmatched: list[str]) -> None:
    """Layer information that names too few of the profiled layers is another engine's: an error; a few
    missing are a warning."""
    matched = n_records - len(unmatched)
    shown = ", ".join(repr(n[:60]) for n in unmatched[:5])
    if matched < MATCHED_FRACTION_MIN * n_records:
        raise InputError(
            f"{layers_path}: names {matched} of the {n_records} layers of {profile_path}; missing e.g. "
            f"{shown}: expected the layer information of the engine that was profiled"
        )
    log.warning("%s: %d profiled layer(s) missing from %s, e.g. %s", profile_path, len(unmatched), layers_path, shown)
