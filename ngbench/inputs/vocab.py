"""Set-up helper: rebuild the Llama-2 SentencePiece model from the vocabulary llama.cpp ships.

No installable package ships Llama-2's ``tokenizer.model``; the llama-cpp-python sdist on PyPI carries
llama.cpp's vocab-only ``ggml-vocab-llama-spm.gguf`` (the vocabulary of meta-llama/Llama-2-7b-hf, with
reference ids). ``python -m ngbench vocab llama2`` downloads that sdist with pip (set-up time, never while
the study runs), extracts the GGUF and writes ``tokenizer.model`` from it, using mistral-common's
SentencePiece model (the same trainer and normalizer settings) as the template. The study then finds it.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "llama-cpp-python==0.3.36"
GGUF_MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
# relative to the working directory: the checkout, where the README's set-up runs `ngbench vocab llama2`
DEFAULT_DIR = Path("resources") / "tokenizers" / "llama2"


def llama2_model_path() -> Path:
    return DEFAULT_DIR / "tokenizer.model"


def rebuild_llama2(gguf_path: str | Path, out: str | Path) -> Path:
    """Write a SentencePiece ``tokenizer.model`` holding the pieces, scores and types of ``gguf_path``."""
    import mistral_common
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as pb

    fields = GGUFReader(str(gguf_path)).fields
    tokens = [bytes(fields["tokenizer.ggml.tokens"].parts[i]).decode() for i in fields["tokenizer.ggml.tokens"].data]
    scores = [float(fields["tokenizer.ggml.scores"].parts[i][0]) for i in fields["tokenizer.ggml.scores"].data]
    types = [int(fields["tokenizer.ggml.token_type"].parts[i][0]) for i in fields["tokenizer.ggml.token_type"].data]
    template = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    model = pb.ModelProto()
    model.ParseFromString(template.read_bytes())
    del model.pieces[:]
    for token, score, kind in zip(tokens, scores, types):
        piece = model.pieces.add()
        piece.piece, piece.score, piece.type = token, score, kind
    model.trainer_spec.ClearField("input")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model.SerializeToString())
    return out


def fetch_llama2(out: str | Path | None = None, force: bool = False) -> Path:
    """Download the llama-cpp-python sdist (not built), extract the Llama-2 vocab GGUF, rebuild the model.
    Does nothing when the model is already there (unless ``force``)."""
    out = Path(out) if out else llama2_model_path()
    if out.is_file() and not force:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", tmp],
            check=True,
        )
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            members = {m.name.rsplit("models/", 1)[-1]: m for m in tar.getmembers() if GGUF_MEMBER in m.name}
            for name, member in members.items():
                tar.extract(member, tmp, filter="data")
                if name.endswith((".inp", ".out")):  # llama.cpp's reference strings and ids, kept for tests
                    out.parent.mkdir(parents=True, exist_ok=True)
                    (out.parent / name).write_bytes((Path(tmp) / member.name).read_bytes())
            gguf_path = Path(tmp) / members[Path(GGUF_MEMBER).name].name
            return rebuild_llama2(gguf_path, out)


def reference_cases(directory: str | Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's tokenizer test cases beside a rebuilt model: (text, ids from the HF tokenizer)."""
    directory = Path(directory)
    inp = directory / (Path(GGUF_MEMBER).name + ".inp")
    out = directory / (Path(GGUF_MEMBER).name + ".out")
    if not (inp.is_file() and out.is_file()):
        return []
    texts = inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    ids = [[int(t) for t in line.split()] for line in out.read_text().split("\n")]
    return list(zip(texts, ids))
