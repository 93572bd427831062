"""LLM.int8 on the CPU (bitsandbytes >= 0.45 runs it there): the same checkpoint in fp32 and int8, profiled
and classified. Expected facts come from the architecture: 2 decoder layers x 7 linears are quantized,
the LM head is not."""

import pytest

from ngbench import normalize
from ngbench import table as optable
from ngbench.jobs import direct

TINY_LLAMA = {
    "source": "transformers",
    "task": "text-generation",
    "dataset": "wikitext",
    "model_class": "LlamaForCausalLM",
    "config_class": "LlamaConfig",
    "layers_key": "num_hidden_layers",
    "input": {"kind": "text", "tokenizer": "gpt2"},
    "seq_len": 32,
    "batch_sizes": [1],
    "config": {
        "vocab_size": 50257,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}
CONFIG = {
    "platforms": {"cpu": {"device": "cpu"}},
    "models": {"tiny-llama": None},
    "custom_models": {"tiny-llama": TINY_LLAMA},
    "backends": {
        b: {"warmup": 1, "iterations": 2, "profile_iterations": 2, "threads": 1, "attn_implementation": "eager"}
        for b in ("torch", "torch-int8")
    },
    "on_error": "fail",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("int8")
    batch = work / "bs1.pt"
    direct.make_inputs(CONFIG, "tiny-llama", 1, str(batch))
    out = {}
    for backend in ("torch", "torch-int8"):
        meta = direct.profile(
            CONFIG,
            "cpu",
            "tiny-llama",
            1,
            str(batch),
            str(work / backend),
            str(work / f"{backend}.json"),
            backend=backend,
        )
        normalize.normalize_run(
            str(work / backend),
            str(work / f"{backend}.parquet"),
            platform="cpu",
            backend=backend,
            model="tiny-llama",
            batch_size=1,
        )
        out[backend] = (optable.read(work / f"{backend}.parquet"), meta)
    return out


def test_int8_run_quantizes_the_same_checkpoint(runs):
    _, meta = runs["torch-int8"]
    q = meta["quantization"]
    assert q["int8_linears"] == 2 * 7 and q["bitsandbytes"] and q["device"] == "cpu"
    assert meta["model_provenance"] == runs["torch"][1]["model_provenance"]  # same weights, seed, layers


def test_int8_work_is_classified(runs):
    fp, _ = runs["torch"]
    q, _ = runs["torch-int8"]
    for df in (fp, q):
        optable.check(df)
    ops = set(q.op)
    assert {"bitsandbytes::int8_vectorwise_quant", "bitsandbytes::int8_mm_dequant"} <= ops
    assert set(q[q.op.str.contains("int8_vectorwise_quant|int8_mm_dequant")].group) == {"Quantization"}
    int8_mm = q[q.op.isin(["bitsandbytes::int8_linear_matmul", "aten::_int_mm"])]
    assert len(int8_mm) and set(int8_mm.group) == {"GEMM"}
    assert "Quantization" not in set(fp.group)
    # LLM.int8 adds non-GEMM operator instances to every forward
    per_iter = lambda df: (~df.is_gemm & (df.group != "Idle")).groupby(df.iteration).sum().median()  # noqa: E731
    assert per_iter(q) > per_iter(fp)
