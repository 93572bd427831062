"""python -m ngbench normalize | shares | models, as a user runs them."""

import tempfile

import pandas as pd
from conftest import REPO, run_ngbench

from ngbench import table as optable


def ngbench(*args):
    return run_ngbench(*args, cwd=tempfile.mkdtemp(prefix="ngbench-cli-"))


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
    assert df.iteration.nunique() == 1  # the inner of two nested marker ranges
    optable.check(df)
    assert (df[df.op == optable.IDLE_OP].group == "Idle").all()

    shares = ngbench("shares", str(out))
    assert shares.returncode == 0, shares.stderr
    assert "GEMM" in shares.stdout and "Idle" in shares.stdout


def test_normalize_rejects_a_file_it_cannot_read(tmp_path):
    bad = tmp_path / "notatrace.json"
    bad.write_text("[1, 2, 3")
    res = ngbench("normalize", "--trace", str(bad), "--out", str(tmp_path / "x.parquet"))
    assert res.returncode == 2
    assert "notatrace.json" in res.stderr and "traceEvents" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_models_lists_the_registry_as_csv():
    from io import StringIO

    res = ngbench("models", "--format", "csv", "--no-params")
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(StringIO(res.stdout)).set_index("name")
    assert len(df) == 18 and {"swin-t", "vit-b", "gpt2", "mixtral", "llama3", "maskrcnn"} <= set(df.index)
    assert list(df.columns[:4]) == ["paper_name", "task", "dataset", "source"] and "parameters" not in df
    res = ngbench("models", "vit-b", "--format", "csv")  # counted on the meta device (every count: test_registry)
    counted = pd.read_csv(StringIO(res.stdout)).set_index("name")
    assert list(counted.index) == ["vit-b"] and counted.loc["vit-b", "parameters"] == 86_567_656  # torchvision's
    bad = ngbench("models", "vit-q")
    assert bad.returncode == 2 and "models ['vit-q']: not in the registry" in bad.stderr


def test_normalize_trtexec_exports(fixtures_dir, tmp_path):
    base = fixtures_dir / "tensorrt" / "mobilenet_qat"
    out = tmp_path / "trt.parquet"
    res = ngbench(
        "normalize",
        "--backend",
        "trt",
        "--trace",
        f"{base}.profile.json",
        "--layers",
        f"{base}.graph.json",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    df = optable.read(out)
    optable.check(df)
    assert len(df) == 74 and df.fused_ops.map(len).max() >= 3


def test_normalize_a_users_ort_profile_with_its_graphs(tmp_path):
    """An ORT profile made the way a user makes one (enable_profiling, ORT_ENABLE_ALL, optimized model saved)."""
    import onnxruntime as ort
    import torch

    from ngbench.backends import onnx_export

    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(approximate="tanh"), torch.nn.LayerNorm(8))
    onnx_path = tmp_path / "m.onnx"
    onnx_export.export(model.eval(), {"input": torch.randn(4, 8)}, onnx_path)
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    so.optimized_model_filepath = str(tmp_path / "m.opt.onnx")
    session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(3):
        session.run(None, {name: torch.randn(4, 8).numpy()})
    profile = session.end_profiling()
    out = tmp_path / "ort.parquet"
    res = ngbench(
        "normalize",
        "--backend",
        "ort-opt",
        "--trace",
        profile,
        "--onnx",
        str(onnx_path),
        "--optimized",
        str(tmp_path / "m.opt.onnx"),
        "--skip-runs",
        "1",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    df = optable.read(out)
    optable.check(df)
    assert df.iteration.nunique() == 2
    assert set(df[df.op == "LayerNormalization"].group) == {"Normalization"}
    assert set(df[df.module_type == "Linear"].group) == {"GEMM"}


def test_the_installed_command_is_the_cli():
    """`pip install .` installs `ngbench` (pyproject's console script) -> ngbench.cli:main, whose return
    value is the exit code."""
    import importlib
    import tomllib

    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["ngbench"]
    module, func = target.split(":")
    main = getattr(importlib.import_module(module), func)
    assert main(["models", "--no-params", "--format", "csv"]) == 0
    assert main(["normalize", "--trace", "/nonexistent.json", "--out", "/tmp/never.parquet"]) == 2


def test_normalize_names_a_side_file_that_is_not_there(fixtures_dir, tmp_path, capsys):
    """A flag naming a file the normalizer would read is checked first: a wrong path is one line naming the
    flag, never a table quietly left unattributed."""
    from ngbench.cli import main

    trace = str(fixtures_dir / "inductor" / "detr_masked_softmax" / "trace.0.json.gz")
    out = str(tmp_path / "ops.parquet")
    cases = {
        ("--inductor-artifacts", str(tmp_path / "absent")): "--inductor-artifacts",
        ("--inductor-artifacts", trace): "expected Inductor's artifact directory",
        ("--shapes", str(tmp_path / "shapes.json.gz")): "--shapes",
    }
    for flag, expected in cases.items():
        assert main(["normalize", "--backend", "inductor", "--trace", trace, *flag, "--out", out]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and expected in err and "\n" not in err, err
    assert not (tmp_path / "ops.parquet").exists()
