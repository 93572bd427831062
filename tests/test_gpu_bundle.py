"""What benchmarks/gpu_bundle.py carries instead of packages gives the same inputs as the packages do."""

import sys

import pytest
from conftest import REPO

from ngbench import inputs, registry

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_bundle


def test_carried_wikitext_and_vocabulary_give_the_same_batch(tmp_path, monkeypatch):
    spec = registry.load()["gpt2"]
    expected, _ = inputs.text_batch(spec, 2, 64)  # gensim's articles, whisper's vocabulary file
    wiki = tmp_path / "wiki.valid.raw"
    assert gpu_bundle.write_wikitext(wiki) == len(inputs.wiki_articles())
    vocab = tmp_path / "gpt2.tiktoken"
    vocab.write_bytes((inputs._package_dir("whisper") / "assets" / "gpt2.tiktoken").read_bytes())
    monkeypatch.setenv("NGBENCH_GPT2_VOCAB", str(vocab))
    inputs.gpt2_tokenizer.cache_clear()
    try:
        carried, _ = inputs.text_batch(spec, 2, 64, wikitext=str(wiki))
    finally:
        inputs.gpt2_tokenizer.cache_clear()
    assert (carried["input_ids"] == expected["input_ids"]).all()


def test_missing_carried_vocabulary_is_named(monkeypatch):
    monkeypatch.setenv("NGBENCH_GPT2_VOCAB", "/nonexistent/gpt2.tiktoken")
    inputs.gpt2_tokenizer.cache_clear()
    try:
        with pytest.raises(inputs.InputError, match="NGBENCH_GPT2_VOCAB=/nonexistent/gpt2.tiktoken"):
            inputs.gpt2_tokenizer()
    finally:
        inputs.gpt2_tokenizer.cache_clear()


def test_dependency_closure_and_what_the_target_has():
    needed = gpu_bundle.closure(["snakemake"])
    assert {"snakemake", "snakemake-interface-common", "pulp", "yte"} <= set(needed)
    present = {gpu_bundle.canonical(n) for n in (REPO / "benchmarks" / "gpu-present.txt").read_text().split()}
    assert "torch" in present and "snakemake" not in present and "msgspec" not in present


def test_every_package_the_smoke_jobs_import_is_on_the_target_or_in_the_bundle():
    """What the smoke's jobs import beyond ngbench, by the smoke config's models (written out here, from
    the tokenizers and readers each model's inputs and traces use): the workflow, the trace readers, Llama-3's
    tokenizer (llama-models) and tiktoken. Each must be on the target (gpu-present.txt) or bundled."""
    imported = {"snakemake", "msgspec", "ijson", "jsonschema", "pyyaml", "psutil", "tiktoken", "llama-models",
                "transformers", "torchvision", "scikit-image", "pandas", "pyarrow", "matplotlib", "seaborn",
                "onnx", "onnxruntime", "nvidia-ml-py", "safetensors"}  # fmt: skip
    present = {gpu_bundle.canonical(n) for n in (REPO / "benchmarks" / "gpu-present.txt").read_text().split()}
    bundled = set(gpu_bundle.closure(gpu_bundle.NEEDS))
    assert sorted(imported - present - bundled) == []
    assert "llama-models" in bundled  # without it every llama3 and LLM.int8 run fails at its inputs


def test_the_run_script_compares_the_targets_versions_with_ours(tmp_path):
    versions = gpu_bundle.our_versions()
    assert set(versions) == set(gpu_bundle.COMPARED) and versions["pandas"] and versions["transformers"]
    script = gpu_bundle.RUN.format(needs=" ".join(gpu_bundle.NEEDS))
    assert "versions.json" in script and "differs" in script and "llama-models" in script
