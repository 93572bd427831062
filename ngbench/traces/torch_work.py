"""Work (bytes, FLOPs, layout) of PyTorch top-level ops, from two sources:

* ``tensors``: PyTorch's execution trace (``torch.profiler.ExecutionTraceObserver``), recorded in our
  runs' one-iteration shapes pass. Every op node lists the tensors it read and wrote with shape, strides,
  dtype, tensor and storage ids, so bytes are exact: a tensor passed twice is read once, an output sharing
  its input's storage without a write (a view) moves nothing, an in-place output is written.
* ``shapes``: a Kineto trace recorded with ``record_shapes`` (``Input Dims``, ``Input type``, ``Input
  Strides``, ``Concrete Inputs``), ours or a user's. Outputs come from PyTorch's own shape rule: the op is
  called on the ``meta`` device with the recorded arguments. Ops whose output depends on the data (nonzero,
  nms) have no meta rule: their work is ``none``, with that reason.

GEMM-class ops (the taxonomy's GEMM group, attention included) get their FLOPs from running them on meta
tensors under ``torch.utils.flop_counter.FlopCounterMode``: PyTorch's own formulas. Other ops: the
per-element table (:mod:`ngbench.work`).
"""

from __future__ import annotations

import ast
import gzip
import json
import logging
import re
from collections import Counter, defaultdict
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from ngbench import taxonomy as tax
from ngbench import work as wk
from ngbench.errors import InputError

log = logging.getLogger(__name__)
_OVERWRITES = {"copy_", "fill_", "zero_", "normal_", "uniform_", "random_", "set_"}  # write self, read nothing of it
_ALIAS_WRITE = re.compile(r"\([a-z]!\)")
_OP_LIBRARIES = {"torchvision": "torchvision", "bitsandbytes": "bitsandbytes"}  # op namespace -> its package


def _base_name(op: str) -> str:
    return op.split("::")[-1].split(".")[0]


# -- meta-device calls ----------------------------------------------------------------------------------------
def _resolve(op: str, overload: str | None = None):
    import torch

    namespace, _, name = op.partition("::")
    if not name:
        return None
    if namespace in _OP_LIBRARIES and not hasattr(torch.ops, namespace):
        try:  # the library registers its ops (and their meta rules) when imported
            __import__(_OP_LIBRARIES[namespace])
        except ImportError:
            return None
    packet = getattr(getattr(torch.ops, namespace, None), name, None)
    if packet is None:
        return None
    if overload is not None:
        return getattr(packet, overload or "default", None)
    return packet


def _meta_tensor(spec: wk.TensorSpec):
    import torch

    dtype = getattr(torch, spec.dtype, torch.float32) if spec.dtype != "int4" else torch.uint8
    if spec.strides is not None and len(spec.strides) == len(spec.shape):
        return torch.empty_strided(spec.shape, spec.strides, dtype=dtype, device="meta")
    return torch.empty(spec.shape, dtype=dtype, device="meta")


def _bind(overload, values: list) -> tuple[list, dict] | None:
    """Recorded values (every schema argument in order, keyword-only ones too, as profilers record them) ->
    (args, kwargs) for this overload; None when they do not fit its schema. A None for an argument that is
    not optional means "not recorded": the default applies."""
    import torch

    schema = overload._schema
    if len(values) != len(schema.arguments):
        return None
    args, kwargs = [], {}
    for arg, value in zip(schema.arguments, values):
        kind = str(arg.type)
        wants_tensor = kind in ("Tensor", "Tensor?", "Optional[Tensor]")
        if wants_tensor and value is not None and not isinstance(value, torch.Tensor):
            return None
        if not wants_tensor and isinstance(value, torch.Tensor):
            return None
        if value is None and "Optional" not in kind and not kind.endswith("?"):
            if not arg.has_default_value():
                return None
            continue
        if arg.kwarg_only or (value is None and kwargs):
            kwargs[arg.name] = value
        elif kwargs:  # a positional argument after an omitted one: pass it by name
            kwargs[arg.name] = value
        else:
            args.append(value)
    return args, kwargs


def _run_meta(fn, values: list, gemm: bool) -> tuple[Any, float | None]:
    """(result, FLOPs counted by PyTorch's formulas when ``gemm``) of the op ``fn`` (an overload, or a
    packet whose overloads are tried in turn) called with the recorded ``values`` on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    overloads = [getattr(fn, name) for name in fn.overloads()] if hasattr(fn, "overloads") else [fn]
    last: Exception | None = None
    for overload in overloads:
        bound = _bind(overload, values)
        if bound is None:
            continue
        args, kwargs = bound
        try:
            with torch.device("meta"), torch.inference_mode():
                if not gemm:
                    return overload(*args, **kwargs), None
                with FlopCounterMode(display=False) as counter:
                    out = overload(*args, **kwargs)
                return out, float(counter.get_total_flops()) or _product_flops(args, out)
        except Exception as exc:  # noqa: BLE001 (try the next overload)
            last = exc
    raise last or TypeError("no overload fits the recorded arguments")


def _product_flops(args: list, out) -> float | None:
    """A matrix product PyTorch has no FLOP formula for (bitsandbytes' int8 matmul): 2 x output elements x
    the first operand's inner dimension; None when the call is no such product."""
    import torch

    operands = [a for a in args if isinstance(a, torch.Tensor)]
    outs = _outputs(out)
    if len(operands) < 2 or not outs or operands[0].dim() < 1:
        return None
    return 2.0 * outs[0].numel() * operands[0].shape[-1]


def _outputs(result) -> list:
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, list | tuple):
        return [t for r in result for t in _outputs(r)]
    return []


def _spec_of(t, ident=None) -> wk.TensorSpec:
    return wk.TensorSpec(tuple(t.shape), str(t.dtype).removeprefix("torch."), tuple(t.stride()), ident)


# -- shapes: a Kineto trace's recorded arguments -----------------------------------------------------------------
def _concrete(value: str):
    if value in ("", None):
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value  # a string argument (gelu's approximate="tanh")


@lru_cache(maxsize=65536)
def from_args(op: str, args_json: str, group: str) -> wk.Work:
    """Work of one op from its recorded ``[dims, types, strides, concrete]`` (JSON, as the Kineto reader
    keeps it); recorded values of the wrong kind (a damaged trace) make it unknown. Cached: eager models
    repeat the same calls."""
    try:
        return _from_args(op, args_json, group)
    except (ValueError, TypeError, AttributeError, IndexError, OverflowError):
        return wk.unknown("recorded arguments malformed (not the dims/types/strides/values PyTorch writes)")


def _from_args(op: str, args_json: str, group: str) -> wk.Work:
    try:
        dims, types, strides, concrete = json.loads(args_json)
    except (ValueError, TypeError):
        return wk.unknown("recorded arguments unreadable")
    costs = wk.load_costs()
    inputs: list[wk.TensorSpec] = []
    args: list = []
    list_dtype = next((wk.canonical_dtype(t) for t in types if wk.canonical_dtype(t)), None) or "float32"
    for i, kind in enumerate(types):
        d = dims[i] if i < len(dims) else []
        s = strides[i] if i < len(strides) and strides[i] else None
        dtype = wk.canonical_dtype(kind)
        if dtype is not None:
            spec = wk.TensorSpec(tuple(d), dtype, tuple(s) if s else None)
            inputs.append(spec)
            args.append(spec)
        elif kind == "TensorList" or (kind.startswith("GenericList[") and "Tensor" in kind):
            # a TensorList records dims only: its tensors take the op's other tensors' dtype
            specs = [wk.TensorSpec(tuple(x), list_dtype) for x in d if isinstance(x, list)]
            inputs.extend(specs)
            args.append(specs)
        else:
            args.append(_concrete(concrete[i] if i < len(concrete) else ""))
    name = _base_name(op)
    fn = _resolve(op)
    if fn is None:
        return wk.unknown(f"{op}: not a PyTorch operator this torch knows")
    # a non-tensor argument whose type the profiler did not record (Device, String, None alike): the default
    # is assumed, which is right for most ops but decides whether to(...) copies
    unrecorded = any(k == "" and (i >= len(concrete) or concrete[i] == "") for i, k in enumerate(types))
    try:
        real = [_meta_tensor(a) if isinstance(a, wk.TensorSpec) else _meta_list(a) for a in args]
        own = tax.load().op_group(op)  # GEMM formulas for what multiplies matrices by name, not by module
        result, gemm_flops = _run_meta(fn, real, own == tax.GEMM)
    except Exception as exc:  # noqa: BLE001 (any failure of PyTorch's shape rule means: unknown)
        if "data-dependent" in str(exc) or "nonzero" in str(exc):
            return wk.unknown(f"{op}: output shape depends on the data (no meta rule)")
        if not concrete and len(inputs) < len(types):
            return wk.unknown("the trace records no Concrete Inputs: non-tensor arguments unknown")
        return wk.unknown(f"{op}: PyTorch's meta rule refused the recorded arguments ({type(exc).__name__})")
    outs = _outputs(result)
    tensors_in = [t for t in real if _is_tensor(t)] + [t for lst in real if isinstance(lst, list) for t in lst]
    inplace = name.endswith("_") and any(o is t for o in outs for t in tensors_in)
    view = not inplace and bool(outs) and all(_aliases(o, tensors_in) for o in outs)
    if view and unrecorded:
        return wk.unknown(f"{op}: an unrecorded argument decides whether it copies (device, dtype)")
    view = view or wk.moves_no_data(op, outs)  # a metadata query: no tensor out, nothing read
    out_specs = [_spec_of(o) for o in outs]
    in_specs = [wk.TensorSpec(s.shape, s.dtype, s.strides, ident=i) for i, s in enumerate(inputs)]
    if inplace:  # the output is the first input, written back
        out_specs = [wk.TensorSpec(s.shape, s.dtype, s.strides, ident=0) for s in out_specs[:1]] + out_specs[1:]
    nbytes = wk.traffic(
        in_specs, out_specs, view=view, overwrites=inplace and name in _OVERWRITES, gather=wk.is_gather(op)
    )
    flops = gemm_flops
    if flops is None:
        flops = costs.flops(op, wk.cost_group(own, group), inputs, [] if view else out_specs)
    return wk.Work(nbytes, 0.0 if view else flops, "shapes", wk.layout_of(inputs))


def _meta_list(value):
    if isinstance(value, list) and value and all(isinstance(v, wk.TensorSpec) for v in value):
        return [_meta_tensor(v) for v in value]
    return value


def _is_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _aliases(out, inputs) -> bool:
    if any(out is t for t in inputs):
        return True
    base = out._base if out._is_view() else None
    return base is not None and any(base is t or (t._is_view() and t._base is base) for t in inputs)


# -- tensors: PyTorch's execution trace ----------------------------------------------------------------------
def read_exec_trace(path: str | Path) -> dict:
    p = Path(path)
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise InputError(f"{p}: not a readable PyTorch execution trace: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise InputError(f"{p}: expected a PyTorch execution trace (an object with a 'nodes' list)")
    return data


def _attrs(node: dict) -> dict:
    return {a.get("name"): a.get("value") for a in node.get("attrs") or [] if isinstance(a, dict)}


def _et_tensors(side: dict) -> list[wk.TensorSpec]:
    """Tensors of an ET node's ``inputs`` or ``outputs``: ``Tensor(float)`` values are
    ``[tensor id, storage id, offset, numel, itemsize, device]``; lists of tensors hold such lists."""
    out = []
    values, shapes, types = side.get("values") or [], side.get("shapes") or [], side.get("types") or []
    strides = side.get("strides") or [None] * len(types)
    for value, shape, kind, stride in zip(values, shapes, types, strides):
        if kind.startswith("Tensor(") and isinstance(value, list) and len(value) >= 3:
            out.append(_et_tensor(value, shape, kind, stride))
        elif kind.startswith("GenericList[") and "Tensor(" in kind and isinstance(value, list):
            inner = kind[len("GenericList[") : -1].split(",")
            for j, v in enumerate(value):
                if isinstance(v, list) and len(v) >= 3 and j < len(shape):
                    out.append(
                        _et_tensor(
                            v, shape[j], inner[j] if j < len(inner) else inner[-1], stride[j] if stride else None
                        )
                    )
    return out


def _et_tensor(value, shape, kind, stride) -> wk.TensorSpec:
    dtype = wk.canonical_dtype(kind) or "float32"
    strides = tuple(stride) if isinstance(stride, list) and len(stride) == len(shape) else None
    return wk.TensorSpec(tuple(shape), dtype, strides, ident=(value[1], value[2], value[3] if len(value) > 3 else 0))


def _et_args(side: dict) -> list:
    args: list = []
    values, shapes, types = side.get("values") or [], side.get("shapes") or [], side.get("types") or []
    strides = side.get("strides") or [None] * len(types)
    for value, shape, kind, stride in zip(values, shapes, types, strides):
        if kind.startswith("Tensor("):
            args.append(_meta_tensor(_et_tensor(value, shape, kind, stride)))
        elif kind.startswith("GenericList[") and "Tensor(" in kind:
            args.append([_meta_tensor(t) for t in _et_tensors({"values": [value], "shapes": [shape],
                                                                "types": [kind], "strides": [stride]})])  # fmt: skip
        elif kind == "None" or value == "<None>":
            args.append(None)
        elif kind == "Device":
            args.append("meta")
        else:
            args.append(value)
    return args


@lru_cache(maxsize=16384)
def _et_gemm_flops(schema: str, args_json: str) -> float | None:
    """FLOPs of a GEMM-class ET node by PyTorch's formulas (the op run on meta under FlopCounterMode)."""
    head = schema.split("(", 1)[0]
    name, _, overload = head.partition(".")
    fn = _resolve(name, overload or "")
    if fn is None:
        return None
    try:
        _, flops = _run_meta(fn, _et_args(json.loads(args_json)), True)
    except Exception:  # noqa: BLE001 (no meta rule: FLOPs unknown)
        return None
    return flops


def exec_trace_ops(path: str | Path, groups: list[str], taxonomy: tax.Taxonomy | None = None) -> list[wk.Work]:
    """Work of the top-level ops of the execution trace's dispatching thread, in call order, for rows whose
    groups are ``groups`` (the shapes pass's rows, same order). Raises :class:`InputError` when the trace's
    top-level ops are not the rows' (count), so the caller falls back to ``shapes``."""
    taxonomy = taxonomy or tax.load()
    costs = wk.load_costs()
    rows = top_level_nodes(read_exec_trace(path), taxonomy)
    if len(rows) != len(groups):
        raise InputError(f"{path}: {len(rows)} top-level ops, the shapes pass has {len(groups)} rows")
    out = []
    for node, group in zip(rows, groups):
        attrs = _attrs(node)
        schema = attrs.get("op_schema") or ""
        inputs = _et_tensors(node.get("inputs") or {})
        outputs = _et_tensors(node.get("outputs") or {})
        in_storage = {t.ident[0] for t in inputs if t.ident}
        writes = bool(_ALIAS_WRITE.search(schema.split("->", 1)[-1]))
        view = (bool(outputs) and not writes and all(t.ident and t.ident[0] in in_storage for t in outputs)) or (
            wk.moves_no_data(node.get("name", ""), outputs)
        )
        name = _base_name(node.get("name", ""))
        nbytes = wk.traffic(
            inputs, outputs, view=view, overwrites=writes and name in _OVERWRITES, gather=wk.is_gather(name)
        )
        if view:
            flops = 0.0
        elif taxonomy.op_group(node.get("name", "")) == tax.GEMM:
            flops = _et_gemm_flops(schema, json.dumps(node.get("inputs") or {}, sort_keys=True))
        else:
            own = taxonomy.op_group(node.get("name", ""))
            flops = costs.flops(node.get("name", ""), wk.cost_group(own, group), inputs, outputs)
        out.append(wk.Work(nbytes, flops, "tensors", wk.layout_of(inputs)))
    return out


def top_level_nodes(data: dict, taxonomy: tax.Taxonomy) -> list[dict]:
    """Op nodes (with an operator schema) of the thread that ran the most, none of whose ancestors is an
    op (transparent composite ops excepted, as in the Kineto normalizer), in call order."""
    nodes = {n.get("id"): n for n in data["nodes"] if isinstance(n, dict)}
    attrs = {i: _attrs(n) for i, n in nodes.items()}
    is_op = {i: bool(a.get("op_schema")) for i, a in attrs.items()}
    transparent = taxonomy.transparent

    @cache
    def under_op(i) -> bool:
        parent = nodes.get(i, {}).get("ctrl_deps")
        if parent is None or parent == i or parent not in nodes:
            return False
        if is_op.get(parent) and not transparent.search(nodes[parent].get("name", "")):
            return True
        return under_op(parent)

    by_thread: dict[Any, list] = defaultdict(list)
    for i, n in nodes.items():
        if is_op[i] and not transparent.search(n.get("name", "")) and not under_op(i):
            by_thread[attrs[i].get("tid")].append(i)
    if not by_thread:
        return []
    counts = Counter({k: len(v) for k, v in by_thread.items()})
    main = counts.most_common(1)[0][0]
    order = sorted(by_thread[main], key=lambda i: (attrs[i].get("rf_id") or 0, i or 0))
    return [nodes[i] for i in order]
