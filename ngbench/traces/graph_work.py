"""Work of a node of an executed graph (an ONNX Runtime node, a TensorRT layer) from its own input and output
tensors: a fused node's bytes are its own inputs and outputs, never its constituents'.

FLOPs: matrix products and convolutions by PyTorch's formulas (:func:`ngbench.work.matmul_flops`,
:func:`ngbench.work.conv_flops`); the non-GEMM constituents of a fused node, and plain non-GEMM nodes, by the
per-element table, once per output element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ngbench import taxonomy as tax
from ngbench import work as wk

MATMUL_TYPES = {"MatMul", "FusedMatMul", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat",
                "DynamicQuantizeMatMul", "MatMulNBits", "Gemm", "FusedGemm", "QGemm", "MatrixMultiply",
                "CaskGemmMatrixMultiply", "Gemm+Bias"}  # fmt: skip
CONV_TYPES = {"Conv", "FusedConv", "QLinearConv", "NhwcFusedConv", "NhwcConv", "Convolution", "CaskConvolution",
              "CaskDeconvolution", "Deconvolution"}  # fmt: skip


def node_work(
    op: str,
    group: str,
    inputs: Sequence[wk.TensorSpec],
    outputs: Sequence[wk.TensorSpec],
    *,
    source: str,
    kind: str = "onnx",
    constituents: Sequence[tuple[str, str]] = (),
    weight_bytes: float = 0.0,
    conv_weight: Sequence[int] | None = None,
) -> wk.Work:
    """``group``: the row's group (by its module, so a Reshape inside a Linear is GEMM there); the GEMM
    formulas apply only to what multiplies matrices by its own type (``kind``: onnx | trt names).
    ``constituents``: (op type, group) of the nodes a fused node replaced. ``weight_bytes``: constant inputs
    the profile does not list (prepacked weights), added to the bytes read. ``conv_weight``: a convolution's
    weight shape when its inputs do not carry it (TensorRT layers)."""
    if not inputs and not outputs:
        return wk.unknown(f"{op}: no input or output shapes recorded")
    if kind == "onnx" and wk.moves_no_data(op, outputs, onnx=True):  # fused or not, a Reshape aliases
        return wk.Work(0.0, 0.0, source, wk.layout_of(inputs) if any(t.strides for t in inputs) else "")
    costs = wk.load_costs()
    nbytes = wk.traffic(inputs, outputs, gather=wk.is_gather(op)) + weight_bytes
    out_elements = sum(t.numel for t in outputs)
    own = tax.load().op_group(op, kind)  # type: ignore[arg-type]
    # an ONNX node's type says what it computes (a Reshape that ORT's optimizer merged with a MatMul's
    # neighbours multiplies nothing); a TensorRT layer of a generic type (Myelin) multiplies matrices when
    # one of the nodes it replaced did
    replaced_product = any(tax.load().op_group(o, "onnx") == tax.GEMM for o, _ in constituents)
    product = own == tax.GEMM or (kind == "trt" and own is None and replaced_product)
    is_conv = op in CONV_TYPES or (product and ("Conv" in op or any("Conv" in o for o, _ in constituents)))
    flops: float | None
    if is_conv and (op in CONV_TYPES or product):
        weight = list(conv_weight) if conv_weight else (list(inputs[1].shape) if len(inputs) > 1 else None)
        flops = wk.conv_flops(inputs[0].shape, weight, outputs[0].shape) if weight and inputs and outputs else None
    elif op in MATMUL_TYPES or product:
        flops = _matmul(inputs, outputs)
    else:
        flops = costs.flops(op, wk.cost_group(own, group), inputs, outputs)
    non_gemm = [(o, g) for o, g in constituents if g != tax.GEMM]
    if flops is not None and non_gemm:  # fused: the non-GEMM constituents once per output element
        base = flops if (op in MATMUL_TYPES or product or is_conv) else 0.0
        flops = base + costs.fused_flops(non_gemm, out_elements)
    return wk.Work(nbytes, flops, source, wk.layout_of(inputs) if any(t.strides for t in inputs) else "")


def _matmul(inputs: Sequence[wk.TensorSpec], outputs: Sequence[wk.TensorSpec]) -> float | None:
    """A matrix product's FLOPs from its two operands, or (a prepacked constant weight the profile does not
    list) from the activation and the output: 2 x output elements x the shared dimension."""
    if len(inputs) >= 2 and len(inputs[0].shape) >= 1 and len(inputs[1].shape) >= 1:
        found = wk.matmul_flops(inputs[0].shape, inputs[1].shape)
        if found is not None:
            return found
    if inputs and outputs and inputs[0].shape:
        return 2.0 * math.prod(outputs[0].shape) * inputs[0].shape[-1]
    return None


def missing_weight_bytes(op: str, inputs: Sequence[wk.TensorSpec], outputs: Sequence[wk.TensorSpec]) -> float:
    """Bytes of a matrix product's constant weight when the profile lists only its activation (ONNX
    Runtime's CPU kernels prepack constant weights and drop them from the node's recorded inputs)."""
    if op not in MATMUL_TYPES or len(inputs) != 1 or not outputs or not inputs[0].shape or not outputs[0].shape:
        return 0.0
    k, n = inputs[0].shape[-1], outputs[0].shape[-1]
    return float(k * n * wk.ITEMSIZE.get(inputs[0].dtype, 4))
