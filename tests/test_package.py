"""The package as a user installs it: a wheel into a fresh virtual environment, run outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv

import pandas as pd
import pytest
from conftest import FIXTURES, REPO, normalized

pytestmark = pytest.mark.slow


def test_a_wheel_in_a_fresh_venv_normalizes_and_prints_shares(tmp_path):
    """pyproject.toml declares what `ngbench normalize` and `ngbench shares` import: the wheel, installed
    alone (its dependencies from the index, no torch, no snakemake), reads a fixture in a folder of its own."""
    source = tmp_path / "source"  # built from a copy: a build never writes into the checkout
    shutil.copytree(REPO / "ngbench", source / "ngbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", source], capture_output=True
    )
    assert built.returncode == 0, built.stderr.decode()[-2000:]
    (wheel,) = (tmp_path / "dist").glob("ngbench-*.whl")
    venv.create(tmp_path / "venv", with_pip=False)  # pip installs into it from outside (--python): seconds faster
    bin_dir = tmp_path / "venv" / "bin"
    install = [*pip, "--python", bin_dir / "python", "install", "-q", "--no-compile", wheel]
    installed = subprocess.run(install, capture_output=True, timeout=600)
    assert installed.returncode == 0, installed.stderr.decode()[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    trace = shutil.copy(FIXTURES / "torch-profiler" / "a100_alexnet.json.gz", work)
    ngbench = str(bin_dir / "ngbench")
    res = subprocess.run(
        [ngbench, "normalize", "--trace", trace, "--out", "ops.parquet"], cwd=work, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    from ngbench import table as optable

    here, _ = normalized("a100_alexnet.json.gz", model="a100_alexnet")
    optable.write(here, tmp_path / "here.parquet", run={})
    # the installed copy reads the trace as the checkout does
    pd.testing.assert_frame_equal(optable.read(work / "ops.parquet"), optable.read(tmp_path / "here.parquet"))
    shares = subprocess.run([ngbench, "shares", "ops.parquet"], cwd=work, capture_output=True, text=True)
    assert shares.returncode == 0, shares.stderr
    assert "GEMM" in shares.stdout and "a100_alexnet" in shares.stdout
    # the venv sees no torch and no checkout: the command ran on the declared dependencies alone
    probe = subprocess.run([bin_dir / "python", "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0
    where = subprocess.run([bin_dir / "python", "-c", "import ngbench; print(ngbench.__file__)"], cwd=work,
                           capture_output=True, text=True)  # fmt: skip
    assert str(tmp_path / "venv") in where.stdout
