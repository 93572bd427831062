"""Operator taxonomy: op / module / layer / kernel name -> group, by one rule (README: the taxonomy).

The data lives in ``taxonomy.yaml`` beside this file; this module only applies it:

1. the innermost *known* module class that ran the op decides (``NewGELUActivation`` -> Activation even
   though it runs mul/add/tanh/pow);
2. else the op's own name (aten op, ONNX op type or TensorRT layer type, depending on ``kind``);
3. else, for compiled kernels named ``..._fused_<op>_<op>_<n>``, the group those ops agree on;
4. else the first matching kernel-name pattern (device kernels, layer names);
5. else ``Other``: always counted, and listed by :func:`unknown_ops_report`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

import yaml

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")
OTHER = "Other"
IDLE = "Idle"
GEMM = "GEMM"
QUANTIZATION = "Quantization"

Kind = Literal["torch", "onnx", "trt", "kernel"]
_KIND_SECTION = {"torch": "torch_ops", "onnx": "onnx_ops", "trt": "trt_layers"}


@dataclass(frozen=True)
class Decision:
    group: str
    source: str  # "module", "op", "kernel", "kernels", "fused-name", "fused", "fused-output", "unknown", "idle"


class Constituent(NamedTuple):
    """One op folded into a fused kernel, node or layer, as :meth:`Taxonomy.classify_fused` weighs it."""

    group: str
    weight: float = 1.0
    output: bool = False  # it produces a value the fused unit stores (not only one it consumes inside)


class Taxonomy:
    def __init__(self, data: dict):
        self.groups: dict[str, dict] = data["groups"]
        self.class_colors: dict[str, str] = data.get("class_colors") or {}
        for required in (GEMM, OTHER, IDLE) + ((QUANTIZATION,) if data.get("quantization_scopes") else ()):
            if required not in self.groups:
                raise ValueError(f"taxonomy: group {required!r} must be defined under 'groups'")
        self.modules = self._invert(data.get("modules", {}), "modules")
        self.ops = {kind: self._invert(data.get(section, {}), section) for kind, section in _KIND_SECTION.items()}
        self.quant_scopes = frozenset(data.get("quantization_scopes", []))
        self.transparent = re.compile("|".join(f"(?:{p})" for p in data.get("transparent_ops", [])) or "(?!)")
        self.kernel_patterns = self._patterns(data, "kernel_patterns")
        self.trt_layer_patterns = self._patterns(data, "trt_layer_patterns")

    def _patterns(self, data: dict, section: str) -> list[tuple[re.Pattern, str]]:
        return [
            (re.compile(p["pattern"], re.IGNORECASE), self._check_group(p["group"], section))
            for p in data.get(section, [])
        ]

    def _check_group(self, group: str, where: str) -> str:
        if group not in self.groups:
            raise ValueError(f"taxonomy: {where} names group {group!r}, which is not under 'groups'")
        return group

    def _invert(self, section: dict[str, list[str]], where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for group, names in section.items():
            self._check_group(group, where)
            for name in names:
                if name in out and out[name] != group:
                    raise ValueError(f"taxonomy: {where}: {name!r} is listed in both {out[name]} and {group}")
                out[name] = group
        return out

    # -- the rule -------------------------------------------------------------------------------------------
    def classify(self, op: str, module_types: Sequence[str] = (), kind: Kind = "torch") -> Decision:
        """Group of ``op`` run inside ``module_types`` (innermost first)."""
        for module_type in module_types:
            if module_type in self.quant_scopes:  # a quantized linear: its matmuls are GEMM, the rest is not
                if self.op_group(op, kind) == GEMM:
                    return Decision(GEMM, "op")
                return Decision(QUANTIZATION, "module")
            group = self.modules.get(module_type)
            if group is not None:
                return Decision(group, "module")
        group = self.op_group(op, kind)
        if group is not None:
            return Decision(group, "op")
        group = self.fused_name_group(op)
        if group is not None:
            return Decision(group, "fused-name")
        group = self.kernel_group(op)
        if group is not None:
            return Decision(group, "kernel")
        return Decision(OTHER, "unknown")

    def constituent_group(self, op: str, module_types: Sequence[str] = (), kind: Kind = "torch") -> str:
        """Group of one op folded into a fused node or kernel. The ordinary rule, except that only a GEMM op
        is GEMM: a reshape or bias add that ran inside a Linear module but was fused away from its matmul
        (into a neighbouring element-wise kernel) is counted as what it is, not as GEMM."""
        own = self.op_group(op, kind)
        if own == GEMM:
            return GEMM
        group = self.classify(op, module_types, kind).group
        if group == GEMM:
            return own or OTHER
        return group

    def classify_fused(
        self,
        op: str,
        module_types: Sequence[str],
        constituents: Sequence[Constituent | tuple[str, float]],
        kind: Kind = "torch",
    ) -> Decision:
        """Group of a fused node, kernel or layer from its constituents (each a :class:`Constituent`: its
        group from :meth:`constituent_group`, its weight (how many ops it contributed) and whether it
        produces one of the fused unit's outputs), run inside ``module_types`` (the innermost modules common
        to all constituents, innermost first). The one rule for Inductor kernels, ORT fused nodes and
        TensorRT layers:

        1. GEMM when a constituent is a GEMM or the unit's own type multiplies matrices (a GEMM with a fused
           epilogue, ``CaskGemmConvolution``; its ``fused_ops`` list the non-GEMM parts, which the fusion
           analysis counts as fused away); a single constituent decides alone (TensorRT runs a
           QuantizeLinear as a ``Reformat`` layer: it is Quantization);
        2. else the innermost known module common to all constituents (``NewGELUActivation``'s 8 nodes
           fused into one FastGelu are Activation);
        3. else the unit's own name when it is a known op type (``SkipLayerNormalization``);
        4. else what it computes for its output: the group of the constituents that produce the values it
           stores (DETR's softmax kernel recomputes the interpolated padding mask inline, but stores the
           softmax: Logit), weighted by op count, Memory set aside when compute ops are present (a reshape
           folded into a softmax kernel leaves it a softmax); all constituents when none is marked;
        5. else ``Other``."""
        parts = [c if isinstance(c, Constituent) else Constituent(c[0], c[1]) for c in constituents]
        groups = [c.group for c in parts]
        if GEMM in groups or self.op_group(op, kind) == GEMM:
            return Decision(GEMM, "fused")
        if len(groups) == 1:
            return Decision(groups[0], "fused")
        for module_type in module_types:
            group = self.modules.get(module_type)
            if group is not None:
                return Decision(group, "module")
        group = self.op_group(op, kind)
        if group is not None:
            return Decision(group, "op")
        outputs = [c for c in parts if c.output] or parts
        weights: dict[str, float] = {}
        for c in outputs:
            weights[c.group] = weights.get(c.group, 0.0) + c.weight
        compute = {g: w for g, w in weights.items() if g not in ("Memory", OTHER)} or weights
        if not compute:
            return Decision(OTHER, "unknown")
        order = {g: i for i, g in enumerate(self.groups)}
        best = max(compute, key=lambda g: (compute[g], -order.get(g, len(order))))
        return Decision(best, "fused-output" if any(c.output for c in parts) else "fused")

    def op_group(self, op: str, kind: Kind = "torch") -> str | None:
        if kind == "kernel":
            return None
        table = self.ops[kind]
        for candidate in name_candidates(op):
            group = table.get(candidate)
            if group is not None:
                return group
        if kind == "trt":  # tactic families the exact list does not name
            for pattern, group in self.trt_layer_patterns:
                if pattern.search(op):
                    return group
        return None

    def kernel_group(self, name: str) -> str | None:
        for pattern, group in self.kernel_patterns:
            if pattern.search(name):
                return group
        return None

    def fused_name_group(self, name: str) -> str | None:
        """Group of a compiled kernel named after the ops it fuses (``cpp_fused_add_gelu_3``,
        ``triton_poi_fused_add_cos_sin_0``): GEMM if any fused op is a GEMM, else the group of the
        non-Memory ops when they agree, else None (mixed: left to the fusion-aware backends)."""
        ops = fused_ops_from_name(name, self.ops["torch"])
        if not ops:
            return None
        groups = {self.ops["torch"][o] for o in ops}
        if GEMM in groups:
            return GEMM
        compute = groups - {"Memory"} or groups
        return compute.pop() if len(compute) == 1 else None

    def is_gemm(self, group: str) -> bool:
        return bool(self.groups.get(group, {}).get("gemm", False))

    def is_overhead(self, group: str) -> bool:
        """Idle, and groups of framework work that is no operator (``overhead: true``, e.g. Runtime)."""
        return group == IDLE or bool(self.groups.get(group, {}).get("overhead", False))

    @property
    def palette(self) -> dict[str, str]:
        return {name: spec["color"] for name, spec in self.groups.items()}

    @property
    def class_palette(self) -> dict[str, str]:
        """Colours of the time classes: GEMM and Idle as their groups, the others from ``class_colors``."""
        return {GEMM: self.groups[GEMM]["color"], **self.class_colors, IDLE: self.groups[IDLE]["color"]}

    @property
    def order(self) -> list[str]:
        return list(self.groups)


_FUSED = re.compile(r"fused_(.+?)(?:_\d+)*$")


def fused_ops_from_name(name: str, known: dict[str, str]) -> list[str]:
    """Split ``..._fused_<a>_<b>_<n>`` into the known op names it spells, longest match first."""
    m = _FUSED.search(name)
    if not m:
        return []
    parts = [p for p in m.group(1).split("_") if p]
    ops: list[str] = []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            for cand in ("_".join(parts[i:j]), "_" + "_".join(parts[i:j])):
                if cand in known:
                    ops.append(cand)
                    break
            else:
                continue
            i = j
            break
        else:
            i += 1
    return ops


def name_candidates(op: str) -> Iterable[str]:
    """``aten::add_`` -> add_, add ; ``aten::add.Tensor`` -> add ; ``torchvision::nms`` -> nms."""
    base = op.split("::")[-1] if "::" in op else op
    yield base
    if "." in base:
        base = base.split(".")[0]
        yield base
    if base.endswith("_") and not base.endswith("__"):
        yield base.rstrip("_")


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Taxonomy:
    p = Path(path) if path else TAXONOMY_PATH
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"taxonomy: cannot read {p}: {exc}") from exc
    return Taxonomy(data)
