"""The TensorRT parser on real trtexec output (tests/fixtures/tensorrt: a QAT MobileNet-V2 on a TITAN
RTX, TensorRT 8.4 era, from NVIDIA's trex test inputs) and on hand-written TensorRT 10 layouts.
Expected values are computed here from the raw JSON with plain ``json``, not by the parser."""

import json

import pytest

from ngbench import table as optable
from ngbench.errors import InputError
from ngbench.traces import trt
from ngbench.traces.onnx_graph import NodeInfo

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
    assert (df2[df2.group != "Idle"].group == "Other").all()  # counted and reported, never dropped


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
