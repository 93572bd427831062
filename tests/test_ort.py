"""ONNX export, the ONNX Runtime backend and its profile normalizer.

Real ORT profiles are made here with onnxruntime's CPU execution provider; the expected groups, node counts
and fused-node constituents come from the models' known architecture and hand-built graphs, not from the
code under test.
"""

import json

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from ngbench import onnx_graph, registry
from ngbench import table as optable
from ngbench.backends import onnx_export
from ngbench.backends import ort as ort_backend
from ngbench.errors import InputError
from ngbench.traces import ort


# -- a small model whose module structure we know -------------------------------------------------------------
class Block(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.fc = torch.nn.Linear(d, d)
        self.act = torch.nn.GELU()

    def forward(self, x):
        return x + self.act(self.fc(self.norm(x)))


class Net(torch.nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.block = Block(d)
        self.head = torch.nn.Linear(d, 4)

    def forward(self, x):
        return torch.softmax(self.head(self.block(x)), dim=-1)


@pytest.fixture(scope="module")
def net_export(tmp_path_factory):
    torch.manual_seed(0)
    model = Net().eval()
    inputs = {"x": torch.randn(2, 5, 16)}
    out = tmp_path_factory.mktemp("onnx") / "net.onnx"
    onnx_export.export(model, inputs, out)
    onnx_export.check(out)
    return model, inputs, out


def test_export_records_each_nodes_module(net_export):
    _, _, out = net_export
    nodes = onnx_graph.node_modules(onnx_graph.load_graph(out))
    by_op = {}
    for info in nodes.values():
        by_op.setdefault(info.op_type, set()).add((info.module, info.module_type))
    assert by_op["LayerNormalization"] == {("block.norm", "LayerNorm")}
    assert by_op["Gelu"] == {("block.act", "GELU")}
    gemms = by_op.get("Gemm", set()) | by_op.get("MatMul", set())
    assert ("block.fc", "Linear") in gemms and ("head", "Linear") in gemms
    # the residual add belongs to Block, softmax to the root module
    assert ("block", "Block") in by_op["Add"]
    assert by_op["Softmax"] == {("<root>", "Net")}
    ln = next(i for i in nodes.values() if i.op_type == "LayerNormalization")
    assert ln.module_types == ["LayerNorm", "Block", "Net"] and ln.aten.startswith("aten.")


def test_export_is_verified_against_pytorch(net_export):
    model, inputs, out = net_export
    result = onnx_export.verify(model, inputs, out, tolerance=1e-4)
    assert result["outputs"] == 1 and result["max_relative_error"] < 1e-4
    with torch.no_grad():  # a model that computes something else must fail the check
        model.head.weight *= 2.0  # (a constant bias shift would not do: softmax ignores it)
    try:
        with pytest.raises(onnx_export.ExportMismatch, match="differs from PyTorch"):
            onnx_export.verify(model, inputs, out, tolerance=1e-4)
    finally:
        with torch.no_grad():
            model.head.weight /= 2.0


def test_ort_profile_one_row_per_onnx_node_and_closure(net_export, tmp_path):
    _, inputs, out = net_export
    record = ort_backend.run(
        out,
        inputs,
        optimized=False,
        device="cpu",
        trace_dir=tmp_path,
        warmup=2,
        iterations=3,
        profile_iterations=4,
        intra_op_threads=1,
    )
    assert (tmp_path / "profile.json").is_file() and len(record["latency_samples_ms"]) == 3
    nodes = onnx_graph.read_nodes(tmp_path / "nodes.json")
    df, info = ort.normalize(tmp_path / "profile.json", nodes=nodes, skip_runs=record["profile_warmup_runs"])
    optable.check(df)
    assert info["iterations"] == 4 and info["runs_skipped"] == 2 and not info["device_activity"]
    n_graph_nodes = len(onnx.load(str(out), load_external_data=False).graph.node)
    per_iter = df[df.group != "Idle"].groupby("iteration").size()
    assert (per_iter == n_graph_nodes).all()  # optimizations off: every ONNX node runs once per run
    groups = dict(zip(df.op, df.group))
    assert groups["LayerNormalization"] == "Normalization" and groups["Gelu"] == "Activation"
    assert groups["Softmax"] == "Logit"
    adds = df[(df.op == "Add") & (df.iteration == 0)].set_index("module")["group"]
    assert adds["block"] == "Elementwise"  # the residual add
    assert adds["block.fc"] == "GEMM"  # the exporter's bias add inside Linear: the module decides, as in torch
    idle = df[df.group == "Idle"]
    assert (idle.op == ort.SESSION_OVERHEAD).all() and (idle.time_us >= 0).all()


def test_ort_opt_fused_nodes_carry_their_constituents(tmp_path):
    """A GPT-2 block: ORT_ENABLE_ALL fuses the tanh-GELU (NewGELUActivation's 8 nodes), the scaled QK^T
    matmul and the residual add + LayerNorm; each fused node must list the nodes it replaced."""
    spec = registry.load(
        {
            "tiny": {
                "source": "transformers",
                "task": "text-generation",
                "dataset": "wikitext",
                "model_class": "GPT2LMHeadModel",
                "config_class": "GPT2Config",
                "layers_key": "n_layer",
                "input": {"kind": "text", "tokenizer": "gpt2"},
                "seq_len": 16,
                "batch_sizes": [1],
                "config": {
                    "vocab_size": 1000,
                    "n_positions": 32,
                    "n_embd": 32,
                    "n_layer": 1,
                    "n_head": 2,
                    "activation_function": "gelu_new",
                },
            }
        }
    )["tiny"]
    model, _ = registry.build(spec, dtype="float32", seed=0, attn_implementation="eager")
    model.config.use_cache = False
    inputs = {"input_ids": torch.randint(0, 1000, (1, 16)), "attention_mask": torch.ones(1, 16, dtype=torch.long)}
    path = tmp_path / "gpt2.onnx"
    onnx_export.export(model.eval(), inputs, path)
    record = ort_backend.run(
        path,
        inputs,
        optimized=True,
        device="cpu",
        trace_dir=tmp_path / "run",
        warmup=1,
        iterations=1,
        profile_iterations=2,
        intra_op_threads=1,
    )
    assert record["graph_optimization_level"] == "ORT_ENABLE_ALL"
    nodes = onnx_graph.read_nodes(tmp_path / "run" / "nodes.json")
    df, _ = ort.normalize(tmp_path / "run" / "profile.json", nodes=nodes, skip_runs=1)
    optable.check(df)
    it = df[df.iteration == 0]
    gelu = it[it.op.isin(["FastGelu", "Gelu", "BiasGelu"])]
    assert len(gelu) == 1
    parts = [f.split("|")[0] for f in gelu.fused_ops.item()]
    assert sorted(parts) == sorted(["Mul", "Pow", "Mul", "Add", "Mul", "Tanh", "Add", "Mul"])
    assert gelu.group.item() == "Activation" and gelu.module_type.item() == "NewGELUActivation"
    fused_matmul = it[it.op == "FusedMatMul"]
    assert len(fused_matmul) == 1 and fused_matmul.group.item() == "GEMM"
    assert sorted(f.split("|")[0] for f in fused_matmul.fused_ops.item()) == ["MatMul", "Mul"]
    sln = it[it.op == "SkipLayerNormalization"]
    assert len(sln) >= 1 and set(sln.group) == {"Normalization"}
    # no original node is claimed by two fused nodes
    claimed = [f.split("|")[1] for fo in it.fused_ops for f in fo]
    assert len(claimed) == len(set(claimed))
    original = {n.name for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert set(claimed) <= original


# -- fused-node recovery on hand-built graphs -----------------------------------------------------------------
def _graph(nodes, inputs, outputs, inits=()):
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [2])  # noqa: E731
    g = helper.make_graph(nodes, "g", [vi(i) for i in inputs], [vi(o) for o in outputs], list(inits))
    return helper.make_model(g)


def test_fused_node_map_walks_back_through_vanished_tensors():
    # original: x -> MatMul(m) -> t1 -> Add(a) -> t2 -> Relu(r) -> t3 -> Softmax(s) -> y
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1, 2])
    original = _graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["t1"], name="m"),
            helper.make_node("Add", ["t1", "w"], ["t2"], name="a"),
            helper.make_node("Relu", ["t2"], ["t3"], name="r"),
            helper.make_node("Softmax", ["t3"], ["y"], name="s"),
        ],
        ["x"],
        ["y"],
        [w],
    )
    # optimized: MatMul+Add -> Gemm "fused_gemm" (output t2 keeps its name), Relu kept, Softmax kept
    optimized = _graph(
        [
            helper.make_node("Gemm", ["x", "w", "w"], ["t2"], name="fused_gemm"),
            helper.make_node("Relu", ["t2"], ["t3"], name="r"),
            helper.make_node("Softmax", ["t3"], ["y"], name="s"),
        ],
        ["x"],
        ["y"],
        [w],
    )
    mapping = onnx_graph.fused_node_map(original, optimized)
    assert mapping == {"fused_gemm": ["m", "a"], "r": ["r"], "s": ["s"]}
    # a fused node that keeps the name of one of its constituents (ORT does this for some fusions)
    optimized_same_name = _graph(
        [
            helper.make_node("Gemm", ["x", "w", "w"], ["t2"], name="m"),
            helper.make_node("Relu", ["t2"], ["t3"], name="r"),
            helper.make_node("Softmax", ["t3"], ["y"], name="s"),
        ],
        ["x"],
        ["y"],
        [w],
    )
    assert onnx_graph.fused_node_map(original, optimized_same_name)["m"] == ["m", "a"]
    # a node new to the optimized graph (a layout reorder) replaces nothing
    optimized_reorder = _graph(
        [
            helper.make_node("ReorderInput", ["x"], ["x_nchwc"], name="reorder"),
            helper.make_node("Gemm", ["x_nchwc", "w", "w"], ["t2"], name="fused_gemm"),
            helper.make_node("Relu", ["t2"], ["t3"], name="r"),
            helper.make_node("Softmax", ["t3"], ["y"], name="s"),
        ],
        ["x"],
        ["y"],
        [w],
    )
    m = onnx_graph.fused_node_map(original, optimized_reorder)
    assert m["reorder"] == [] and m["fused_gemm"] == ["m", "a"]


# -- the normalizer on hand-written profiles (ORT's documented event layout) ----------------------------------
def _ev(name, cat, ts, dur, **args):
    return {"cat": cat, "pid": 1, "tid": 1, "dur": dur, "ts": ts, "ph": "X", "name": name, "args": args}


def _write(tmp_path, events):
    p = tmp_path / "profile.json"
    p.write_text(json.dumps(events))
    return p


def test_normalize_host_times_fences_and_skipped_runs(tmp_path):
    events = [_ev("model_loading_uri", "Session", 0, 50), _ev("session_initialization", "Session", 50, 100)]
    # run 0 (warm-up, skipped): one node
    events += [_ev("model_run", "Session", 200, 100), _ev("a_kernel_time", "Node", 210, 80, op_name="MatMul")]
    # run 1: fence_before 2 us + kernel 30 us + fence_after 3 us for node a; node b 40 us; window 100 us
    events += [
        _ev("model_run", "Session", 400, 100),
        _ev("a_fence_before", "Node", 405, 2),
        _ev(
            "a_kernel_time",
            "Node",
            407,
            30,
            op_name="MatMul",
            provider="CPUExecutionProvider",
            input_type_shape=[{"float": [2, 3]}, {"float": [3, 4]}],
        ),
        _ev("a_fence_after", "Node", 437, 3),
        _ev("b_kernel_time", "Node", 445, 40, op_name="Relu", provider="CPUExecutionProvider"),
    ]
    df, info = ort.normalize(_write(tmp_path, events), skip_runs=1)
    optable.check(df)
    assert info["iterations"] == 1 and info["runs_skipped"] == 1
    a = df[df.node == "a"].iloc[0]
    assert a.time_us == pytest.approx(35.0) and a.group == "GEMM" and a.input_shapes == "[[2, 3], [3, 4]]"
    b = df[df.node == "b"].iloc[0]
    assert b.time_us == pytest.approx(40.0) and b.group == "Activation"
    idle = df[df.group == "Idle"].iloc[0]
    assert idle.op == "session overhead" and idle.time_us == pytest.approx(100 - 35 - 40)
    assert (df.device == "cpu").all()


def test_normalize_device_kernels_give_the_time(tmp_path):
    events = [
        _ev("model_run", "Session", 0, 200),
        _ev("add_kernel_time", "Node", 10, 5, op_name="Add", provider="CUDAExecutionProvider"),
        _ev("ort_add_cuda_kernel", "Kernel", 20, 33),  # listed after its node (ORT's documented order)
        _ev("mm_kernel_time", "Node", 16, 4, op_name="MatMul", provider="CUDAExecutionProvider"),
        _ev("sm80_xmma_gemm", "Kernel", 60, 100),
        _ev("other_kernel", "Kernel", 170, 10, parent_name="add"),  # names its node explicitly
    ]
    df, info = ort.normalize(_write(tmp_path, events))
    optable.check(df)
    assert info["device_activity"] and (df.device == "cuda").all()
    add, mm = df[df.node == "add"].iloc[0], df[df.node == "mm"].iloc[0]
    assert add.time_us == pytest.approx(43.0) and add.host_time_us == pytest.approx(5.0)
    assert mm.time_us == pytest.approx(100.0) and mm.device_time_us == pytest.approx(100.0)
    assert df[df.group == "Idle"].time_us.item() == pytest.approx(200 - 143)


def test_normalize_overlapping_nodes_share_time(tmp_path):
    events = [
        _ev("model_run", "Session", 0, 100),
        _ev("x_kernel_time", "Node", 0, 60, op_name="Relu"),
        _ev("y_kernel_time", "Node", 40, 40, op_name="Relu"),  # parallel executor: overlaps x by 20 us
    ]
    df, _ = ort.normalize(_write(tmp_path, events))
    optable.check(df)
    t = dict(zip(df.node, df.time_us))
    assert t["x"] == pytest.approx(50.0) and t["y"] == pytest.approx(30.0) and t[""] == pytest.approx(20.0)


def test_unknown_op_type_is_other_and_kept(tmp_path):
    events = [_ev("model_run", "Session", 0, 10), _ev("q_kernel_time", "Node", 1, 5, op_name="MyCustomOp")]
    df, _ = ort.normalize(_write(tmp_path, events))
    assert df[df.node == "q"].group.item() == "Other"


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"traceEvents": []}', "not an ONNX Runtime profile"),
        ("[]", "no 'model_run' Session events"),
        ("[{", "not valid JSON"),
    ],
)
def test_bad_profiles_are_named(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        ort.normalize(p)
    assert "bad.json" in str(err.value)


def test_all_runs_skipped_is_an_error(tmp_path):
    p = _write(tmp_path, [_ev("model_run", "Session", 0, 10)])
    with pytest.raises(InputError, match="all of them skipped"):
        ort.normalize(p, skip_runs=1)


def test_cuda_provider_missing_is_a_clear_error():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine's onnxruntime has the CUDA provider")
    with pytest.raises(ort_backend.ProviderUnavailable, match="no CUDAExecutionProvider"):
        ort_backend.providers_for("cuda")
    assert ort_backend.providers_for("cpu") == ["CPUExecutionProvider"]


# -- the fp16 copy for the CUDA provider and TensorRT's strongly typed networks -------------------------------
def _tiny_llama_export(tmp_path):
    from ngbench import inputs

    spec = registry.load()["llama2"]
    config = {**spec.config, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2}
    small = registry.ModelSpec(**{**spec.__dict__, "config": {**config, "num_key_value_heads": 2}})
    model, _ = registry.build(small, layers=2, attn_implementation="eager")
    model.config.use_cache = False
    batch, _ = inputs.make_batch(small, 1, seq_len=16)
    out = tmp_path / "llama.onnx"
    onnx_export.export(model, batch, out)
    return out, {k: v.numpy() for k, v in batch.items()}


@pytest.mark.slow
def test_fp16_copy_keeps_the_models_fp32_computations(tmp_path):
    import numpy as np
    import onnxruntime

    src, feed = _tiny_llama_export(tmp_path)
    dst = tmp_path / "llama.fp16.onnx"
    info = onnx_export.to_fp16(src, dst)
    # by hand from the export: 2 layers x 2 RMSNorms + the final one = 5 LlamaRMSNorm modules of 7 nodes
    # each (Pow, ReduceMean, Add, Sqrt, Reciprocal, Mul, Mul) and 2 Softmax nodes stay float32
    assert info["nodes_kept_fp32"] == 5 * 7 + 2
    half = onnx.load(str(dst), load_external_data=False)
    types = {v.name: v.type.tensor_type.elem_type for v in half.graph.value_info}  # as the converter typed them
    types.update({v.name: v.type.tensor_type.elem_type for v in half.graph.output})
    nodes = {n.name: n for n in half.graph.node}
    for name in onnx_export.fp32_nodes(onnx.load(str(src), load_external_data=False)):
        assert all(types.get(o) == TensorProto.FLOAT for o in nodes[name].output), name
    matmuls = [n for n in half.graph.node if n.op_type == "MatMul"]
    assert matmuls and all(types.get(n.output[0]) == TensorProto.FLOAT16 for n in matmuls)
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [TensorProto.INT64, TensorProto.INT64]
    ref = onnxruntime.InferenceSession(str(src)).run(None, feed)[0]
    got = onnxruntime.InferenceSession(str(dst)).run(None, feed)[0]
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-2


@pytest.mark.slow
def test_fp16_copy_of_a_model_past_the_protobuf_limit(tmp_path):
    """2 x 1 GiB of weights (as the truncated Llama-2 export has more than 2 GiB): converted from disk. (The
    in-memory conversion the ORT backend used before, ``convert_float_to_float16(onnx.load(...))``, fails on it:
    shape inference cannot serialize > 2 GiB; checking that again took 20 s a run.) The weights live in a
    sparse file of zeros (``truncate``): the model is past the limit without writing 2 GiB."""
    n = 16384  # 16384^2 float32 = 1 GiB per weight
    src = tmp_path / "big.onnx"
    data = tmp_path / "big.onnx.data"
    with open(data, "wb") as f:
        f.truncate(2 * n * n * 4)
    weights = []
    for i in range(2):
        w = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[n, n])
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", data.name), ("offset", str(i * n * n * 4)), ("length", str(n * n * 4))):
            w.external_data.add(key=key, value=value)
        weights.append(w)
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["a"], name="mm0"),
        helper.make_node("MatMul", ["a", "w1"], ["y"], name="mm1"),
    ]
    io = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, n]) for k in ("x", "y")]
    model = helper.make_model(
        helper.make_graph(nodes, "big", io[:1], io[1:], weights), opset_imports=[helper.make_opsetid("", 17)]
    )
    src.write_bytes(model.SerializeToString())
    del model, weights
    assert src.stat().st_size + data.stat().st_size > 2**31  # past protobuf's limit
    dst = tmp_path / "big.fp16.onnx"
    onnx_export.to_fp16(src, dst)
    half = onnx.load(str(dst), load_external_data=False)
    assert {t.data_type for t in half.graph.initializer} == {TensorProto.FLOAT16}
    assert (tmp_path / "big.fp16.onnx.data").stat().st_size == 2 * n * n * 2


def test_gpu_profile_without_kernel_events_is_marked_host_timed(tmp_path):
    """Stock onnxruntime-gpu wheels profile no CUDA kernels: node times are host Compute() spans. Such a run
    is marked in its info, its shares rows and every figure label, never silently set beside device time."""
    from ngbench.analysis import shares
    from ngbench.figures.style import HOST_TIMED, bar_label

    events = [
        _ev("model_run", "Session", 0, 100),
        _ev("mm_kernel_time", "Node", 10, 20, op_name="MatMul", provider="CUDAExecutionProvider"),
    ]
    df, info = ort.normalize(_write(tmp_path, events), backend="ort")
    assert info["host_timed_on_device"] and (df.device == "cuda").all()
    rows = shares.shares_of(df, {"normalize": info, "status": "ok"})
    assert rows.host_timed.all() and rows.time_basis.str.startswith("host-side").all()
    assert bar_label(rows.iloc[0]).endswith(HOST_TIMED)
    cpu = [{**e, "args": {**e["args"], "provider": "CPUExecutionProvider"}} for e in events]
    _, cpu_info = ort.normalize(_write(tmp_path, cpu))
    assert not cpu_info["host_timed_on_device"]  # on a CPU the host time is the time
