"""Fusion analysis (table5, fig8 classes) on hand-built op tables, and Inductor kernel attribution on a
small compiled model. Expected values are worked out by hand from the tables below."""

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from ngbench import names
from ngbench import table as optable
from ngbench.analysis import classes, fusion
from ngbench.backends import inductor as inductor_backend
from ngbench.backends import torch_eager
from ngbench.traces import inductor, kineto

E = optable.fused_entry


def _table(backend, rows, iterations=1):
    """rows: (op, group, is_gemm, time_us, fused_ops); an Idle row closes each iteration at 100 us."""
    out = []
    for it in range(iterations):
        for seq, (op, group, gemm, t, fused) in enumerate(rows):
            out.append((it, seq, op, group, gemm, t, fused))
        busy = sum(r[3] for r in rows)
        out.append((it, len(rows), "idle/unattributed", "Idle", False, 100.0 - busy, []))
    df = pd.DataFrame(out, columns=["iteration", "seq", "op", "group", "is_gemm", "time_us", "fused_ops"])
    df = df.assign(
        platform="cpu",
        device="cpu",
        backend=backend,
        model="m",
        batch_size=1,
        seq_len=None,
        node="",
        module="",
        module_type="",
        group_source="op",
        device_time_us=None,
        host_time_us=None,
        iteration_time_us=100.0,
        input_shapes="",
    )
    optable.check(df, types=False)
    return df


# a TensorRT-like engine: Conv+BN+ReLU (GEMM with 2 fused non-GEMM), LayerNorm+Add (2 non-GEMM fused together),
# a lone Softmax, a Reshape
TRT_ROWS = [
    (
        "CaskConvolution",
        "GEMM",
        True,
        40.0,
        [E("Conv", "c"), E("BatchNormalization", "bn", "bb.bn1", "BatchNorm2d"), E("Relu", "r")],
    ),
    ("Normalization", "Normalization", False, 20.0, [E("Add", "a"), E("LayerNormalization", "ln")]),
    ("SoftMax", "Logit", False, 10.0, [E("Softmax", "s")]),
    ("Shuffle", "Memory", False, 5.0, []),
]


def test_time_classes_keep_fused_gemm_non_gemm_apart():
    df = _table("trt", TRT_ROWS)
    per_class = classes.class_times(df).iloc[0]
    assert per_class[names.FUSED_MIXED] == pytest.approx(0.040)  # the Conv+BN+ReLU layer, never pure GEMM
    assert per_class["GEMM"] == 0.0
    assert per_class["non-GEMM"] == pytest.approx(0.035) and per_class["Idle"] == pytest.approx(0.025)
    assert per_class.sum() == pytest.approx(0.1)


def test_the_eight_fusion_rates_by_hand():
    df = _table("trt", TRT_ROWS)
    # original graph: 1 Conv + 9 non-GEMM (BN, Relu, Add, LN, Softmax, Reshape, and 3 Shape ops folded away)
    original = {
        "Conv": 1,
        "BatchNormalization": 1,
        "Relu": 1,
        "Add": 1,
        "LayerNormalization": 1,
        "Softmax": 1,
        "Reshape": 1,
        "Shape": 3,
    }
    stats = fusion.fusion_rates(df, original)
    # kept non-GEMM constituents: bn, r, a, ln, s, Shuffle = 6; fused: bn, r (with GEMM), a, ln (with non-GEMM)
    assert stats["counts"] == {
        "non_gemm_kept": 6,
        "non_gemm_original": 9,
        "fused": 4,
        "fused_with_gemm": 2,
        "fused_with_non_gemm": 2,
    }
    r = stats["rates"]
    assert r["fused / kept non-GEMM"] == pytest.approx(100 * 4 / 6)
    assert r[fusion.HEADLINE] == pytest.approx(100 * 4 / 9)
    assert r["fused with GEMM / original non-GEMM"] == pytest.approx(100 * 2 / 9)
    assert r["with GEMM / fused"] == pytest.approx(50.0) and len(r) == 8
    assert stats["batch_norm"] == {"ops": 1, "fused_with_gemm": 1, "fused_with_non_gemm": 0, "not_fused": 0}


def test_table5_before_after_and_missing_sides(tmp_path):
    eager = _table(
        "torch", [("aten::conv2d", "GEMM", True, 30.0, []), ("aten::relu", "Activation", False, 50.0, [])], iterations=3
    )
    after = _table("trt", TRT_ROWS)
    paths = []
    for name, df, backend in (("torch", eager, "torch"), ("trt", after, "trt")):
        p = tmp_path / f"{name}.parquet"
        optable.write(
            df,
            p,
            run={
                "platform": "cpu",
                "model": "m",
                "batch_size": 1,
                "backend": backend,
                "status": "ok",
                "normalize": {"original_ops": {"Conv": 1, "Relu": 1}},
            },
        )
        paths.append(p)
    t5 = fusion.table5(paths, ["torch", "inductor", "trt"]).set_index("backend")
    trt = t5.loc["trt"]
    assert trt.status == "ok"
    assert trt.non_gemm_ms_before == pytest.approx(0.050) and trt.non_gemm_pct_before == pytest.approx(50.0)
    assert trt.non_gemm_ms_after == pytest.approx(0.035) and trt.non_gemm_pct_after == pytest.approx(35.0)
    assert trt.non_gemm_speedup == pytest.approx(50 / 35) and trt.fused_gemm_non_gemm_ms_after == pytest.approx(0.04)
    assert t5.loc["inductor"].status == "missing" and "no inductor run" in t5.loc["inductor"].reason


# -- Inductor: real compile of a small model, kernels attributed through Inductor's provenance ----------------
class ConvBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.act = torch.nn.ReLU()
        self.norm = torch.nn.LayerNorm(8)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        return torch.softmax(self.norm(y.permute(0, 2, 3, 1)), dim=-1)


def compile_and_profile(model, inputs: dict, trace_dir, iterations: int = 2) -> dict:
    """Compile ``model`` with our Inductor backend on CPU and profile it into ``trace_dir``."""
    return torch_eager.run(
        model.eval(),
        inputs,
        device="cpu",
        trace_dir=trace_dir,
        warmup=1,
        iterations=iterations,
        profile_iterations=iterations,
        threads=1,
        scope_modules=False,
        shapes_pass=False,
        compiler=inductor_backend.make_compiler(trace_dir / "cache"),
    )


@pytest.mark.slow
def test_inductor_kernels_are_attributed_to_their_ops_and_modules(tmp_path):
    torch.manual_seed(0)
    record = compile_and_profile(ConvBlock(), {"x": torch.randn(2, 3, 8, 8)}, tmp_path)
    assert record["compile"]["graphs"] == 1 and record["compile"]["compile_s"] > 0
    df, _ = kineto.normalize_many(sorted(tmp_path.glob("trace.*.json.gz")), backend="inductor")
    info = inductor.attribute(df, tmp_path / names.INDUCTOR_ARTIFACT_DIR)
    optable.check(df)
    kernels = df[df.op.str.contains("cpp_fused")]
    assert len(kernels) and info["kernels_with_provenance"] == info["kernels"]  # every kernel traced back
    assert info["kernel_time_us_by_name"] == 0.0
    # the convolution stays an extern GEMM call; Inductor's cpp_fused_convolution_* kernel around it is the
    # layout copy of the conv's input, not a GEMM (its code multiplies nothing)
    assert (df[df.op == "aten::convolution"].group == "GEMM").all()
    assert (df[df.op.str.contains("cpp_fused_convolution")].group == "Memory").all()
    ops_of = {op: {optable.parse_fused(f).op for f in fo} for op, fo in zip(kernels.op, kernels.fused_ops)}
    modules_of = {op: {optable.parse_fused(f).module_type for f in fo} for op, fo in zip(kernels.op, kernels.fused_ops)}
    # batch norm (eval) + relu are fused into one kernel after the conv: its constituents name both modules
    bn_kernel = next(op for op, mods in modules_of.items() if "BatchNorm2d" in mods)
    assert "ReLU" in modules_of[bn_kernel]
    # layer norm + softmax: the kernel holding softmax's reduction pieces is decided by its constituents
    softmax_kernel = next(op for op, ops in ops_of.items() if "aten::amax" in ops)
    assert df[df.op == softmax_kernel].group.iloc[0] in {"Logit", "Normalization"}
    assert set(kernels.group) <= {"Normalization", "Activation", "Logit", "Memory", "Elementwise"}
    # one BatchNorm2d module (split over post-grad nodes), fused with the ReLU/LayerNorm, not with the conv:
    # the conv runs as an extern call and its layout-copy kernel is no GEMM work
    assert fusion.fusion_rates(df, info["original_ops"])["batch_norm"] == {
        "ops": 1,
        "fused_with_gemm": 0,
        "fused_with_non_gemm": 1,
        "not_fused": 0,
    }
    assert (kernels.group_source != "unknown").all()


# -- a fused kernel's group follows what it stores (DETR's masked softmax) ------------------------------------
class MaskedSoftmaxAttention(torch.nn.Module):
    """DETR's pattern: the image's padding mask is interpolated to the feature map and masks the attention
    scores before the softmax. Inductor inlines the mask interpolation (iota/mul/convert/_unsafe_index: 10
    post-grad nodes) into the softmax kernel (amax/sub/exp/sum/div: 5), which stores only the softmax."""

    def forward(self, q, k, pixel_mask):
        mask = torch.nn.functional.interpolate(pixel_mask[None].float(), size=(8, 8)).to(torch.bool)[0].flatten(1)
        scores = torch.bmm(q, k.transpose(1, 2))
        return scores.masked_fill(mask[:, None, :], float("-inf")).softmax(-1)


DETR_CASE = Path(__file__).resolve().parent / "fixtures" / "inductor" / "detr_masked_softmax"


def test_masked_softmax_kernel_is_logit_not_interpolation():
    # artifacts and trace of MaskedSoftmaxAttention compiled by our Inductor backend (torch 2.14.1, CPU);
    # by hand from fx_graph_transformed.py: the kernel's 22 post-grad nodes come from 10 pre-grad nodes;
    # interpolate contributes 10 nodes, softmax 5, the rest 1 each. Only `div` (softmax) is read outside the
    # kernel (the graph returns it): the kernel stores the softmax, so it is Logit, with the interpolation
    # listed in fused_ops. Weighting by op count alone would say Interpolation (10 > 5).
    art = inductor.load_artifacts(DETR_CASE)["graph_0"]
    kernel = next(k for k in art.kernels if k.startswith("cpp_fused"))
    assert art.stored(kernel) == {"div"}
    df, _ = kineto.normalize(DETR_CASE / "trace.0.json.gz", backend="inductor")
    inductor.attribute(df, DETR_CASE)
    row = df[df.op.str.contains("cpp_fused")].iloc[0]
    assert row.group == "Logit" and row.group_source == "fused-output"
    ops = [optable.parse_fused(f).op for f in row.fused_ops]
    assert ops.count("aten::_unsafe_index") == 1 and "aten::div" in ops and len(ops) == 22
    assert df[df.op == "aten::bmm"].group.item() == "GEMM"


def test_stored_values_ignore_nodes_every_consumer_recomputes():
    # a -> b (kernel k1) and a -> c (kernel k2): both kernels recompute a inline, so neither stores it
    art = inductor.GraphArtifacts(
        kernels={"k1": ["a", "b"], "k2": ["a", "c"]}, users={"a": {"b", "c"}, "b": {"d"}}, returned={"c"}
    )
    assert art.stored("k1") == {"b"} and art.stored("k2") == {"c"}


@pytest.mark.slow
def test_masked_softmax_kernel_live_compile(tmp_path):
    torch.manual_seed(0)
    pixel_mask = torch.ones(2, 32, 32)
    pixel_mask[:, :, 20:] = 0
    inputs = {"q": torch.randn(2, 16, 8), "k": torch.randn(2, 64, 8), "pixel_mask": pixel_mask}
    compile_and_profile(MaskedSoftmaxAttention(), inputs, tmp_path, iterations=1)
    df, _ = kineto.normalize_many(sorted(tmp_path.glob("trace.*.json.gz")), backend="inductor")
    inductor.attribute(df, tmp_path / names.INDUCTOR_ARTIFACT_DIR)
    optable.check(df)
    softmax = df[df.op.str.contains("cpp_fused") & df.op.str.contains("softmax")]
    assert len(softmax) and (softmax.group == "Logit").all()
    assert not (df.group == "Interpolation").any()


class TwoBlocks(torch.nn.Module):
    """Two identical blocks with a graph break between them: Inductor compiles two graphs whose kernels
    have the same names (cpp_fused_..._0) but belong to different modules."""

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.LayerNorm(8))
        self.second = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.LayerNorm(8))

    def forward(self, x):
        x = self.first(x)
        torch._dynamo.graph_break()
        return self.second(x)


@pytest.mark.slow
def test_graphs_with_same_kernel_names_stay_apart(tmp_path):
    # Triton kernels carry no graph_<id>_ prefix: strip it from the C++ kernels' names, as a GPU trace has
    # them, and the kernels must still be joined to the graph (and module) that ran them, through the
    # compile id of the Torch-Compiled Region around each.
    torch.manual_seed(0)
    compile_and_profile(TwoBlocks(), {"x": torch.randn(4, 8)}, tmp_path, iterations=1)
    art_dir = tmp_path / names.INDUCTOR_ARTIFACT_DIR
    graphs = inductor.load_artifacts(art_dir)
    assert len(graphs) == 2 and len({g.compile_id for g in graphs.values()}) == 2
    shared = {k for k in set.intersection(*(set(g.kernels) for g in graphs.values())) if k.startswith("cpp_")}
    assert shared  # the same generated kernel names in both graphs
    for trace in tmp_path.glob("trace.*.json.gz"):
        data = json.loads(gzip.decompress(trace.read_bytes()))
        for e in data["traceEvents"]:
            e["name"] = re.sub(r"^graph_\d+_", "", e.get("name", ""))
        trace.write_bytes(gzip.compress(json.dumps(data, indent=2).encode()))
    df, _ = kineto.normalize_many(sorted(tmp_path.glob("trace.*.json.gz")), backend="inductor")
    info = inductor.attribute(df, art_dir)
    assert info["kernels_with_provenance"] == info["kernels"] and info["kernel_time_us_by_name"] == 0.0
    kernels = df[df.op.isin(shared)]
    modules = {(op, node): module for op, node, module in kernels[["op", "node", "module"]].itertuples(index=False)}
    for name in shared:  # each graph's copy of the kernel names its own block
        mine = {m.split(".")[0] for (op, _), m in modules.items() if op == name}
        assert mine == {"first", "second"}, (name, modules)


def _extern_graph(tmp_path):
    """A compiled graph (compile id 0/0) whose code calls extern addmm twice: handle 2 runs post-grad node
    addmm (pre-grad fc1 in blk.fc1, a Linear), handle 5 runs addmm_1 (fc2 in blk.fc2)."""
    from ngbench import names

    graph = tmp_path / "inductor" / "compile_0"
    graph.mkdir(parents=True)
    (graph / names.INDUCTOR_GRAPH_FILE).write_text(json.dumps({"compile_id": "0/0", "graph_id": 0}))
    (graph / names.INDUCTOR_PROVENANCE_FILE).write_text(json.dumps({
        "cppCodeToPost": {"extern_kernels.addmm:5": ["addmm_1"], "cpp_fused_relu_3": ["relu"],
                          "extern_kernels.addmm:2": ["addmm"]},
        "postToPre": {"addmm": ["fc1"], "addmm_1": ["fc2"], "relu": ["act"]},
    }))  # fmt: skip
    (graph / names.INDUCTOR_PRE_GRAD_FILE).write_text(json.dumps({
        "fc1": {"target": "linear", "module_paths": ["blk.fc1", "blk"], "module_types": ["Linear", "Block"]},
        "fc2": {"target": "linear", "module_paths": ["blk.fc2", "blk"], "module_types": ["Linear", "Block"]},
        "act": {"target": "relu", "module_paths": ["blk.act", "blk"], "module_types": ["ReLU", "Block"]},
    }))  # fmt: skip
    return tmp_path / "inductor"


def _extern_rows(per_iteration):
    rows = []
    for it in (1, 2):
        for seq, op in enumerate(per_iteration):
            rows.append({"iteration": it, "seq": seq, "op": op, "node": "0/0", "module": "", "module_type": ""})
    return pd.DataFrame(rows)


def test_extern_calls_get_the_module_of_the_nodes_they_run(tmp_path):
    from ngbench.traces import inductor

    graphs = inductor.load_artifacts(_extern_graph(tmp_path))
    df = _extern_rows(["aten::addmm", "cpp_fused_relu_3", "aten::addmm"])
    # in each iteration the first addmm is handle 2 (fc1), the second handle 5 (fc2): code order, not file order
    assert inductor._attribute_externs(df, graphs) == {"rows_with_module": 4, "rows_without": 0}
    addmm = df[df.op == "aten::addmm"]
    assert addmm.module.tolist() == ["blk.fc1", "blk.fc2", "blk.fc1", "blk.fc2"]
    assert set(addmm.module_type) == {"Linear"} and df.loc[df.op != "aten::addmm", "module"].eq("").all()


def test_extern_calls_that_do_not_match_the_code_stay_unattributed(tmp_path):
    from ngbench.traces import inductor

    graphs = inductor.load_artifacts(_extern_graph(tmp_path))
    df = _extern_rows(["aten::addmm", "aten::addmm", "aten::addmm"])  # three calls where the code makes two
    assert inductor._attribute_externs(df, graphs) == {"rows_with_module": 0, "rows_without": 6}
    assert df.module.eq("").all()
