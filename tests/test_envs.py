"""envs/*.yaml parse (conda cannot run here) and agree with the requirements files."""

import re

import yaml
from conftest import REPO


def reqs(path):
    out = {}
    for line in (REPO / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
        out[name] = line.replace(" ", "")
    return out


def pip_section(env):
    deps = env["dependencies"]
    pips = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pips, "env has no pip section"
    return {re.split(r"[<>=!~\[ ]", p, maxsplit=1)[0].lower(): p.replace(" ", "") for p in pips[0]}


def test_torch_env_matches_requirements_exactly():
    env = yaml.safe_load((REPO / "envs" / "torch.yaml").read_text())
    assert env["name"] and "python=3.11" in env["dependencies"]
    assert pip_section(env) == reqs("requirements.txt")


def test_trt_env_is_kept_apart_from_torch():
    env = yaml.safe_load((REPO / "envs" / "trt.yaml").read_text())
    pips = pip_section(env)
    assert "tensorrt-cu12" in pips and pips["tensorrt-cu12"].endswith(",<12")  # the supported 10.x-11.x range
    assert pips["cuda-python"].endswith(",<13")  # the CUDA major of the tensorrt-cu12 wheels
    assert "torch" not in pips, "the TensorRT stack must not pull the torch stack (their CUDA libraries differ)"


def test_torch_pins_are_the_ones_this_study_uses():
    r = reqs("requirements.txt")
    assert r["torch"] == "torch==2.14.1" and r["torchvision"] == "torchvision==0.29.1"


def test_every_rule_uses_an_env_that_exists():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'"\.\./\.\./(envs/[^"]+)"', smk.read_text()):
            assert (REPO / env).is_file(), f"{smk.name} names missing {env}"


def test_trt_env_matches_its_requirements_file():
    env = yaml.safe_load((REPO / "envs" / "trt.yaml").read_text())
    assert pip_section(env) == reqs("requirements-trt.txt")


def test_trt_jobs_run_without_torch(tmp_path):
    """The TensorRT rules run in envs/trt.yaml, which has no torch: the job must reach TensorRT (and here
    record that it is missing), never fail on an import of torch."""
    import json
    import subprocess
    import sys

    (tmp_path / "bs1.fp16.plan.json").write_text(json.dumps({"status": "ok"}))
    (tmp_path / "modules.json").write_text("{}")
    import numpy as np

    np.savez(tmp_path / "feed.npz", x=np.zeros((1, 3), dtype=np.float32))
    code = f"""
import sys, json
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
sys.path.insert(0, {str(REPO)!r})
from ngbench.jobs import run_trt
params = {{"platform": "gpu", "device": "cuda", "backend": "trt", "model": {{"name": "swin-t", "seq_len": None}},
    "settings": {{"warmup": 1, "iterations": 1, "profile_iterations": 1, "cuda_graph": True}}, "options": {{}},
    "on_error": "record"}}
files = {{"batch": {str(tmp_path / "in.pt")!r}, "plan": {str(tmp_path / "bs1.fp16.plan")!r},
    "modules": {str(tmp_path / "modules.json")!r}, "feed": {str(tmp_path / "feed.npz")!r}}}
meta = run_trt.run(params, batch_size=1, files=files, trace_dir={str(tmp_path / "trace")!r},
    latency_out={str(tmp_path / "lat.json")!r})
print(json.dumps(meta["reason"]))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    reason = json.loads(res.stdout.strip().splitlines()[-1])
    assert "tensorrt is not installed" in reason, reason


def test_gpu_requirements_replace_the_cpu_onnxruntime():
    lines = [ln.split("#")[0].strip() for ln in (REPO / "requirements-gpu.txt").read_text().splitlines()]
    pins = [ln for ln in lines if ln]
    assert pins == ["onnxruntime-gpu[cuda,cudnn]>=1.31"]  # CUDA 13 wheels, as torch 2.14's
    assert "pip uninstall -y onnxruntime" in (REPO / "requirements-gpu.txt").read_text()
    assert "requirements-gpu.txt" in (REPO / "README.md").read_text()


def test_versions_found_under_the_gpu_distributions_names(monkeypatch):
    """onnxruntime-gpu and tensorrt-cu12 install the onnxruntime and tensorrt imports: record their versions."""
    from importlib import metadata

    from ngbench import env

    installed = {"onnxruntime-gpu": "1.23.2", "tensorrt-cu12": "10.13.3.9", "torch": "2.14.1"}

    def version(dist):
        if dist not in installed:
            raise metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(env.metadata, "version", version)
    got = env.versions()
    assert got["onnxruntime"] == "1.23.2" and got["tensorrt"] == "10.13.3.9" and got["torch"] == "2.14.1"
    assert got["bitsandbytes"] is None
