import copy
import functools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HYPOTHESIS_SEED = pytest.StashKey[object]()
UNTRACKED_AT_START = pytest.StashKey[set]()
STUDY_RUN = pytest.StashKey[dict]()
WROTE_INTO_REPO = pytest.StashKey[list]()
# real profiler outputs published by other projects (attribution in tests/fixtures/README.md)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_ngbench(*args: str, cwd: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """This tree's ``ngbench`` command (``PYTHONPATH`` set to the checkout, so never an installed copy), run in
    ``cwd``: a test's own temporary folder, so a relative ``--out`` never writes into the repository."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "ngbench", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@functools.cache
def _normalized(name: str, options: tuple) -> tuple:
    from ngbench.traces import kineto

    return kineto.normalize(FIXTURES / "torch-profiler" / name, **dict(options))


def normalized(name: str, **options):
    """(op table, info) of a Kineto fixture, normalized once per session (HTA's 35 MB trace takes seconds);
    each caller gets its own copy."""
    df, info = _normalized(name, tuple(sorted(options.items())))
    return df.copy(), copy.deepcopy(info)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def tiny_gpt2(seq_len: int, batch_sizes: list[int], width: int) -> dict:
    """A registry entry for a 2-layer GPT-2 with the real vocabulary (so real tokenized text feeds it)."""
    return {
        "source": "transformers",
        "task": "text-generation",
        "dataset": "wikitext",
        "model_class": "GPT2LMHeadModel",
        "config_class": "GPT2Config",
        "layers_key": "n_layer",
        "input": {"kind": "text", "tokenizer": "gpt2"},
        "seq_len": seq_len,
        "batch_sizes": batch_sizes,
        "config": {
            "vocab_size": 50257,
            "n_positions": 64,
            "n_embd": width,
            "n_layer": 2,
            "n_head": 2,
            "activation_function": "gelu_new",
        },
    }


def pytest_configure(config):
    """One random seed per run for the property tests (tests/test_robustness.py), so every run tries new
    damaged files; it is printed in the header and, after failures, in the summary."""
    from hypothesis import core

    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
        core.global_force_seed = seed
    config.stash[HYPOTHESIS_SEED] = seed


def _untracked() -> set[str]:
    res = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True
    )
    return set(res.stdout.splitlines()) if res.returncode == 0 else set()


def pytest_sessionstart(session):
    session.config.stash[UNTRACKED_AT_START] = _untracked()


def pytest_sessionfinish(session, exitstatus):
    """Stop a background study still running (an interrupted session), and fail the run when a test wrote
    into the checkout."""
    for work, proc, _ in session.config.stash.get(STUDY_RUN, {}).values():
        if proc.poll() is None:
            proc.kill()
        elif exitstatus == 0:
            shutil.rmtree(work, ignore_errors=True)  # kept after failures, to look at
    _repository_untouched(session)


def _repository_untouched(session):
    """No test writes into the checkout (a relative ``--out``, a CLI run in the repository): new untracked
    files fail the run, named."""
    new = sorted(_untracked() - session.config.stash.get(UNTRACKED_AT_START, set()))
    if new:
        session.config.stash[WROTE_INTO_REPO] = new
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header(config):
    seed = config.stash[HYPOTHESIS_SEED]
    return f"hypothesis seed {seed} (the same damaged examples again: pytest --hypothesis-seed={seed})"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    new = config.stash.get(WROTE_INTO_REPO, [])
    if new:
        terminalreporter.write_line(f"FAILED: tests wrote into the repository: {', '.join(new[:10])}", red=True)
    if exitstatus != 0 or new:
        seed = config.stash[HYPOTHESIS_SEED]
        terminalreporter.write_line(f"hypothesis seed of this run: {seed} (pytest --hypothesis-seed={seed} reruns it)")


def pytest_collection_modifyitems(config, items):
    """Tests that time this machine (``quiet_machine``) run just before the first test of the background
    study, when it has finished; tests marked ``gpu`` need a CUDA GPU: skipped here with that reason
    (``pytest -m gpu`` on a GPU machine)."""
    background = set(BACKGROUND)
    first_study = next((i for i, item in enumerate(items) if background & set(getattr(item, "fixturenames", ()))), None)
    if first_study is not None:
        quiet = [item for item in items[:first_study] if "quiet_machine" in getattr(item, "fixturenames", ())]
        rest = [item for item in items if item not in quiet]
        at = rest.index(items[first_study])
        items[:] = rest[:at] + quiet + rest[at:]
    if not any("gpu" in item.keywords for item in items):
        return
    try:
        import torch

        have = torch.cuda.is_available()
        why = f"no CUDA GPU visible (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})"
    except ImportError:
        have, why = False, "torch is not installed"
    if not have:
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=why))


# -- the workflow study every workflow-level test shares (tests/test_workflow.py, tests/test_slurm.py) --------
_TINY_GPT2 = tiny_gpt2(seq_len=32, batch_sizes=[1, 2], width=64)
WORKFLOW_CONFIG = {
    "platforms": {"cpu": {"device": "cpu"}},
    "models": {"tiny-gpt2": None, "swin-t": {"batch_sizes": [1]}, "broken": None},
    "custom_models": {
        "tiny-gpt2": _TINY_GPT2,
        "broken": {**_TINY_GPT2, "batch_sizes": [1], "config": {**_TINY_GPT2["config"], "n_head": 3}},
    },
    "backends": {
        "torch": {"warmup": 1, "iterations": 3, "profile_iterations": 2, "threads": 1},
        "ort": {
            "models": ["tiny-gpt2", "broken"],
            "batch_sizes": [1],
            "warmup": 1,
            "iterations": 3,
            "profile_iterations": 2,
        },
        # one compile (~30 s on 2 cores) is enough to test Inductor's path
        "inductor": {
            "models": ["tiny-gpt2"],
            "batch_sizes": [1],
            "warmup": 1,
            "iterations": 3,
            "profile_iterations": 2,
            "threads": 1,
        },
    },
    "figures": {"fig7": {"models": ["tiny-gpt2", "broken"]}, "fig8": {"models": ["tiny-gpt2"]}},
    "comparisons": {"tiny-eager-vs-inductor": {"runs": ["cpu/torch/tiny-gpt2/bs1", "cpu/inductor/tiny-gpt2/bs1"]}},
    # energy, kept short where a counter is readable (no sleeping seconds per model); n/a elsewhere
    "energy": {"warmup": 1, "inferences": 2, "repeats": 2, "idle_s": 0.1, "min_block_s": 0.0, "resolution_s": 0.0},
    # the horizon's roofs, kept short: L1 to a few MiB, small GEMMs
    "platform_limits": {"max_working_set_mib": 8, "min_time_ms": 2, "trials": 1, "max_gemm_n": 512},
}


def snakemake_command(workdir, *args) -> list[str]:
    snakefile = str(REPO / "Snakefile")
    return [sys.executable, "-m", "snakemake", "--snakefile", snakefile, "--directory", str(workdir), *args]


def snakemake(workdir, *args):
    return subprocess.run(snakemake_command(workdir, *args), cwd=workdir, capture_output=True, text=True, timeout=1200)


def eager_only(**overrides) -> dict:
    """A small study of the workflow study's models under PyTorch eager alone (no export, compile, int8 or
    energy), with the study's short roof settings."""
    config = {
        "platforms": {"cpu": {"device": "cpu"}},
        "custom_models": WORKFLOW_CONFIG["custom_models"],
        "backends": {
            "torch": WORKFLOW_CONFIG["backends"]["torch"],
            "ort": {"enabled": False},
            "inductor": {"enabled": False},
            "torch-int8": {"enabled": False},
        },
        "energy": {"enabled": False},
        "platform_limits": WORKFLOW_CONFIG["platform_limits"],
    }
    return {**config, **overrides}


def keep_going_config() -> dict:
    """The keep-going study: tiny GPT-2 and the broken model under PyTorch eager alone, ``on_error: fail``."""
    return eager_only(
        models={"tiny-gpt2": {"batch_sizes": [1]}, "broken": None},
        figures={"fig1": {"models": ["tiny-gpt2"]}, "fig8": {"models": ["tiny-gpt2"]}},
        on_error="fail",
    )


def jobs_by_rule(dry_run_log: str) -> dict[str, int]:
    """Jobs per rule (``rule:backend`` where the job has a backend wildcard) in a dry run's log."""
    jobs: dict[str, int] = {}
    for block in re.split(r"^(?:local)?rule ", dry_run_log, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        backend = re.search(r"^\s+wildcards:.*\bbackend=([\w.-]+)", block, re.M)
        key = f"{rule}:{backend.group(1)}" if backend else rule
        jobs[key] = jobs.get(key, 0) + 1
    return jobs


# studies Snakemake runs in the background from collection on, by the fixture that waits for each
BACKGROUND = {
    "study": (lambda: WORKFLOW_CONFIG, ["--cores", "2"]),
    "keep_going_study": (keep_going_config, ["--cores", "2", "--keep-going"]),
}


def pytest_collection_finish(session):
    """Start each background study as soon as the tests that read it are collected: Snakemake runs it while
    the tests before them run; its fixture waits for it. Tests that time this machine ask for
    ``quiet_machine`` first, which waits for every one."""
    runs = {}
    for name, (config, args) in BACKGROUND.items():
        if not any(name in getattr(item, "fixturenames", ()) for item in session.items):
            continue
        work = Path(tempfile.mkdtemp(prefix=f"ngbench-{name}-"))
        (work / "config.yaml").write_text(yaml.safe_dump(config()))
        log = open(work / "snakemake.out", "w")  # noqa: SIM115 - the process writes it until the fixture waits
        proc = subprocess.Popen(snakemake_command(work, *args), cwd=work, stdout=log, stderr=subprocess.STDOUT)
        runs[name] = (work, proc, log)
    session.config.stash[STUDY_RUN] = runs


def _wait_for(config, name: str) -> tuple[Path, int] | None:
    started = config.stash.get(STUDY_RUN, {}).get(name)
    if started is None:
        return None
    work, proc, log = started
    try:
        code = proc.wait(timeout=1800)
    finally:
        log.close()
    return work, code


def _wait_for_study(config) -> Path | None:
    done = _wait_for(config, "study")
    if done is None:
        return None
    work, code = done
    assert code == 0, (work / "snakemake.out").read_text()[-6000:]
    return work


@pytest.fixture(scope="session")
def study(pytestconfig, tmp_path_factory):
    """The small study, run once per session by Snakemake as a user runs it (started in the background at
    collection). Tests read it or dry-run it; a test that changes results works on a copy (``copy_of_study``
    in test_workflow.py)."""
    work = _wait_for_study(pytestconfig)
    if work is None:  # not started at collection (the fixture was requested dynamically): run it now
        work = tmp_path_factory.mktemp("study")
        (work / "config.yaml").write_text(yaml.safe_dump(WORKFLOW_CONFIG))
        res = snakemake(work, "--cores", "2")
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work


@pytest.fixture(scope="session")
def keep_going_study(pytestconfig, tmp_path_factory):
    """(folder, exit code) of the keep-going study (``keep_going_config``), run in the background."""
    done = _wait_for(pytestconfig, "keep_going_study")
    if done is None:
        work = tmp_path_factory.mktemp("keep_going")
        (work / "config.yaml").write_text(yaml.safe_dump(keep_going_config()))
        done = work, snakemake(work, "--cores", "2", "--keep-going").returncode
    return done


@pytest.fixture
def quiet_machine(pytestconfig):
    """For tests that time this machine: every background study that was started has finished."""
    for name in BACKGROUND:
        _wait_for(pytestconfig, name)
