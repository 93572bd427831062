from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# real profiler outputs published by other projects (attribution in tests/fixtures/README.md)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def tiny_gpt2(seq_len: int, batch_sizes: list[int], width: int) -> dict:
    """A registry entry for a 2-layer GPT-2 with the real vocabulary (so real tokenized text feeds it)."""
    return {
        "source": "transformers",
        "task": "text-generation",
        "dataset": "wikitext",
        "model_class": "GPT2LMHeadModel",
        "config_class": "GPT2Config",
        "layers_key": "n_layer",
        "input": {"kind": "text", "tokenizer": "gpt2"},
        "seq_len": seq_len,
        "batch_sizes": batch_sizes,
        "config": {
            "vocab_size": 50257,
            "n_positions": 64,
            "n_embd": width,
            "n_layer": 2,
            "n_head": 2,
            "activation_function": "gelu_new",
        },
    }


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA GPU: skipped here with that reason (``pytest -m gpu`` on a GPU machine)."""
    if not any("gpu" in item.keywords for item in items):
        return
    try:
        import torch

        have = torch.cuda.is_available()
        why = f"no CUDA GPU visible (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})"
    except ImportError:
        have, why = False, "torch is not installed"
    if not have:
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=why))
