"""The registry: entries validate, build offline with recorded provenance, and truncate on request."""

import pytest
import torch

from ngbench import registry

SPECS = registry.load()


def test_shipped_entries():
    assert {"swin-t", "vit-b", "gpt2"} <= set(SPECS)
    assert SPECS["gpt2"].config["n_layer"] == 12 and SPECS["gpt2"].seq_len == 256


@pytest.mark.parametrize("name,params", [("swin-t", 28_288_354), ("vit-b", 86_567_656), ("gpt2", 124_439_808)])
def test_full_depth_parameter_counts(name, params):
    # published counts: torchvision docs list swin_t 28,288,354 and vit_b_16 86,567,656 parameters;
    # GPT-2 small has 124,439,808 (117M in the paper, which excluded position embeddings and tying)
    assert registry.count_parameters(SPECS[name]) == params


def test_random_init_is_seeded_and_leaves_no_exact_zero_biases():
    spec = SPECS["gpt2"]
    a, prov = registry.build(spec, layers=1, seed=3)
    b, _ = registry.build(spec, layers=1, seed=3)
    assert prov["weights"] == "random" and prov["layers"] == 1 and prov["full_depth"] == 12
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    biases = [p for n, p in a.named_parameters() if n.endswith("bias")]
    assert biases and all((p != 0).all() for p in biases)
    assert len(a.transformer.h) == 1


def test_truncation_errors_are_clear():
    with pytest.raises(registry.RegistryError, match="exceeds"):
        registry.build(SPECS["gpt2"], layers=99)
    with pytest.raises(registry.RegistryError, match="layers"):
        registry.build(SPECS["swin-t"], layers=2)


def test_custom_model_entry_and_its_errors():
    specs = registry.load(
        {
            "tiny": {
                "source": "transformers",
                "task": "t",
                "dataset": "d",
                "model_class": "GPT2LMHeadModel",
                "config_class": "GPT2Config",
                "config": {"n_layer": 1, "n_embd": 32, "n_head": 2},
                "input": {"kind": "text"},
                "seq_len": 8,
                "batch_sizes": [1],
            }
        }
    )
    assert specs["tiny"].source == "transformers"
    with pytest.raises(registry.RegistryError, match="missing field"):
        registry.load({"bad": {"source": "transformers", "input": {"kind": "text"}}})
    with pytest.raises(registry.RegistryError, match="unknown field"):
        registry.load({"bad": {**{k: v for k, v in SPECS["swin-t"].__dict__.items() if k != "name"}, "colour": 1}})


def test_local_weights_file_is_loaded_safely(tmp_path):
    from safetensors.torch import save_file

    spec = SPECS["swin-t"]
    model, _ = registry.build(spec, seed=1, use_local_cache=False)
    path = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    again, prov = registry.build(spec, weights_path=str(path))
    assert prov == {**prov, "weights": "pretrained", "weights_source": str(path)}
    assert torch.equal(again.head.weight, model.head.weight)
