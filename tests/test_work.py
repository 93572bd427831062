"""Work per op (bytes, FLOPs): every expected value below is worked by hand from the shapes, in comments
(f32 = 4 bytes per element); none is copied from the code's output."""

import gzip
import json

import pytest
import torch
from conftest import FIXTURES

from ngbench import table as optable
from ngbench import work as wk
from ngbench.traces import graph_work, inductor, kineto, torch_work, trt


def args(dims, types, strides=None, concrete=None):
    """A Kineto record_shapes argument record, as the trace reader keeps it."""
    n = len(types)
    return json.dumps([dims, types, strides or [[] for _ in range(n)], concrete or ["" for _ in range(n)]])


def shapes(op, group, dims, types, strides=None, concrete=None) -> wk.Work:
    torch_work.from_args.cache_clear()
    return torch_work.from_args(op, args(dims, types, strides, concrete), group)


# -- torch ops from a trace's recorded arguments (outputs by PyTorch's meta rules) ---------------------------
def test_add_with_broadcast():
    w = shapes("aten::add", "Elementwise", [[4, 8], [8], []], ["float", "float", "Scalar"], concrete=["", "", "1"])
    assert w.bytes == 4 * (32 + 8 + 32)  # x, bias (8 distinct), out [4,8]
    assert w.flops == 32 and w.source == "shapes"


def test_in_place_relu_reads_and_writes_its_input():
    w = shapes("aten::relu_", "Activation", [[4, 8]], ["float"], [[8, 1]])
    assert w.bytes == 4 * 32 * 2  # read x, write x back
    assert w.flops == 32 and w.layout == wk.CONTIGUOUS


def test_layer_norm():
    w = shapes(
        "aten::layer_norm",
        "Normalization",
        [[4, 8], [], [8], [8], [], []],
        ["float", "ScalarList", "float", "float", "Scalar", "Scalar"],
        concrete=["", "[8]", "", "", "1e-05", "True"],
    )
    assert w.bytes == 4 * (32 + 8 + 8 + 32)  # x, weight, bias, out
    assert w.flops == 8 * 32  # work.yaml: Normalization 8 per output element


def test_group_norm():
    w = shapes(
        "aten::group_norm",
        "Normalization",
        [[2, 4, 3, 3], [], [4], [4], [], []],
        ["float", "Scalar", "float", "float", "Scalar", "Scalar"],
        concrete=["", "2", "", "", "1e-05", "True"],
    )
    assert w.bytes == 4 * (72 + 4 + 4 + 72)
    assert w.flops == 8 * 72


def test_softmax():
    w = shapes("aten::softmax", "Logit", [[4, 8], [], []], ["float", "Scalar", ""], concrete=["", "-1", ""])
    assert w.bytes == 4 * 32 * 2 and w.flops == 5 * 32


def test_gelu_with_its_string_argument_unrecorded():
    w = shapes("aten::gelu", "Activation", [[4, 8], []], ["float", ""])
    assert w.bytes == 4 * 32 * 2 and w.flops == 8 * 32


def test_embedding_reads_the_rows_it_gathers_not_the_table():
    w = shapes(
        "aten::embedding",
        "Embedding",
        [[100, 16], [2, 5], [], [], []],
        ["float", "long int", "Scalar", "Scalar", "Scalar"],
        concrete=["", "", "-1", "False", "False"],
    )
    # rows gathered = output [2,5,16] f32 = 640 B (not the 6400 B table) + indices 10 x 8 B + output 640 B
    assert w.bytes == 640 + 80 + 640 and w.flops == 0


def test_index_select():
    w = shapes(
        "aten::index_select",
        "Memory",
        [[10, 8], [], [3]],
        ["float", "Scalar", "long int"],
        concrete=["", "0", ""],
    )
    assert w.bytes == 96 + 24 + 96  # rows [3,8] f32, index 3 x 8 B, output [3,8]


def test_cat():
    w = shapes("aten::cat", "Memory", [[[2, 3], [2, 5]], []], ["TensorList", "Scalar"], concrete=["", "1"])
    assert w.bytes == 4 * (6 + 10 + 16) and w.flops == 0


def test_permute_is_a_view_and_contiguous_copies_a_strided_input():
    view = shapes("aten::permute", "Memory", [[4, 8], []], ["float", "ScalarList"], [[8, 1], []], ["", "[1, 0]"])
    assert view.bytes == 0 and view.flops == 0
    copy = shapes("aten::contiguous", "Memory", [[8, 4], []], ["float", "Scalar"], [[1, 8], []], ["", "0"])
    assert copy.bytes == 4 * 32 * 2 and copy.layout == wk.STRIDED  # strides (1, 8) of an [8,4] tensor


def test_to_with_its_device_unrecorded_is_unknown_not_a_free_view():
    w = shapes("aten::to", "Memory", [[16], [], [], [], [], [], [], []], ["float", "", "", "", "", "", "", ""])
    assert w.source == "none" and "unrecorded argument" in w.note


def test_upsample_bilinear2d():
    w = shapes(
        "aten::upsample_bilinear2d",
        "Interpolation",
        [[1, 2, 4, 4], [], [], [], []],
        ["float", "ScalarList", "Scalar", "", ""],
        concrete=["", "[8, 8]", "False", "", ""],
    )
    assert w.bytes == 4 * (32 + 128) and w.flops == 8 * 128


def test_max_pool2d():
    w = shapes(
        "aten::max_pool2d",
        "Pooling",
        [[1, 2, 4, 4], [], [], [], [], []],
        ["float", "ScalarList", "ScalarList", "ScalarList", "ScalarList", "Scalar"],
        concrete=["", "[2, 2]", "[2, 2]", "[0, 0]", "[1, 1]", "False"],
    )
    assert w.bytes == 4 * (32 + 8) and w.flops == 32  # one compare per input element


def test_roi_align():
    pytest.importorskip("torchvision")
    w = shapes(
        "torchvision::roi_align",
        "RoI",
        [[1, 2, 8, 8], [3, 5], [], [], [], [], []],
        ["float", "float", "Scalar", "Scalar", "Scalar", "Scalar", "Scalar"],
        concrete=["", "", "1.0", "2", "2", "2", "False"],
    )
    assert w.bytes == 4 * (128 + 15 + 24)  # input, boxes, output [3,2,2,2]
    assert w.flops == 32 * 24


def test_conv2d_flops_by_pytorchs_formula():
    w = shapes(
        "aten::conv2d",
        "GEMM",
        [[1, 3, 8, 8], [4, 3, 3, 3], [4], [], [], [], []],
        ["float", "float", "float", "ScalarList", "ScalarList", "ScalarList", "Scalar"],
        concrete=["", "", "", "[1, 1]", "[0, 0]", "[1, 1]", "1"],
    )
    assert w.bytes == 4 * (192 + 108 + 4 + 144)  # x, weight, bias, out [1,4,6,6]
    assert w.flops == 2 * 144 * 27  # 2 x output elements x (3 channels x 3 x 3)


def test_linear():
    w = shapes("aten::linear", "GEMM", [[2, 8], [4, 8], [4]], ["float", "float", "float"])
    assert w.bytes == 4 * (16 + 32 + 4 + 8) and w.flops == 2 * 2 * 4 * 8


def test_bmm():
    w = shapes("aten::bmm", "GEMM", [[2, 3, 4], [2, 4, 5]], ["float", "float"])
    assert w.bytes == 4 * (24 + 40 + 30) and w.flops == 2 * 2 * 3 * 5 * 4


def test_int8_matmul_of_bitsandbytes():
    pytest.importorskip("bitsandbytes")
    w = shapes("bitsandbytes::int8_linear_matmul", "GEMM", [[4, 8], [16, 8]], ["signed char", "signed char"])
    assert w.bytes == 32 + 128 + 4 * 64  # int8 A [4,8], int8 B [16,8], int32 out [4,16]
    assert w.flops == 2 * 4 * 16 * 8


def test_ops_grouped_gemm_by_their_module_are_no_matrix_products():
    """Inside a Linear every op is GEMM by the module rule, but only the product has a GEMM's FLOPs: a bias
    add is one per element, a transpose none (ORT's Transpose of GPT-2's lm_head counted 59 GFLOP before)."""
    add = shapes("aten::add", "GEMM", [[4, 8], [8], []], ["float", "float", "Scalar"], concrete=["", "", "1"])
    assert add.flops == 32
    x, out = wk.TensorSpec((8, 4), "float32"), wk.TensorSpec((4, 8), "float32")
    assert graph_work.node_work("Transpose", "GEMM", [x], [out], source="graph").flops == 0
    assert graph_work.node_work("Reshape", "GEMM", [x], [out], source="graph").flops == 0
    # ORT's optimizer may list a MatMul among a Reshape's replaced nodes: still no product
    fused = graph_work.node_work("Reshape", "GEMM", [x], [out], source="graph", constituents=[("MatMul", "GEMM")])
    assert fused.flops == 0


def test_metadata_queries_and_onnx_aliases_move_no_data():
    """_has_compatible_shallow_copy_type returns a bool about two tensors' types (LLM.int8 calls it on each
    weight): it reads no data (it showed 95 TB/s before). ORT's Reshape aliases its input: 0 bytes."""
    w = shapes("aten::_has_compatible_shallow_copy_type", "Quantization", [[1024, 4096], [1024, 4096]],
               ["float", "float"])  # fmt: skip
    assert w.bytes == 0 and w.flops == 0
    x, out = wk.TensorSpec((1, 391, 4, 144, 144), "float32"), wk.TensorSpec((391, 4, 144, 144), "float32")
    assert graph_work.node_work("Reshape", "Memory", [x], [out], source="graph").bytes == 0
    assert graph_work.node_work("Transpose", "Memory", [x], [out], source="graph").bytes == 2 * x.nbytes


def test_an_op_torch_does_not_know_is_unknown_with_its_reason():
    w = shapes("fbgemm::mystery", "Other", [[4]], ["float"])
    assert w.source == "none" and w.bytes is None and "not a PyTorch operator" in w.note


# -- torch ops from the execution trace: the tensors the ops really read and wrote ----------------------------
class Ops(torch.nn.Module):
    def forward(self, x, b):
        y = x + x  # one tensor read twice: read once
        y.relu_()  # in place
        z = y.t().contiguous()  # a view, then a copy of a strided input
        return torch.cat([z, z]) + b.unsqueeze(0).expand(8, 4)  # broadcast: the bias's 4 elements


def test_execution_trace_gives_exact_bytes(tmp_path):
    from ngbench.backends import torch_eager
    from ngbench.normalize import RunFiles, kineto_run

    torch_eager.run(
        Ops(),
        {"x": torch.randn(4, 4), "b": torch.randn(4)},
        device="cpu",
        trace_dir=tmp_path,
        warmup=1,
        iterations=1,
        profile_iterations=1,
        threads=1,
    )
    labels = dict(platform="cpu", backend="torch", model="ops", batch_size=1, seq_len=None)
    df, info = kineto_run(RunFiles.of_run(tmp_path, "torch"), labels)
    rows = df[(df["iteration"] == df["iteration"].min()) & (df["group"] != "Idle")]
    assert set(rows["work_source"]) == {"tensors"}, info["input_shapes"]
    got = dict(zip(rows["op"] + "#" + rows.groupby("op").cumcount().astype(str), rows["bytes"]))
    assert got["aten::add#0"] == 4 * (16 + 16)  # x read once, y written
    assert got["aten::relu_#0"] == 4 * (16 + 16)
    assert got["aten::t#0"] == 0 and got["aten::unsqueeze#0"] == 0 and got["aten::expand#0"] == 0
    assert got["aten::contiguous#0"] == 4 * (16 + 16)
    assert got["aten::cat#0"] == 4 * (16 + 32)  # z twice in the list: one tensor, read once
    assert got["aten::add#1"] == 4 * (32 + 4 + 32)  # cat's output, the bias's 4 distinct elements, out
    layout = dict(zip(rows["op"], rows["layout"]))
    assert layout["aten::contiguous"] == wk.STRIDED


def test_an_execution_trace_of_other_ops_is_not_joined(tmp_path):
    path = tmp_path / "et.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"nodes": []}).encode()))
    with pytest.raises(Exception, match="0 top-level ops"):
        torch_work.exec_trace_ops(path, ["Memory"])


# -- other backends: a fused node's own tensors ------------------------------------------------------------------
def test_ort_fused_matmul_with_a_prepacked_weight():
    x, out = wk.TensorSpec((2, 8), "float32"), wk.TensorSpec((2, 4), "float32")
    w = graph_work.node_work(
        "FusedMatMul",
        "GEMM",
        [x],
        [out],
        source="graph",
        constituents=[("MatMul", "GEMM"), ("Mul", "Elementwise")],
        weight_bytes=graph_work.missing_weight_bytes("FusedMatMul", [x], [out]),
    )
    assert w.bytes == 4 * (16 + 8) + 4 * 8 * 4  # activation, output, and the [8,4] weight ORT prepacked
    assert w.flops == 2 * 2 * 4 * 8 + 8  # the product, then one Mul per output element


def test_ort_normalizer_reads_each_nodes_own_shapes(tmp_path):
    from ngbench.traces import ort

    def node(name, op, ts, ins, outs):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ph": "X", "ts": ts, "dur": 5,
                "args": {"op_name": op, "input_type_shape": ins, "output_type_shape": outs}}  # fmt: skip

    events = [
        {"cat": "Session", "name": "model_run", "ph": "X", "ts": 0, "dur": 100},
        node("ln", "LayerNormalization", 10, [{"float": [2, 8]}, {"float": [8]}, {"float": [8]}], [{"float": [2, 8]}]),
        node("g", "Gather", 20, [{"float": [1000, 8]}, {"int64": [2]}], [{"float": [2, 8]}]),
    ]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(events))
    df, _ = ort.normalize(path)
    work = dict(zip(df["op"], zip(df["bytes"], df["flops"], df["work_source"])))
    assert work["LayerNormalization"] == (4 * (16 + 8 + 8 + 16), 8 * 16, "graph")
    assert work["Gather"][0] == 64 + 16 + 64  # the two rows gathered, 2 int64 indices, output


def test_trt_fused_layer_from_the_layer_information():
    layers = trt.read_layers(FIXTURES / "tensorrt" / "mobilenet_qat.graph.json")
    name = "features.1.conv.1.weight + QuantizeLinear_42 + Conv_46"
    w = trt.layer_work(layers[name], "CaskConvolution", "GEMM", [("QuantizeLinear", "Quantization"), ("Conv", "GEMM")])
    # from the file: input [1,32,112,112] Int8, output [1,16,112,112] Int8, 512 Int8 weights, 16 Float biases
    assert w.bytes == 32 * 112 * 112 + 16 * 112 * 112 + 512 + 16 * 4
    # 2 x output elements x (32 input channels x 1 x 1), plus the fused quantize: 2 FLOPs per output element
    assert w.flops == 2 * 16 * 112 * 112 * 32 + 2 * 16 * 112 * 112
    assert w.source == "layer-info"


def test_inductor_fused_kernel_bytes_are_the_buffers_it_loads_and_stores():
    graph = inductor.load_artifacts(FIXTURES / "inductor" / "detr_masked_softmax")["graph_0"]
    kernel = next(k for k in graph.kernels if k.startswith("cpp_fused__softmax"))
    w = graph.kernel_work(kernel, kineto.tax.load(), runs_gemm=False)
    # loads the mask input f32[2,32,32] and bmm's output f32[2,16,64]; stores the softmax f32[2,16,64]
    assert w.bytes == 4 * (2 * 32 * 32 + 2 * 16 * 64 + 2 * 16 * 64)
    assert w.source == "kernel-graph"


def test_tables_written_before_the_work_columns_read_as_unknown(tmp_path):
    df, _ = kineto.normalize(FIXTURES / "torch-profiler" / "a100_alexnet.json.gz")
    old = df.drop(columns=list(optable.WORK_DEFAULTS))
    path = tmp_path / "old.parquet"
    old.to_parquet(path)
    back = optable.read(path)
    assert set(back["work_source"]) == {"none"} and back["bytes"].isna().all()
