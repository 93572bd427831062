"""Real inputs: tokenizer ids known from GPT-2's vocabulary, distinct samples, provenance, safe loading."""

import json

import pytest
import torch

from ngbench import inputs, registry

SPECS = registry.load()


@pytest.mark.parametrize(
    "name,text,ids",
    [
        # ids from the models' published vocabularies, so a wrong vocabulary cannot pass
        ("gpt2", "Hello world", [15496, 995]),  # openai-community/gpt2
        ("gpt2", " the", [262]),
        ("bert-wordpiece-uncased", "Hello world", [101, 7592, 2088, 102]),  # bert-base-uncased, with CLS/SEP
        ("mistral-spm", "Hello world", [1, 22557, 1526]),  # Mistral-7B-v0.1 / Mixtral-8x7B, with BOS
        ("llama3-tiktoken", "Hello world", [128000, 9906, 1917]),  # Llama-3, with <|begin_of_text|>
    ],
)
def test_tokenizers_reproduce_known_ids(name, text, ids):
    tok = inputs.TOKENIZERS[name]()
    assert [*tok.prefix, *tok.encode(text), *tok.suffix] == ids


def test_llama2_rebuilt_from_llama_cpp_vocabulary_reproduces_known_ids(monkeypatch):
    from ngbench.inputs import vocab

    if not vocab.llama2_model_path().is_file():
        pytest.skip("run `python -m ngbench vocab llama2` (the README's set-up does) to rebuild the Llama-2 vocabulary")
    monkeypatch.delenv("NGBENCH_LLAMA2_TOKENIZER", raising=False)
    tok = inputs.TOKENIZERS["llama2-spm"]()
    assert not tok.source.startswith("STAND-IN")
    # meta-llama/Llama-2-7b-hf ids, with BOS
    assert [*tok.prefix, *tok.encode("Hello world")] == [1, 15043, 3186]
    # llama.cpp's reference strings, with the ids the Hugging Face Llama-2 tokenizer gave for them
    cases = vocab.reference_cases(vocab.llama2_model_path().parent)
    assert len(cases) >= 40
    mismatched = [text for text, ids in cases if tok.encode(text) != ids]
    assert not mismatched, f"{len(mismatched)} of {len(cases)} reference strings differ, e.g. {mismatched[:2]}"


def test_sample_has_exactly_seq_len_ids_with_specials():
    tok = inputs.TOKENIZERS["bert-wordpiece-uncased"]()
    sample = tok.sample("the quick brown fox jumps over the lazy dog " * 20, 16)
    assert len(sample) == 16 and sample[0] == 101 and sample[-1] == 102
    assert tok.sample("too short", 16) is None


def test_llama2_without_its_vocabulary_uses_a_named_stand_in(monkeypatch, tmp_path):
    from ngbench.inputs import vocab

    monkeypatch.delenv("NGBENCH_LLAMA2_TOKENIZER", raising=False)
    monkeypatch.setattr(vocab, "llama2_model_path", lambda: tmp_path / "absent" / "tokenizer.model")
    tok = inputs.TOKENIZERS["llama2-spm"]()
    assert tok.source.startswith("STAND-IN") and "NGBENCH_LLAMA2_TOKENIZER" in tok.source
    assert [*tok.prefix, *tok.encode("Hello world")] == [1, 22557, 1526]  # Mistral's ids, as labeled
    monkeypatch.setenv("NGBENCH_LLAMA2_TOKENIZER", str(tmp_path / "missing.model"))
    with pytest.raises(inputs.InputError, match="missing.model"):
        inputs.TOKENIZERS["llama2-spm"]()


def test_text_batch_holds_distinct_real_articles():
    batch, prov = inputs.text_batch(SPECS["gpt2"], 3, 64)
    ids = batch["input_ids"]
    assert ids.shape == (3, 64) and ids.dtype == torch.long
    assert len(set(map(tuple, ids.tolist()))) == 3, "samples of a batch must differ"
    assert len(set(prov["sample_ids"])) == 3
    assert "gensim" in prov["source"]


def test_image_batch_uses_the_weights_transforms_on_distinct_photos():
    batch, prov = inputs.image_batch(SPECS["swin-t"], 4)
    x = batch["x"]
    assert x.shape == (4, 3, 224, 224)
    assert len(set(prov["sample_ids"])) == 4
    # normalized with ImageNet mean/std: roughly centred, not raw [0, 1] pixels
    assert x.min() < -0.5 and x.max() > 1.0
    assert not torch.equal(x[0], x[1])


def test_too_large_a_batch_is_a_clear_error():
    with pytest.raises(inputs.InputError, match="image_dir"):
        inputs.image_batch(SPECS["swin-t"], 64)


def test_user_paths_that_do_not_exist_name_the_key(tmp_path):
    with pytest.raises(inputs.InputError, match="inputs.image_dir"):
        inputs.image_batch(SPECS["swin-t"], 1, image_dir=str(tmp_path / "nope"))
    with pytest.raises(inputs.InputError, match="inputs.wikitext"):
        inputs.text_batch(SPECS["gpt2"], 1, 8, wikitext=str(tmp_path / "nope.raw"))


def test_wikitext_file_is_split_into_articles(tmp_path):
    raw = tmp_path / "wiki.valid.raw"
    raw.write_text(
        " \n = Alpha = \n \n Alpha is a letter of the Greek alphabet . \n = = History = = \n More text . \n"
        " = Beta = \n \n Beta comes second in the alphabet , after alpha . \n"
    )
    arts = inputs.wikitext_articles(str(raw))
    assert [t for t, _ in arts] == ["Alpha", "Beta"]
    batch, prov = inputs.text_batch(SPECS["gpt2"], 2, 5, wikitext=str(raw))
    assert prov["sample_ids"] == ["Alpha", "Beta"] and batch["input_ids"].shape == (2, 5)


def test_save_load_round_trip_checks_sha(tmp_path):
    batch, prov = inputs.text_batch(SPECS["gpt2"], 1, 16)
    path = tmp_path / "bs1.pt"
    inputs.save(batch, prov, path)
    back, meta = inputs.load(path)
    assert torch.equal(back["input_ids"], batch["input_ids"]) and meta["sha256"]
    meta["sha256"] = "0" * 64
    (tmp_path / "bs1.json").write_text(json.dumps(meta))
    with pytest.raises(inputs.InputError, match="sha256"):
        inputs.load(path)
