"""Pack what config/gpu-smoke.yaml needs on a GPU machine that has no network but has a PyTorch stack.

    python benchmarks/gpu_bundle.py [--present PACKAGES.txt] [--out gpu-bundle] [--limit-mib 64]
    # on the GPU machine, from the repository root:
    bash gpu-bundle/run.sh

Such a machine (a lent GPU box, a cluster node behind a firewall) has torch, torchvision, transformers,
scikit-image, matplotlib/seaborn, onnx and onnxruntime already; what the smoke study needs beyond them is
small: snakemake and its dependencies, msgspec, ijson, jsonschema, plus two data files that otherwise come
from packages (GPT-2's BPE vocabulary from openai-whisper, Wikipedia text from gensim), carried as files.
``--present`` lists the packages already there (one name per line; default benchmarks/gpu-present.txt, the
lent H200's image as read on 2026-11-17), and their wheels are left out. The bundle must fit one transfer
(``--limit-mib``): bitsandbytes (LLM.int8) is ~100 MB alone, so it is not in it and the smoke study's
torch-int8 job is skipped with that reason unless bitsandbytes is installed there by other means.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# what the smoke's jobs import beyond the target's stack: the workflow, the trace readers, and llama-models
# (Llama-3's tokenizer: without it every llama3 and LLM.int8 run fails at its inputs)
NEEDS = ["snakemake", "msgspec", "ijson", "jsonschema", "llama-models"]
# libraries whose version changes what a study measures or reads: the target's are compared with ours
COMPARED = ["torch", "transformers", "pandas", "pyarrow", "numpy", "onnx", "onnxruntime"]
PLATFORM = ["--python-version", "3.12", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64"]
PLATFORM += ["--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", "--platform", "any"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: list[str]) -> dict[str, str]:
    """project -> version of ``names`` and everything they require (as installed here, markers evaluated for
    Python 3.12 on Linux), from this environment's metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement

    env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "extra": ""}  # fmt: skip
    out: dict[str, str] = {}
    todo = list(names)
    while todo:
        name = canonical(todo.pop())
        if name in out:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed here: pip install -r requirements.txt first") from None
        out[name] = dist.version
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return out


def fetch(project: str, version: str, wheels: Path) -> None:
    """The project's wheel for the target (CPython 3.12, x86-64 Linux), else one built here from its sdist
    (projects that publish no wheel are pure Python)."""
    pip = [sys.executable, "-m", "pip"]
    spec = f"{project}=={version}"
    got = subprocess.run([*pip, "download", "-q", "--no-deps", *PLATFORM, "-d", str(wheels), spec], capture_output=True)
    if got.returncode:
        subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), spec], check=True)


def our_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in COMPARED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_wikitext(out: Path) -> int:
    """The Wikipedia articles the study reads from gensim's test data, in wiki.valid.raw's layout
    (``inputs.wikitext``), so the target needs no gensim. Returns the number of articles."""
    from ngbench import inputs

    articles = inputs.wiki_articles()
    out.write_text("".join(f"{text}\n\n" for _, text in articles))
    return len(articles)


RUN = """#!/usr/bin/env bash
# Install the carried wheels (no index: nothing is fetched) and run the GPU smoke study with the carried data.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m pip install --no-index --find-links "$here/wheels" {needs}
# the target's versions beside the ones the bundle was made with (a difference is said, not fatal)
python3 - "$here/versions.json" <<'PY'
import json, sys
from importlib import metadata
ours = json.load(open(sys.argv[1]))
for name, version in ours.items():
    try:
        there = metadata.version(name)
    except metadata.PackageNotFoundError:
        there = None
    print(f"{{name}}: here {{there}}, bundle made with {{version}}" + ("" if there == version else "  <- differs"))
PY
export NGBENCH_GPT2_VOCAB="$here/gpt2.tiktoken" HF_HUB_OFFLINE=1
# the gpu platform's runs only (no CPU run, figure or scorecard), then the checker and the GPU tests; each
# part runs even when one before it failed, and the script fails if any did
status=0
snakemake gpu_smoke --cores all --keep-going --configfile config/gpu-smoke.yaml \
    --config 'inputs={{wikitext: "'"$here"'/wiki.valid.raw"}}' "$@" || status=1
python3 benchmarks/gpu_check.py || status=1
python3 -m pytest -m gpu -q -rs tests/test_gpu.py || status=1
exit $status
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "gpu-bundle")
    ap.add_argument("--present", type=Path, default=REPO / "benchmarks" / "gpu-present.txt")
    ap.add_argument("--limit-mib", type=float, default=64.0)
    args = ap.parse_args()
    present = {canonical(ln.strip()) for ln in args.present.read_text().splitlines() if ln.strip() and ln[0] != "#"}
    shutil.rmtree(args.out, ignore_errors=True)
    wheels = args.out / "wheels"
    wheels.mkdir(parents=True)
    needed = closure(NEEDS)
    removed = sorted(p for p in needed if p in present)
    for project, version in sorted(needed.items()):
        if project not in present:
            fetch(project, version, wheels)
    from ngbench.inputs import _package_dir

    shutil.copy(_package_dir("whisper") / "assets" / "gpt2.tiktoken", args.out / "gpt2.tiktoken")
    articles = write_wikitext(args.out / "wiki.valid.raw")
    (args.out / "versions.json").write_text(json.dumps(our_versions(), indent=1))
    (args.out / "run.sh").write_text(RUN.format(needs=" ".join(NEEDS)))
    (args.out / "run.sh").chmod(0o755)
    kept = sorted(wheels.glob("*.whl"))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file()) / 2**20
    print(f"{args.out}: {len(kept)} wheels ({len(removed)} left out: already on the target), {articles} articles,")
    print(f"GPT-2 vocabulary, run.sh; {size:.1f} MiB (limit {args.limit_mib:g} MiB)")
    for w in kept:
        print(f"  {w.name} {w.stat().st_size / 2**20:.1f} MiB")
    return 0 if size <= args.limit_mib else 1


if __name__ == "__main__":
    raise SystemExit(main())
