"""The study on a real SLURM cluster through Snakemake's executor plugin and our profile (profiles/slurm).

A one-node cluster on this machine: munged, slurmctld and slurmd from Debian's slurm-wlm (``.ci/run``
installs them), a slurm.conf written for localhost with no accounting (the plugin reads job status with
squeue; MinJobAge keeps finished jobs listed). The shared workflow study's configuration (conftest's
``study``) runs with ``snakemake --profile profiles/slurm`` up to the tiny GPT-2's PyTorch profile (the
measurement: one sbatch job; each more costs ~20 s of the plugin's status back-off); the job must have gone
through sbatch, and its trace must normalize to the structure of the same run in the local study.
Skipped where this is not root or the daemons or the plugin are missing. Marked slow.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, WORKFLOW_CONFIG

from ngbench import normalize
from ngbench import table as optable

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "slurmctld", "slurmd")
# Where SLURM's tools look for their configuration: the job-step plugin strips SLURM_* variables (SLURM_CONF
# included) before its nested srun, so the file must be at the compiled-in default, as on a real cluster.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
OURS = "# written by nongemm-bench tests/test_slurm.py for its one-node cluster; removed when it ends"
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the SLURM daemons need root (slurmd runs jobs as their user)"
    absent = [b for b in DAEMONS + CLIENTS if shutil.which(b) is None]
    if absent:
        return f"SLURM is not installed here (no {', '.join(absent)}; Debian: apt-get install slurm-wlm munge)"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (requirements-dev.txt)"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(OURS):  # ours: left by a killed run
        return f"{SYSTEM_CONF} exists: this machine has a SLURM configuration of its own, which the test leaves alone"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slurm_conf(root: Path) -> str:
    host = socket.gethostname()
    mem_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 - 1024
    return "\n".join(
        [
            "ClusterName=ngbench-test",
            f"SlurmctldHost={host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root}/munge/munge.socket",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/slurmctld.pid",
            f"SlurmdPidFile={root}/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd.log",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            # no cgroups, no accounting: runs in a container without systemd or slurmdbd
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "MinJobAge=3600",  # finished jobs stay visible to squeue: the plugin's status source here
            "ReturnToService=2",
            "MpiDefault=none",
            f"NodeName={host} CPUs={os.cpu_count()} RealMemory={mem_mb} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir()
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = SYSTEM_CONF
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f"{OURS}\n{_slurm_conf(root)}")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    m = root / "munge"
    subprocess.run(
        ["munged", f"--key-file={key}", f"--socket={m}/munge.socket", f"--pid-file={m}/munged.pid",
         f"--log-file={m}/munged.log", f"--seed-file={m}/seed", "--force"],
        check=True, env=env, timeout=30,
    )  # fmt: skip
    pids = {"munged": m / "munged.pid", "slurmctld": root / "slurmctld.pid", "slurmd": root / "slurmd.pid"}
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env, timeout=30)
        subprocess.run(["slurmd", "-f", str(conf)], check=True, env=env, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env).stdout
            if state.strip() == "idle":
                break
            time.sleep(1)
        else:
            pytest.fail(f"the one-node cluster never became idle: sinfo says {state!r}; see {root}/log")
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--user=root"], env=env, capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            try:
                os.kill(int(pids[name].read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)
        conf.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


RUN = "cpu/torch/tiny-gpt2/bs1"
TARGETS = [f"results/latency/{RUN}.json"]  # the profile job's outputs (its trace directory and latency)
# the node here has a few CPUs and GBs: the profile's cluster-sized requests are lowered on the command line
SMALL_NODE = [
    "--set-threads", "profile=1", "export_onnx=1", "measure_energy=1",
    "--set-resources", "profile:cpus_per_task=1", "profile:mem_mb=2000", "profile:runtime=20",
    "--default-resources", "mem_mb=2000", "runtime=20", "cpus_per_task=1",
]  # fmt: skip


def _snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    return subprocess.run([*cmd, *args], cwd=workdir, capture_output=True, text=True, timeout=900, env=env)


def test_the_study_runs_through_sbatch_like_it_runs_here(cluster, study, tmp_path):
    slurm_dir = tmp_path / "slurm"
    slurm_dir.mkdir()
    (slurm_dir / "config.yaml").write_text(yaml.safe_dump(WORKFLOW_CONFIG))
    # the input batch as the local study made it: the measurement jobs (profile, normalize) go through sbatch;
    # the plugin's status back-off (+10 s per check that finds nothing finished) makes each job cost ~20 s
    shutil.copytree(study / "results/inputs/tiny-gpt2", slurm_dir / "results/inputs/tiny-gpt2")
    started = time.monotonic()
    res = _snakemake(
        slurm_dir,
        *TARGETS,  # first: the options below take lists
        "--profile", str(REPO / "profiles/slurm"),
        "--slurm-no-account",
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",  # a one-node test cluster: no need to spare the controller
        "--slurm-keep-successful-logs",
        *SMALL_NODE,
        env=cluster,
    )  # fmt: skip
    wall = time.monotonic() - started
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # every job went through sbatch: slurm knows them (squeue keeps finished jobs for MinJobAge) and the
    # plugin kept a log per rule (the plugin puts rule and wildcards in each job's comment: %k)
    listed = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%T|%k"], capture_output=True, text=True, env=cluster
    ).stdout.splitlines()
    rules = {"profile"}
    finished = [line.split("|", 1)[1] for line in listed if line.startswith("COMPLETED|")]
    assert {c.split("_wildcards_")[0].removeprefix("rule_") for c in finished} == rules, listed
    assert len(finished) == len(rules)  # one job of each
    logdir = slurm_dir / ".snakemake/slurm_logs"  # the plugin's: <rule>/<wildcards>/<slurm job id>.log
    logs = {p.relative_to(logdir).parts[0] for p in logdir.rglob("*.log")}
    assert {f"rule_{r}" for r in rules} <= logs, logs
    # the same run in the shared local study
    platform, backend, model, bs = RUN.split("/")
    ops = tmp_path / "ops.parquet"
    normalize.normalize_run(slurm_dir / "results/traces" / RUN, ops, platform=platform, backend=backend, model=model,
                            batch_size=int(bs.removeprefix("bs")))  # fmt: skip
    a, b = optable.read(ops), optable.read(study / f"results/ops/{RUN}.parquet")
    optable.check(a, source=str(ops))
    assert list(a.columns) == list(b.columns) and a.iteration.nunique() == b.iteration.nunique() == 2
    assert set(a.group) == set(b.group) and len(a) == len(b)  # the same ops, timed elsewhere
    assert list(a.op) == list(b.op)
    print(f"SLURM study: {wall:.0f} s wall for {len(finished)} sbatch jobs")
