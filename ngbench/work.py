"""The work of one operator: the bytes it must move and the FLOPs it must compute at the least.

Shared by every normalizer (each knows its tensors in its own way) and by the roofline
(:mod:`ngbench.analysis.horizon`). Pure Python: nothing here imports torch.

Bytes are *ideal* traffic: every distinct tensor the op reads, read once, plus every tensor it writes,
written once. A tensor's size is its distinct elements times its item size: a broadcast (stride-0) view
of a bias is the bias, not the expanded shape. In-place outputs count as written (and, unless the op only
overwrites, as read). Views (the output aliases an input without writing it: view, permute, expand, ...)
move no data: zero bytes, so their whole time is overhead.

FLOPs: GEMM-class ops from PyTorch's own formulas (``torch.utils.flop_counter``, applied by the torch and
ONNX paths); every other op from the per-element table in ``work.yaml``.

``work_source`` says how the numbers were known: ``tensors`` (the tensors the op really read and wrote,
from PyTorch's execution trace), ``shapes`` (a trace's recorded input dims/types/strides, outputs by
PyTorch's own shape rules on the meta device), ``graph`` (the node's inputs and outputs in the executed
ONNX graph), ``layer-info`` (TensorRT's engine layer information), ``kernel-graph`` (the buffers an
Inductor kernel loads and stores, from its post-grad graph), ``none`` (not known; the reason is counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from ngbench.taxonomy import name_candidates

WORK_PATH = Path(__file__).with_name("work.yaml")
CONTIGUOUS, STRIDED = "contiguous", "non-contiguous"

# canonical dtype -> bytes per element
ITEMSIZE = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "int4": 0.5,
    "complex64": 8, "complex128": 16,
}  # fmt: skip
# spellings of the profilers: Kineto ("float", "c10::Half", "long int"), ONNX Runtime ("float16", "int64"),
# TensorRT ("Half", "FP32", "Int8 format" in a Format/Datatype string)
_DTYPE_NAMES = {
    "float": "float32", "float32": "float32", "fp32": "float32", "single": "float32", "tensor(float)": "float32",
    "double": "float64", "float64": "float64", "fp64": "float64",
    "c10::half": "float16", "half": "float16", "float16": "float16", "fp16": "float16",
    "c10::bfloat16": "bfloat16", "bfloat16": "bfloat16", "bf16": "bfloat16",
    "c10::float8_e4m3fn": "float8", "c10::float8_e5m2": "float8", "fp8": "float8", "float8": "float8",
    "long int": "int64", "long": "int64", "int64": "int64", "int64_t": "int64",
    "int": "int32", "int32": "int32", "int32_t": "int32",
    "short int": "int16", "short": "int16", "int16": "int16",
    "signed char": "int8", "int8": "int8", "char": "int8",
    "unsigned char": "uint8", "uint8": "uint8", "bool": "bool", "int4": "int4",
    "c10::complex<float>": "complex64", "c10::complex<double>": "complex128",
}  # fmt: skip


def canonical_dtype(name: str | None) -> str | None:
    """``float``/``c10::Half``/``Half``/``Tensor(float)`` -> ``float32``/``float16``; None when not a dtype."""
    if not name:
        return None
    key = name.strip().lower()
    if key.startswith("tensor(") and key.endswith(")"):
        key = key[len("tensor(") : -1]
    return _DTYPE_NAMES.get(key)


_TRT_WORDS = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
              "bfloat16": "bfloat16", "fp8": "float8", "int8": "int8", "int32": "int32", "int64": "int64",
              "uint8": "uint8", "bool": "bool", "int4": "int4"}  # fmt: skip


def trt_dtype(format_datatype: str | None) -> str | None:
    """The element type in TensorRT's ``Format/Datatype`` string (``Row major linear FP16 format``,
    ``Thirty-two wide channel vectorized row major Int8 format``)."""
    for word in (format_datatype or "").replace("/", " ").split():
        found = _TRT_WORDS.get(word.lower())
        if found:
            return found
    return None


@dataclass(frozen=True)
class TensorSpec:
    """One tensor an op read or wrote. ``ident``: its identity when the source knows it (the execution
    trace's tensor id), so a tensor passed twice is read once; None: assume distinct."""

    shape: tuple[int, ...]
    dtype: str
    strides: tuple[int, ...] | None = None
    ident: object = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def distinct_elements(self) -> int:
        """Elements stored: a dimension with stride 0 (broadcast) repeats one element."""
        if self.strides is None or len(self.strides) != len(self.shape):
            return self.numel
        return math.prod(d for d, s in zip(self.shape, self.strides) if s != 0)

    @property
    def nbytes(self) -> float:
        return self.distinct_elements * ITEMSIZE.get(self.dtype, 4)

    @property
    def contiguous(self) -> bool | None:
        if self.strides is None or len(self.strides) != len(self.shape):
            return None
        expected = 1
        for size, stride in zip(reversed(self.shape), reversed(self.strides)):
            if size != 1 and stride != expected:
                return False
            expected *= size
        return True


@dataclass(frozen=True)
class Work:
    bytes: float | None
    flops: float | None
    source: str
    layout: str = ""  # contiguous | non-contiguous (an input was strided) | "" unknown
    note: str = ""  # why the work is not known (source none)


NONE = Work(None, None, "none")


def unknown(reason: str) -> Work:
    return Work(None, None, "none", note=reason)


def layout_of(inputs: Iterable[TensorSpec]) -> str:
    flags = [t.contiguous for t in inputs if t.numel > 1]
    if any(f is False for f in flags):
        return STRIDED
    return CONTIGUOUS if flags and all(flags) else ""


# ops that read only the rows they gather from their first input (a table): that input counts as much of it
# as the output holds, never the whole table (GPT-2's 154 MB embedding for one row per token)
GATHERS = {"embedding", "index_select", "gather", "index", "_unsafe_index", "take", "embedding_bag", "Gather",
           "GatherElements", "GatherND", "GatherBlockQuantized"}  # fmt: skip


# ops that return no tensor and still read their inputs' data (a comparison, a scalar read); every other op
# without a tensor output is a metadata query (_has_compatible_shallow_copy_type, is_same_size): 0 bytes
READS_WITHOUT_TENSOR_OUTPUT = {"equal", "allclose", "item", "_local_scalar_dense", "is_nonzero"}
# ONNX ops whose output ONNX Runtime aliases to their input (the kernels declare it): they move no data
ONNX_ALIASES = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"}


def moves_no_data(op: str, outputs: Sequence[TensorSpec], *, onnx: bool = False) -> bool:
    """Whether ``op`` moves no data: an ONNX aliasing op, or a torch op that returned no tensor and is no
    comparison or scalar read."""
    names = set(name_candidates(op))
    if onnx:
        return bool(names & ONNX_ALIASES)
    return not outputs and not names & READS_WITHOUT_TENSOR_OUTPUT


def is_gather(op: str) -> bool:
    return any(c in GATHERS for c in name_candidates(op))


def traffic(
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    view: bool = False,
    overwrites: bool = False,
    gather: bool = False,
) -> float:
    """Ideal bytes: distinct inputs read once, outputs written once. ``view``: the output aliases an input
    and nothing is written (0 bytes). ``overwrites``: an in-place op that writes its first input without
    reading it (copy_, fill_, zero_). ``gather``: the op reads from its first input only the rows it
    writes (:data:`GATHERS`)."""
    if view:
        return 0.0
    if gather and inputs and outputs:
        return min(inputs[0].nbytes, sum(t.nbytes for t in outputs)) + traffic(inputs[1:], outputs)
    seen: set = set()
    read = 0.0
    written_idents = {t.ident for t in outputs if t.ident is not None}
    for i, t in enumerate(inputs):
        if t.ident is not None:
            if t.ident in seen:
                continue
            seen.add(t.ident)
        if overwrites and i == 0:
            continue
        read += t.nbytes
    written = sum(t.nbytes for t in outputs)
    if overwrites and inputs and inputs[0].ident is not None and inputs[0].ident not in written_idents:
        written += inputs[0].nbytes
    return read + written


@dataclass(frozen=True)
class Cost:
    flops: float
    basis: str  # output | input


class CostTable:
    """FLOPs per element of non-GEMM ops (``work.yaml``): op-specific counts, else the group's."""

    def __init__(self, data: dict):
        self.groups = {g: Cost(float(v["flops"]), v["basis"]) for g, v in (data.get("groups") or {}).items()}
        self.ops = {o: Cost(float(v["flops"]), v["basis"]) for o, v in (data.get("ops") or {}).items()}

    def cost(self, op: str, group: str) -> Cost:
        for candidate in name_candidates(op):
            found = self.ops.get(candidate)
            if found is not None:
                return found
        return self.groups.get(group) or self.groups.get("Other") or Cost(1.0, "output")

    def flops(self, op: str, group: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> float:
        c = self.cost(op, group)
        if not c.flops:
            return 0.0
        if c.basis == "input":
            elements = max((t.numel for t in inputs), default=0)
        else:
            elements = sum(t.numel for t in outputs) if outputs else max((t.numel for t in inputs), default=0)
        return c.flops * elements

    def fused_flops(self, constituents: Iterable[tuple[str, str]], elements: int) -> float:
        """FLOPs of the non-GEMM constituents ``(op, group)`` of a fused kernel or node, each applied once
        per element of the kernel's output (the fused form computes them in registers)."""
        return sum(self.cost(op, group).flops * elements for op, group in constituents)


def cost_group(own: str | None, group: str) -> str:
    """The group whose per-element cost an op takes: its own (by its name), else the row's unless that is
    GEMM by module only (a reshape or bias add inside a Linear is no matrix product): then ``Other``."""
    if own:
        return own
    return "Other" if group == "GEMM" else group


@lru_cache(maxsize=2)
def load_costs(path: str | None = None) -> CostTable:
    p = Path(path) if path else WORK_PATH
    return CostTable(yaml.safe_load(p.read_text()))


# -- GEMM FLOPs for shapes that come without a PyTorch op (ONNX nodes, TensorRT layers): PyTorch's own formulas ---
def matmul_flops(a: Sequence[int], b: Sequence[int]) -> float | None:
    """FLOPs of ``a @ b`` with NumPy/ONNX broadcasting: torch.utils.flop_counter's ``bmm_flop`` over the
    broadcast batch (2 FLOPs per multiply-add); None when the inner dimensions differ."""
    from torch.utils.flop_counter import bmm_flop

    if len(a) < 1 or len(b) < 1:
        return None
    a2 = list(a) if len(a) >= 2 else [1, a[0]]
    b2 = list(b) if len(b) >= 2 else [b[0], 1]
    if a2[-1] != b2[-2]:
        return None
    width = max(len(a2), len(b2)) - 2
    batch_a = [1] * (width - len(a2) + 2) + a2[:-2]
    batch_b = [1] * (width - len(b2) + 2) + b2[:-2]
    batch = math.prod(max(x, y) for x, y in zip(batch_a, batch_b))
    return float(bmm_flop([batch, a2[-2], a2[-1]], [batch, b2[-2], b2[-1]]))


def conv_flops(x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int]) -> float:
    """torch.utils.flop_counter's ``conv_flop_count`` of a forward convolution."""
    from torch.utils.flop_counter import conv_flop_count

    return float(conv_flop_count(list(x_shape), list(w_shape), list(out_shape), transposed=False))
