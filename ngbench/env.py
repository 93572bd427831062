"""Environment and provenance metadata recorded with every result."""

from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "transformers", "numpy", "pandas", "pyarrow", "onnx", "onnxruntime", "tensorrt",
            "bitsandbytes")  # fmt: skip
# other distributions of the same import: the GPU wheels are published under their own names
DISTRIBUTIONS = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-cu13-bindings",
                 "tensorrt-cu12-bindings"),
}  # fmt: skip


PACKAGE_DIR = Path(__file__).resolve().parent


def git_state(repo: str | Path = PACKAGE_DIR) -> dict[str, Any]:
    """The commit (and whether tracked files differ from it) of the checkout ``repo`` lies in: by default the
    code that runs, wherever the study's working directory is; ``None`` for an installed package."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def versions() -> dict[str, str | None]:
    """The installed version of each of :data:`PACKAGES`, whichever distribution installed it (``tensorrt``
    from ``tensorrt-cu12``, ``onnxruntime`` from ``onnxruntime-gpu``); None when none did."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        out[name] = None
        for dist in DISTRIBUTIONS.get(name, (name,)):
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def torch_env() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda_build": torch.version.cuda,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if torch.cuda.is_available():
        idx = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        env.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
            driver=_nvidia_driver(),
        )
    return env


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except OSError:
        return None


def describe(config: dict | None = None, repo: str | Path = PACKAGE_DIR) -> dict[str, Any]:
    return {
        "git": git_state(repo),
        "config_hash": config_hash(config) if config is not None else None,
        "host": _platform.node(),
        "os": f"{_platform.system()} {_platform.release()}",
        "python": _platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "versions": versions(),
    }
