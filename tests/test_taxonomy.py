"""Pins of the taxonomy: each mapping the paper's intent depends on, and the innermost-known-module rule."""

import pytest

from ngbench import taxonomy as tax

T = tax.load()


@pytest.mark.parametrize(
    "op,modules,group",
    [
        # the module rule: GPT-2's GELU runs as mul/add/tanh/pow but is an activation
        ("aten::mul", ["NewGELUActivation", "GPT2MLP", "GPT2Block"], "Activation"),
        ("aten::tanh", ["NewGELUActivation"], "Activation"),
        ("aten::pow", ["NewGELUActivation"], "Activation"),
        # torchvision / DETR frozen batch norm run as mul/add/rsqrt
        ("aten::rsqrt", ["FrozenBatchNorm2d", "Bottleneck"], "Normalization"),
        ("aten::add", ["DetrFrozenBatchNorm2d"], "Normalization"),
        ("aten::mean", ["LlamaRMSNorm"], "Normalization"),
        ("aten::to", ["MixtralRMSNorm"], "Normalization"),
        # containers are not known modules: their ops fall back to the op name
        ("aten::addmm", ["Conv1D", "GPT2Attention"], "GEMM"),
        ("aten::view", ["GPT2Attention", "GPT2Block"], "Memory"),
        ("aten::linear", ["Linear", "Mlp"], "GEMM"),
        # innermost known module wins over an outer known one
        ("aten::gelu", ["GELU", "Linear"], "Activation"),
    ],
)
def test_module_rule(op, modules, group):
    decision = T.classify(op, modules)
    assert decision.group == group
    known = [m for m in modules if m in T.modules]
    assert decision.source == ("module" if known else "op")


@pytest.mark.parametrize(
    "op,group",
    [
        ("aten::conv2d", "GEMM"),
        ("aten::addmm", "GEMM"),
        ("aten::bmm", "GEMM"),
        ("aten::baddbmm", "GEMM"),
        ("aten::matmul", "GEMM"),
        ("aten::einsum", "GEMM"),
        ("aten::_grouped_mm", "GEMM"),  # Mixtral's experts in transformers 5
        ("aten::histc", "Reduction"),  # Mixtral's tokens-per-expert count
        ("aten::_native_multi_head_attention", "GEMM"),
        ("aten::layer_norm", "Normalization"),
        ("aten::batch_norm", "Normalization"),
        ("aten::group_norm", "Normalization"),
        ("aten::gelu", "Activation"),
        ("aten::relu_", "Activation"),
        ("aten::silu", "Activation"),
        ("aten::sigmoid", "Activation"),
        ("aten::view", "Memory"),
        ("aten::reshape", "Memory"),
        ("aten::permute", "Memory"),
        ("aten::transpose", "Memory"),
        ("aten::contiguous", "Memory"),
        ("aten::cat", "Memory"),
        ("aten::split", "Memory"),
        ("aten::slice", "Memory"),
        ("aten::expand", "Memory"),
        ("aten::copy_", "Memory"),
        ("aten::to", "Memory"),
        ("aten::add", "Elementwise"),
        ("aten::add_", "Elementwise"),
        ("aten::div", "Elementwise"),
        ("aten::rsqrt", "Elementwise"),
        ("aten::where", "Elementwise"),
        ("aten::masked_fill", "Elementwise"),
        ("aten::clamp", "Elementwise"),
        ("aten::softmax", "Logit"),
        ("aten::_softmax", "Logit"),
        ("aten::log_softmax", "Logit"),
        ("torchvision::nms", "RoI"),
        ("torchvision::roi_align", "RoI"),
        ("aten::upsample_bilinear2d", "Interpolation"),
        ("aten::max_pool2d", "Pooling"),
        ("aten::adaptive_avg_pool2d", "Pooling"),
        ("aten::embedding", "Embedding"),
        ("aten::topk", "Reduction"),
        ("aten::argmax", "Reduction"),
        ("aten::sum", "Reduction"),
        ("bitsandbytes::int8_vectorwise_quant", "Quantization"),
        ("aten::add.Tensor", "Elementwise"),  # overload suffix
    ],
)
def test_torch_op_names(op, group):
    assert T.classify(op, []).group == group


@pytest.mark.parametrize(
    "op,group",
    [
        ("MatMul", "GEMM"),
        ("FusedMatMul", "GEMM"),
        ("Resize", "Interpolation"),  # the original ORT flow called it memory
        ("Where", "Elementwise"),
        ("Gather", "Memory"),
        ("SkipLayerNormalization", "Normalization"),
        ("BiasGelu", "Activation"),
        ("MemcpyToHost", "Memory"),
        ("Softmax", "Logit"),
    ],
)
def test_onnx_op_types(op, group):
    assert T.classify(op, [], kind="onnx").group == group


@pytest.mark.parametrize(
    "layer,group",
    [
        ("CaskConvolution", "GEMM"),
        ("CudaDepthwiseConvolution", "GEMM"),
        ("Reformat", "Memory"),
        ("TiledPooling", "Pooling"),
    ],
)
def test_trt_layer_types(layer, group):
    assert T.classify(layer, [], kind="trt").group == group


@pytest.mark.parametrize(
    "kernel,group",
    [
        ("ampere_sgemm_128x64_nn", "GEMM"),
        ("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64", "GEMM"),
        ("cudnn_ampere_scudnn_128x64_relu_interior_nn_v1", "GEMM"),
        ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>", "Normalization"),
        ("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float>", "Logit"),
        ("void kInt8VectorQuant<__half, 1024, 1>(...)", "Quantization"),
        ("triton_poi_fused_add_cos_sin_0", "Elementwise"),  # fused-name rule: add, cos, sin agree
        ("cpp_fused_addmm_gelu_4", "GEMM"),  # a GEMM with a fused epilogue is GEMM
    ],
)
def test_kernel_names(kernel, group):
    assert T.classify(kernel, [], kind="kernel").group == group


def test_unknown_lands_in_other_and_module_still_wins():
    assert T.classify("aten::my_custom_op", []).group == "Other"
    assert T.classify("aten::my_custom_op", []).source == "unknown"
    assert T.classify("aten::my_custom_op", ["LayerNorm"]).group == "Normalization"


def test_every_group_has_a_colour_and_idle_other_exist():
    assert {"GEMM", "Other", "Idle"} <= set(T.order)
    assert len(set(T.palette.values())) == len(T.palette), "two groups share a colour"
    assert T.is_gemm("GEMM") and not T.is_gemm("Memory")


def test_bad_taxonomy_is_rejected(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "groups: {GEMM: {color: '#000'}, Other: {color: '#111'}, Idle: {color: '#222'}}\nmodules: {Nope: [X]}\n"
    )
    with pytest.raises(ValueError, match="Nope"):
        tax.Taxonomy.__init__(tax.Taxonomy.__new__(tax.Taxonomy), __import__("yaml").safe_load(bad.read_text()))


# -- fused nodes / kernels / layers ("fused") ---------------------------------------------------
def parts(*ops_modules, kind="onnx"):
    return [(T.constituent_group(op, mods, kind), 1.0) for op, mods in ops_modules]


def test_constituent_is_gemm_only_when_the_op_is():
    assert T.constituent_group("MatMul", ["GPT2Attention"], "onnx") == "GEMM"
    assert T.constituent_group("Add", ["Linear"], "onnx") == "Elementwise"  # bias add split from its matmul
    assert T.constituent_group("aten::view", ["Linear"]) == "Memory"
    assert T.constituent_group("aten::mul", ["NewGELUActivation"]) == "Activation"  # a non-GEMM module still wins


def test_fused_with_a_gemm_is_gemm_whatever_the_module():
    p = parts(("MatMul", ["GPT2Attention"]), ("Mul", ["GPT2Attention"]))
    assert T.classify_fused("FusedMatMul", ["GPT2Attention"], p, "onnx") == tax.Decision("GEMM", "fused")
    # Conv + ReLU folded into one conv: GEMM, even though the common module is one the taxonomy calls Activation
    p = parts(("Conv", ["Conv2d"]), ("Relu", ["ReLU"]))
    assert T.classify_fused("FusedConv", ["ReLU"], p, "onnx").group == "GEMM"


def test_fused_without_gemm_follows_the_module_then_its_own_name():
    gelu = parts(*[(op, ["NewGELUActivation"]) for op in ("Mul", "Pow", "Add", "Tanh")])
    assert T.classify_fused("FastGelu", ["NewGELUActivation"], gelu, "onnx") == tax.Decision("Activation", "module")
    # residual add (block) + LayerNorm: no common known module, the fused op's name decides
    p = parts(("Add", ["GPT2Block"]), ("LayerNormalization", ["LayerNorm", "GPT2Block"]))
    assert T.classify_fused("SkipLayerNormalization", ["GPT2Block"], p, "onnx") == tax.Decision("Normalization", "op")


def test_fused_unknown_name_takes_the_weighted_constituent_group():
    # Inductor's cpp_fused__softmax_view_2: the reshape of the head's output + softmax's 5 post-grad ops
    p = [("Memory", 1.0), ("Logit", 5.0)]
    assert T.classify_fused("graph_0_cpp_fused__softmax_view_2", [], p) == tax.Decision("Logit", "fused")
    # add + gelu: the GELU contributes 5 ops, the residual add 1
    p = [("Memory", 1.0), ("Activation", 5.0), ("Elementwise", 1.0)]
    assert T.classify_fused("graph_0_cpp_fused_add_gelu_view_1", ["Block"], p).group == "Activation"
    assert T.classify_fused("x", [], [("Memory", 2.0)]).group == "Memory"
    assert T.classify_fused("x", [], []) == tax.Decision("Other", "unknown")


# -- LLM.int8 (bitsandbytes): the ops seen under the profiler on CPU with bitsandbytes 0.50 -------------------------
@pytest.mark.parametrize(
    "op, group",
    [
        ("bitsandbytes::int8_vectorwise_quant", "Quantization"),
        ("bitsandbytes::int8_linear_matmul", "GEMM"),  # the int8 matmul itself is GEMM
        ("aten::_int_mm", "GEMM"),
        ("bitsandbytes::int8_mm_dequant", "Quantization"),
        ("aten::addmm", "GEMM"),  # the fp16 outlier matmul of LLM.int8
        ("aten::to", "Quantization"),  # the fp32 -> fp16 cast before quantizing
        ("aten::mul", "Quantization"),  # scaling
        ("aten::index_put_", "Quantization"),  # outlier bookkeeping
    ],
)
def test_inside_a_quantized_linear_only_matmuls_are_gemm(op, group):
    assert T.classify(op, ["Linear8bitLt", "LlamaMLP", "LlamaDecoderLayer"]).group == group


def test_bitsandbytes_wrappers_are_transparent():
    for name in ("MatMul8bitLt", "bitsandbytes::int8_mixed_scaled_mm", "bitsandbytes::int8_scaled_mm"):
        assert T.transparent.search(name), name
    assert not T.transparent.search("bitsandbytes::int8_vectorwise_quant")


@pytest.mark.parametrize("op", ["mkldnn::_convolution_pointwise", "mkl::_mkl_linear", "mkldnn::_linear_pointwise"])
def test_inductor_freezing_gemms(op):
    """With Inductor's freezing, GEMMs run as packed mkldnn/mkl calls (seen with torch 2.14 on CPU)."""
    assert T.classify(op, []).group == "GEMM"


# -- communication, serving ops, and fused units decided by what they output ----------------------------------
def test_collectives_are_communication():
    t = tax.load()
    for op in ["c10d::allreduce_", "c10d::allgather_", "record_param_comms", "_c10d_functional::wait_tensor"]:
        assert t.classify(op).group == "Communication", op
    assert t.classify("ncclDevKernel_AllReduce_Sum_f32_RING_LL", kind="kernel").group == "Communication"
    assert t.classify("All2All_Pooled_Req").group == "Communication"  # not Pooling: collectives match first
    assert not t.is_gemm("Communication") and not t.is_overhead("Communication")


def test_serving_ops_with_known_names():
    t = tax.load()
    assert t.classify("_C::static_scaled_fp8_quant").group == "Quantization"
    assert t.classify("_C::fused_add_rms_norm").group == "Normalization"
    assert t.classify("_C::silu_and_mul").group == "Activation"
    assert t.classify("aten::_foreach_add_").group == "Elementwise"
    # a composite serving op is decided by its kernels in the trace normalizer, not by its name here
    assert t.classify("vllm::moe_forward") == tax.Decision("Other", "unknown")


def test_fused_unit_follows_the_constituents_it_outputs():
    t = tax.load()
    interp = [tax.Constituent("Interpolation", 10.0, False)]
    softmax = [tax.Constituent("Logit", 5.0, True)]
    assert t.classify_fused("cpp_fused_x_0", [], interp + softmax) == tax.Decision("Logit", "fused-output")
    # without output marks the count decides (the old rule, kept for units whose outputs are unknown)
    assert t.classify_fused("cpp_fused_x_0", [], [("Interpolation", 10.0), ("Logit", 5.0)]).group == "Interpolation"
    # a GEMM constituent, or a unit whose own type multiplies matrices, is GEMM whatever it outputs
    assert t.classify_fused("k", [], [tax.Constituent("GEMM", 1.0), *softmax]).group == "GEMM"
    assert t.classify_fused("CaskGemmConvolution", [], [("Other", 1.0)], kind="trt").group == "GEMM"
