"""The torch eager backend on a small real model: module scopes in the trace, shapes joined, closure."""

import json

import pandas as pd
import pytest
import torch
from conftest import tiny_gpt2

from ngbench import names, registry
from ngbench.backends import torch_eager
from ngbench.traces import kineto

TINY_GPT2 = tiny_gpt2(seq_len=16, batch_sizes=[1], width=32)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    spec = registry.load({"tiny-gpt2": TINY_GPT2})["tiny-gpt2"]
    model, _ = registry.build(spec, attn_implementation="eager")
    model.config.use_cache = False
    ids = torch.randint(0, 50257, (2, 16))
    out = tmp_path_factory.mktemp("trace")
    record = torch_eager.run(
        model,
        {"input_ids": ids},
        device="cpu",
        trace_dir=out,
        warmup=1,
        iterations=3,
        profile_iterations=2,
        threads=1,
    )
    return out, record


def test_record_has_latency_and_overhead(profiled):
    _, record = profiled
    assert len(record["latency_samples_ms"]) == 3 and len(record["profiled_samples_ms"]) == 2
    assert record["profiler_overhead_ratio"] > 0
    assert record["grad_mode"] == "inference_mode"


def test_trace_holds_module_scopes_and_classifies_by_them(profiled):
    out, _ = profiled
    traces = sorted(out.glob(names.KINETO_TRACE_GLOB))
    assert len(traces) == 2  # one profiler cycle per measured iteration
    df, info = kineto.normalize_many(traces, shapes_trace=out / names.SHAPES_FILE)
    assert info["iterations"] == 2
    assert "1 iteration(s) matched, 0 did not" == info["input_shapes"].split(": ")[1]
    gelu = df[df.module_type == "NewGELUActivation"]
    assert len(gelu) > 0 and set(gelu.group) == {"Activation"}
    assert set(gelu.op) >= {"aten::mul", "aten::tanh"}  # gelu_new runs as a composite
    assert gelu.module.str.contains(r"transformer\.h\.\d\.mlp\.act").all()
    assert set(df[df.module_type == "LayerNorm"].group) == {"Normalization"}
    assert (df[df.op == "aten::addmm"].group == "GEMM").all()
    assert (df.input_shapes[df.op == "aten::addmm"] != "").all()


def test_hooks_are_removed_after_profiling(profiled):
    from torch.nn.modules import module as nn_module

    assert not nn_module._global_forward_pre_hooks and not nn_module._global_forward_hooks


def test_cuda_platform_without_gpu_says_so(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(torch_eager.DeviceUnavailable, match="no CUDA GPU"):
        torch_eager.run(
            torch.nn.Linear(2, 2),
            {"input": torch.ones(1, 2)},
            device="cuda",
            trace_dir=tmp_path,
            warmup=0,
            iterations=1,
            profile_iterations=1,
            threads=1,
        )


def test_failure_becomes_a_record_or_a_failed_job(tmp_path):
    from ngbench import inputs
    from ngbench.jobs import direct

    broken = {**TINY_GPT2, "config": {**TINY_GPT2["config"], "n_head": 3}}  # 32 not divisible by 3
    cfg = {
        "models": {"broken": None},
        "custom_models": {"broken": broken},
        "platforms": {"cpu": {"device": "cpu"}},
        "backends": {"torch": {"warmup": 0, "iterations": 1, "profile_iterations": 1}},
        "on_error": "record",
    }
    inputs.save({"input_ids": torch.zeros(1, 16, dtype=torch.long)}, {"source": "test"}, tmp_path / "in.pt")
    args = ("cpu", "broken", 1, str(tmp_path / "in.pt"), str(tmp_path / "trace"), str(tmp_path / "lat.json"))
    meta = direct.profile(cfg, *args)
    assert meta["status"] == "failed" and "divisible" in meta["reason"]
    assert json.loads((tmp_path / "lat.json").read_text())["status"] == "failed"
    with pytest.raises(ValueError, match="divisible"):
        direct.profile({**cfg, "on_error": "fail"}, *args)


def test_fast_and_generic_parsers_agree(profiled, tmp_path):
    """PyTorch's own layout goes through msgspec in chunks; the same events minified go through ijson."""
    import gzip

    from ngbench.traces import kineto as k

    out, _ = profiled
    trace = sorted(out.glob(names.KINETO_TRACE_GLOB))[0]
    fast, fast_info = k.normalize(trace)
    minified = tmp_path / "minified.json"
    minified.write_text(json.dumps(json.loads(gzip.decompress(trace.read_bytes()))))
    generic, generic_info = k.normalize(minified)
    assert fast_info["parser"].startswith("msgspec") and generic_info["parser"].startswith("ijson")
    assert fast_info["events"] == generic_info["events"]
    pd.testing.assert_frame_equal(fast, generic)


def test_fast_parser_reads_across_chunk_boundaries(profiled, monkeypatch):
    from ngbench.traces import kineto as k

    out, _ = profiled
    trace = sorted(out.glob(names.KINETO_TRACE_GLOB))[0]
    whole, _ = k.normalize(trace)
    from ngbench.traces import kineto_reader

    monkeypatch.setattr(kineto_reader, "CHUNK_BYTES", 4096)  # many chunks, boundaries everywhere
    chunked, info = k.normalize(trace)
    assert info["parser"].startswith("msgspec")
    pd.testing.assert_frame_equal(whole, chunked)


def test_failed_inputs_carry_their_reason_into_the_run(tmp_path):
    from ngbench.jobs import direct

    cfg = {
        "models": {"swin-t": {"batch_sizes": [1]}},
        "platforms": {"cpu": {"device": "cpu"}},
        "inputs": {"image_dir": str(tmp_path / "no-such-dir")},
        "on_error": "record",
        "backends": {"torch": {"warmup": 0, "iterations": 1, "profile_iterations": 1}},
    }
    prov = direct.make_inputs(cfg, "swin-t", 1, str(tmp_path / "in.pt"))
    assert prov["status"] == "failed" and "inputs.image_dir" in prov["reason"]
    meta = direct.profile(
        cfg, "cpu", "swin-t", 1, str(tmp_path / "in.pt"), str(tmp_path / "t"), str(tmp_path / "l.json")
    )
    assert meta["status"] == "failed" and "inputs.image_dir" in meta["reason"]
