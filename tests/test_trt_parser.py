"""The TensorRT parser on real trtexec output (tests/fixtures/tensorrt: a QAT MobileNet-V2 on a TITAN
RTX, TensorRT 8.4 era, from NVIDIA's trex test inputs) and on hand-written TensorRT 10 layouts.
Expected values are computed here from the raw JSON with plain ``json``, not by the parser."""

import json

import pytest

from ngbench import table as optable
from ngbench.errors import InputError
from ngbench.onnx_graph import NodeInfo
from ngbench.traces import trt

CONV_TYPES = {"CaskConvolution", "CudaDepthwiseConvolution"}


@pytest.fixture
def mobilenet(fixtures_dir):
    base = fixtures_dir / "tensorrt" / "mobilenet_qat"
    return base.with_suffix(".profile.json"), base.with_suffix(".graph.json")


def test_mobilenet_layers_times_and_groups(mobilenet):
    profile, layers = mobilenet
    raw_profile = json.loads(profile.read_text())
    raw_layers = {layer["Name"]: layer for layer in json.loads(layers.read_text())["Layers"]}
    records = [r for r in raw_profile if "name" in r]
    df, info = trt.normalize(profile, layers, model="mobilenet")
    optable.check(df)
    assert info["layers"] == 73 == len(raw_layers) and info["profiled_iterations"] == raw_profile[0]["count"]
    assert info["layer_info"] == "detailed" and info["layers_missing_from_layer_info"] == []
    total_us = sum(r["averageMs"] for r in records) * 1e3
    assert df.iteration_time_us.iloc[0] == pytest.approx(total_us) and total_us == pytest.approx(470.39, abs=0.01)

    def expected_us(pred):
        return sum(r["averageMs"] for r in records if pred(r["name"], raw_layers[r["name"]]["LayerType"])) * 1e3

    groups = df.groupby("group").time_us.sum()
    assert groups["GEMM"] == pytest.approx(expected_us(lambda n, t: t in CONV_TYPES))
    # the 17 activation QuantizeLinear nodes TensorRT runs as Reformat layers
    assert groups["Quantization"] == pytest.approx(expected_us(lambda n, t: n.startswith("QuantizeLinear_")))
    assert groups["Pooling"] == pytest.approx(expected_us(lambda n, t: t == "TiledPooling"))
    assert groups["Memory"] == pytest.approx(
        expected_us(lambda n, t: (t == "Reformat" and not n.startswith("QuantizeLinear_")) or t == "NoOp")
    )
    assert (df[df.op.isin(CONV_TYPES)].group == "GEMM").all()


def test_fused_onnx_nodes_from_layer_names(mobilenet):
    profile, layers = mobilenet
    df, info = trt.normalize(profile, layers)
    row = df[df.node == "features.3.conv.2.weight + QuantizeLinear_138 + Conv_142 + Add_144"].iloc[0]
    parsed = [optable.parse_fused(f) for f in row.fused_ops]
    assert [(f.op, f.node) for f in parsed] == [
        ("QuantizeLinear", "QuantizeLinear_138"),
        ("Conv", "Conv_142"),
        ("Add", "Add_144"),
    ]
    assert row.group == "GEMM"
    # a conv with a fused residual add is GEMM, and reported as fused GEMM + non-GEMM work
    assert row.node in info["layers_fused_gemm_non_gemm"]
    pwn = df[df.node == "features.0.0.weight + QuantizeLinear_8 + Conv_12 + PWN(Clip_16)"].iloc[0]
    assert [f.split("|")[1] for f in pwn.fused_ops] == ["QuantizeLinear_8", "Conv_12", "Clip_16"]


def _trt10(tmp_path):
    """TensorRT 10 layout: Metadata lists the fused ONNX nodes; a Myelin ForeignNode fuses attention."""
    layers = {
        "Layers": [
            {
                "Name": "/attn/MatMul_myl0_1",
                "LayerType": "kgen",
                "Metadata": "[ONNX Layer: /attn/MatMul]\x1e[ONNX Layer: /attn/Softmax]\x1e[ONNX Layer: /attn/Mul]",
                "TacticName": "myelin_kernel",
            },
            {"Name": "/ln/LayerNormalization", "LayerType": "Normalization", "Metadata": "[ONNX Layer: /ln/LN]"},
            {"Name": "reformat_0", "LayerType": "Reformat"},
        ],
        "Bindings": ["x", "y"],
    }
    profile = [
        {"count": 100},
        {"name": "/attn/MatMul_myl0_1", "timeMs": 30.0, "averageMs": 0.3, "medianMs": 0.3, "percentage": 60.0},
        {"name": "/ln/LayerNormalization", "timeMs": 15.0, "averageMs": 0.15, "medianMs": 0.15, "percentage": 30.0},
        {"name": "reformat_0", "timeMs": 5.0, "averageMs": 0.05, "medianMs": 0.05, "percentage": 10.0},
    ]
    (tmp_path / "l.json").write_text(json.dumps(layers))
    (tmp_path / "p.json").write_text(json.dumps(profile))
    return tmp_path / "p.json", tmp_path / "l.json"


def test_trt10_metadata_and_module_scopes(tmp_path):
    profile, layers = _trt10(tmp_path)
    nodes = {
        "/attn/MatMul": NodeInfo("MatMul", "h.0.attn", "Attention", ["Attention", "Block"], ["h.0.attn", "h.0"]),
        "/attn/Softmax": NodeInfo("Softmax", "h.0.attn", "Attention", ["Attention", "Block"], ["h.0.attn", "h.0"]),
        "/attn/Mul": NodeInfo("Mul", "h.0.attn", "Attention", ["Attention", "Block"], ["h.0.attn", "h.0"]),
        "/ln/LN": NodeInfo("LayerNormalization", "h.0.ln", "LayerNorm", ["LayerNorm", "Block"], ["h.0.ln", "h.0"]),
    }
    df, info = trt.normalize(profile, layers, nodes=nodes)
    optable.check(df)
    attn = df[df.node == "/attn/MatMul_myl0_1"].iloc[0]
    assert attn.group == "GEMM" and attn.module == "h.0.attn" and attn.time_us == pytest.approx(300.0)
    assert [f.split("|")[0] for f in attn.fused_ops] == ["MatMul", "Softmax", "Mul"]
    assert info["layers_fused_gemm_non_gemm"] == ["/attn/MatMul_myl0_1"]  # never silently pure GEMM
    ln = df[df.node == "/ln/LayerNormalization"].iloc[0]
    assert ln.group == "Normalization" and ln.module_type == "LayerNorm"
    assert df[df.node == "reformat_0"].group.item() == "Memory"
    assert df.iteration_time_us.iloc[0] == pytest.approx(500.0)


def test_names_only_layer_info_and_no_layer_info(tmp_path):
    profile, _ = _trt10(tmp_path)
    names_only = tmp_path / "names.json"
    names_only.write_text(json.dumps({"Layers": ["/attn/MatMul_myl0_1", "/ln/LayerNormalization", "reformat_0"]}))
    df, info = trt.normalize(profile, names_only)
    assert info["layer_info"] == "names only"
    df2, info2 = trt.normalize(profile)
    assert info2["layer_info"] == "none" and len(info2["layers_missing_from_layer_info"]) == 3
    assert set(df2.op) == {"unknown layer", "idle/unattributed"}
    # no layer types: node names that spell an ONNX op still decide; the rest is Other, counted, never dropped
    groups = dict(zip(df2.node, df2.group))
    assert groups == {
        "/attn/MatMul_myl0_1": "GEMM",
        "/ln/LayerNormalization": "Normalization",
        "reformat_0": "Other",
        "": "Idle",
    }


def test_wrong_files_are_named(tmp_path, mobilenet):
    profile, layers = mobilenet
    with pytest.raises(InputError, match="expected a TensorRT per-layer profile") as err:
        trt.normalize(layers, profile)  # swapped
    assert "graph.json" in str(err.value)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"count": 3}, {"name": "a", "timeMs": 1.0}]))
    with pytest.raises(InputError, match=r"lacks \['averageMs'\]"):
        trt.normalize(bad)
    with pytest.raises(InputError, match="no 'Layers' list"):
        trt.normalize(profile, profile)


# -- layer types that multiply matrices, whatever tactic family TensorRT picked -------------------------------
@pytest.mark.parametrize(
    "layer_type",
    [
        "CaskGemmConvolution",
        "CaskConvolution",
        "CaskFlattenConvolution",
        "CaskConvActPool",
        "CaskDeconvolutionV2",
        "CudnnConvolution",
        "CaskGemm",
        "MatrixMultiply",
        "gemm",
        "correlation",
        "CaskGemmMatrixMultiplyV3",  # a future variant: matched by pattern, not by name
    ],
)
def test_gemm_layer_types_are_gemm(tmp_path, layer_type):
    # a Gemm run as a convolution: Metadata names the ONNX Gemm node by its path (no node table given)
    profile = tmp_path / "p.json"
    layers = tmp_path / "l.json"
    profile.write_text(json.dumps([{"count": 10}, {"name": "fc", "averageMs": 0.25}]))
    meta = "[ONNX Layer: /classifier/classifier.1/Gemm]\x1e[ONNX Layer: /classifier/Relu]"
    layers.write_text(json.dumps({"Layers": [{"Name": "fc", "LayerType": layer_type, "Metadata": meta}]}))
    df, _ = trt.normalize(profile, layers)
    row = df[df.node == "fc"].iloc[0]
    assert row.group == "GEMM" and row.is_gemm
    assert [f.split("|")[0] for f in row.fused_ops] == ["Gemm", "Relu"]


def test_myelin_region_decided_by_its_nodes(tmp_path):
    profile = tmp_path / "p.json"
    layers = tmp_path / "l.json"
    names = ["{ForeignNode[/h.0/attn/MatMul...onnx::Add_9]}", "{ForeignNode[/h.0/ln/Mul...Div]}"]
    profile.write_text(json.dumps([{"name": n, "averageMs": 0.1} for n in names]))
    layers.write_text(json.dumps({"Layers": [{"Name": n, "LayerType": "Myelin"} for n in names]}))
    df, _ = trt.normalize(profile, layers)
    groups = dict(zip(df.node, df.group))
    assert groups[names[0]] == "GEMM"  # the region holds a MatMul
    assert groups[names[1]] == "Elementwise"  # Mul ... Div: no matrix multiply, its output is the Div


def test_op_type_from_onnx_node_names():
    assert trt.op_type_of("/model/layer.0/attn/MatMul_1") == "MatMul"
    assert trt.op_type_of("/classifier/Gemm") == "Gemm"
    assert trt.op_type_of("node_Conv_12") == "Conv"
    assert trt.op_type_of("Conv_12") == "Conv"
    assert trt.op_type_of("QuantizeLinear_8") == "QuantizeLinear"
    assert trt.op_type_of("/attn/MatMul_myl0_1") == "MatMul"  # a node inside a Myelin region


def test_fp16_copy_node_table_gives_the_converters_casts_their_neighbours_modules(tmp_path):
    """A strongly typed fp16 engine is built from the fp16 copy: its LayerNorm stays fp32 between two Cast
    nodes the converter inserted. With the fp16 copy's node table, a TensorRT layer fusing those Casts and
    the LayerNorm is Normalization in its module; with the export's table the Casts are unknown to it."""
    import numpy as np
    import onnx
    import onnx.helper as oh

    from ngbench import onnx_graph
    from ngbench.backends import onnx_export
    from ngbench.traces import trt

    def scoped(node, path, cls, aten):
        for key, value in ((onnx_graph.NAME_SCOPES, repr(["", path, node.name])),
                           (onnx_graph.CLASS_HIERARCHY, repr(["M", cls, aten]))):  # fmt: skip
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value
        return node

    w = oh.make_tensor("w", onnx.TensorProto.FLOAT, [8, 8], np.ones(64, np.float32))
    g = oh.make_tensor("g", onnx.TensorProto.FLOAT, [8], np.ones(8, np.float32))
    b = oh.make_tensor("b", onnx.TensorProto.FLOAT, [8], np.zeros(8, np.float32))
    nodes = [
        scoped(oh.make_node("MatMul", ["x", "w"], ["h"], name="/fc/MatMul"), "fc", "torch.nn.Linear", "aten.mm"),
        scoped(
            oh.make_node("LayerNormalization", ["h", "g", "b"], ["y"], name="/ln/LayerNorm", axis=-1),
            "ln",
            "torch.nn.modules.normalization.LayerNorm",
            "aten.layer_norm",
        ),  # fmt: skip
        scoped(oh.make_node("Relu", ["y"], ["z"], name="/act/Relu"), "act", "torch.nn.ReLU", "aten.relu"),
    ]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 8])],
                          [oh.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [2, 8])], [w, g, b])  # fmt: skip
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    onnx_export.to_fp16(tmp_path / "m.onnx", tmp_path / "m.fp16.onnx")
    table, inherited = onnx_export.fp16_node_table(tmp_path / "m.fp16.onnx")
    casts = [n for n, info in table.items() if info.op_type == "Cast"]
    assert casts and inherited >= len(casts)
    ln_casts = [n for n in casts if table[n].module == "ln"]
    assert ln_casts  # the Casts around the fp32 LayerNorm take its scope
    layer = {"Name": " + ".join([*ln_casts, "/ln/LayerNorm"]), "LayerType": "Myelin",
             "Metadata": "\x1e".join(f"[ONNX Layer: {n}]" for n in [*ln_casts, "/ln/LayerNorm"])}  # fmt: skip
    (tmp_path / "layers.json").write_text(json.dumps({"Layers": [layer], "Bindings": []}))
    (tmp_path / "profile.json").write_text(json.dumps([{"count": 1}, {"name": layer["Name"], "averageMs": 0.01}]))
    df, _ = trt.normalize(tmp_path / "profile.json", tmp_path / "layers.json", nodes=table)
    assert df.loc[0, "group"] == "Normalization" and df.loc[0, "module"] == "ln"
    original = onnx_graph.node_modules(model)
    assert not set(ln_casts) & set(original)  # the export's table does not know them
