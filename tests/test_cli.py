"""python -m ngbench normalize | shares | models, as a user runs them."""

import subprocess
import sys

import pandas as pd
from conftest import REPO

from ngbench import table as optable


def ngbench(*args):
    return subprocess.run(
        [sys.executable, "-m", "ngbench", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_normalize_a_users_gzipped_cuda_trace_with_a_marker(fixtures_dir, tmp_path):
    out = tmp_path / "alexnet.parquet"
    res = ngbench(
        "normalize",
        "--backend",
        "torch",
        "--trace",
        str(fixtures_dir / "torch-profiler" / "a100_alexnet.json.gz"),
        "--iteration-marker",
        r"\|measure\|forward\]$",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    df = optable.read(out)
    assert df.iteration.nunique() == 2
    optable.check(df)
    assert (df[df.op == optable.IDLE_OP].group == "Idle").all()

    shares = ngbench("shares", str(out))
    assert shares.returncode == 0, shares.stderr
    assert "GEMM" in shares.stdout and "Idle" in shares.stdout


def test_normalize_rejects_a_file_it_cannot_read(tmp_path):
    bad = tmp_path / "notatrace.json"
    bad.write_text("[1, 2, 3")
    res = ngbench("normalize", "--trace", str(bad), "--out", str(tmp_path / "x.parquet"))
    assert res.returncode == 1
    assert "notatrace.json" in res.stderr and "traceEvents" in res.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_models_lists_the_registry_as_csv():
    res = ngbench("models", "--format", "csv")
    assert res.returncode == 0, res.stderr
    from io import StringIO

    df = pd.read_csv(StringIO(res.stdout)).set_index("name")
    assert len(df) == 18 and {"swin-t", "vit-b", "gpt2", "mixtral", "llama3", "maskrcnn"} <= set(df.index)
    assert df.loc["vit-b", "parameters"] == 86_567_656  # torchvision's documented count
    assert list(df.columns[:4]) == ["paper_name", "task", "dataset", "source"]
