"""The workflow end to end on small models, run by Snakemake as a user runs it (marked slow)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, WORKFLOW_CONFIG, eager_only, jobs_by_rule, run_ngbench, snakemake

from ngbench import table as optable

pytestmark = pytest.mark.slow


def planned_jobs(workdir, *targets, by_backend=False):
    """Jobs a dry run plans, per rule (``by_backend``: per rule and backend, ``profile:ort``)."""
    res = snakemake(workdir, "-n", "--cores", "2", *targets)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    if not by_backend:
        stats = out.split("Job stats:")[1] if "Job stats:" in out else ""
        return {
            m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M) if m.group(1) != "total"
        }
    return jobs_by_rule(out)


def test_outputs_exist_and_close(study):
    for f in [
        "figures/fig6.png",
        "figures/fig6.csv",
        "figures/fig7.png",
        "figures/fig7.csv",
        "figures/fig8.png",
        "figures/fig8.csv",
        "figures/fig1.png",
        "figures/fig5.png",
        "figures/fig5.csv",
        "figures/fig9.png",
        "figures/table5.md",
        "figures/table5_all_rates.csv",
        "results/onnx/tiny-gpt2/bs1.onnx",
        "results/onnx/tiny-gpt2/bs1.modules.json",
        "figures/table4.csv",
        "figures/table4.md",
        "figures/table1.md",
        "figures/table1_ops.csv",
        "figures/table2.md",
        "results/shares.parquet",
        "results/unknown_ops.csv",
        "results/platform/cpu.json",
        "figures/fig10.png",
        "figures/fig10.csv",
        "figures/fig11.png",
        "figures/fig11.csv",
        "figures/horizon.md",
        "figures/horizon.csv",
        "figures/horizon_runs.csv",
        "figures/horizon_fusion.csv",
        "figures/compare/tiny-eager-vs-inductor.csv",
        "figures/compare/tiny-eager-vs-inductor.md",
        "figures/compare/tiny-eager-vs-inductor.png",
    ]:
        assert (study / f).is_file(), f
    for ops in (study / "results" / "ops").rglob("*.parquet"):
        df = optable.read(ops)
        optable.check(df, source=str(ops))  # closure holds on every table the workflow wrote
    df = optable.read(study / "results/ops/cpu/torch/tiny-gpt2/bs2.parquet")
    assert df.iteration.nunique() == 2 and (df.batch_size == 2).all() and (df.seq_len == 32).all()
    assert "Activation" in set(df.group)
    for backend in ("ort", "ort-opt"):
        df = optable.read(study / f"results/ops/cpu/{backend}/tiny-gpt2/bs1.parquet")
        assert df.iteration.nunique() == 2 and {"GEMM", "Activation", "Idle"} <= set(df.group)
    fused = optable.read(study / "results/ops/cpu/ort-opt/tiny-gpt2/bs1.parquet")
    assert fused.fused_ops.map(len).max() > 1  # ORT_ENABLE_ALL fused nodes carry what they replaced


def test_the_named_comparison_pairs_inductor_kernels_with_eager_modules(study):
    table = pd.read_csv(study / "figures/compare/tiny-eager-vs-inductor.csv")
    modules = table[(table.level == "module") & (table.run == "inductor")]
    assert set(table.baseline) == {"torch"} and len(modules)
    # every eager op row's time is in some unit: the baseline's units add up to its op time per iteration
    eager = optable.read(study / "results/ops/cpu/torch/tiny-gpt2/bs1.parquet")
    ops = eager[eager.group != "Idle"]
    per_iteration = ops.time_us.sum() / ops.iteration.nunique()
    assert modules.baseline_us.sum() == pytest.approx(per_iteration, rel=1e-9)
    assert set(modules.verdict) <= {"faster", "slower", "no clear change"}
    assert "Bonferroni" in (study / "figures/compare/tiny-eager-vs-inductor.md").read_text()


def test_the_cli_normalizes_an_inductor_run_as_the_workflow_does(study, tmp_path):
    """`ngbench normalize` goes through the catalog's normalizer: the run's directory, or its bare files with
    the artifacts named, give the workflow's own op table; without the artifacts its kernels stay
    unattributed, so the comparison can tell."""
    run = study / "results/traces/cpu/inductor/tiny-gpt2/bs1"
    workflow = optable.read(study / "results/ops/cpu/inductor/tiny-gpt2/bs1.parquet")
    traces = sorted(str(p) for p in run.glob("trace.*.json.gz"))
    labels = ["--platform", "cpu", "--model", "tiny-gpt2", "--batch-size", "1", "--seq-len", "32"]
    ways = {
        "directory": ["--trace", str(run)],
        "files": ["--trace", *traces, "--inductor-artifacts", str(run / "inductor"), *labels],
        "no artifacts": ["--trace", *traces, *labels],
    }
    tables = {}
    for way, args in ways.items():
        res = run_ngbench("normalize", "--backend", "inductor", *args, "--out", f"{len(tables)}.parquet", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        tables[way] = optable.read(tmp_path / f"{len(tables)}.parquet")
    pd.testing.assert_frame_equal(tables["directory"], workflow)
    pd.testing.assert_frame_equal(tables["files"], workflow)
    assert workflow.fused_ops.map(len).gt(0).any()  # kernels joined to the graph nodes they fuse
    assert not tables["no artifacts"].fused_ops.map(len).gt(0).any()


def test_fig7_compares_torch_and_ort_and_marks_failures(study):
    fig = pd.read_csv(study / "figures/fig7.csv")
    ok = fig[(fig.model == "tiny-gpt2") & (fig.batch_size == 1)]
    assert set(ok.backend) == {"torch", "ort", "ort-opt"} and (ok.status == "ok").all()
    # batch 2 ran under torch only (ORT's batch_sizes: [1]): its ORT cells are marked missing, not dropped
    bs2 = fig[(fig.model == "tiny-gpt2") & (fig.batch_size == 2)].set_index("backend")
    assert bs2.loc["torch"].status.eq("ok").all() and (bs2.loc[["ort", "ort-opt"]].status == "missing").all()
    broken = fig[fig.model == "broken"]
    assert set(broken.backend) == {"torch", "ort", "ort-opt"} and (broken.status == "failed").all()
    assert broken[broken.backend == "ort"].reason.item().startswith("ONNX export:")
    export_log = (study / "logs/export_onnx/broken/bs1.log").read_text()
    assert "divisible" in export_log  # the exporter's (here: the builder's) error is in the job's log


def test_every_result_records_where_it_came_from(study):
    meta = json.loads((study / "results/traces/cpu/torch/tiny-gpt2/bs1/meta.json").read_text())
    assert meta["status"] == "ok"
    assert meta["model_provenance"]["weights"] == "random" and meta["model_provenance"]["seed"] == 0
    assert meta["inputs"]["sample_ids"] and meta["inputs"]["sha256"]
    env = meta["environment"]
    assert env["versions"]["torch"] and env["cpu"] and env["torch"]["torch_threads"] == 1 and env["config_hash"]
    # the commit of the code that ran (this checkout, HEAD or an ancestor of it if a commit landed since),
    # not of the study's working directory (no repository: None)
    recorded = env["git"]["commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", recorded or "") and isinstance(env["git"]["dirty"], bool), env["git"]
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", recorded, "HEAD"], cwd=REPO)
    assert ancestor.returncode == 0, f"{recorded} is not this checkout's HEAD or an ancestor of it"
    assert meta["run"]["profiler_overhead_ratio"] > 0 and meta["attn_implementation"] == "eager"
    lat = json.loads((study / "results/latency/cpu/torch/tiny-gpt2/bs1.json").read_text())
    assert len(lat["samples_ms"]) == 3


def test_failed_model_is_marked_not_dropped(study):
    fig = pd.read_csv(study / "figures/fig6.csv")
    broken = fig[fig.model == "broken"]
    assert len(broken) == 1 and broken.status.item() == "failed" and "divisible" in broken.reason.item()
    assert set(fig.model) == {"tiny-gpt2", "swin-t", "broken"}
    assert "failed" in (study / "figures/table4.md").read_text()
    assert "cannot build" in (study / "figures/table2.md").read_text()  # table2 keeps the broken entry's row
    log = (study / "logs/profile/cpu/torch/broken/bs1.log").read_text()
    assert "divisible" in log


def test_changing_a_torch_setting_reruns_only_torch_jobs(study):
    assert planned_jobs(study) == {}
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["backends"]["torch"]["iterations"] = 4
    (study / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        jobs = planned_jobs(study)
    finally:
        (study / "config.yaml").write_text(yaml.safe_dump(WORKFLOW_CONFIG))
    n_runs = 2 + 1 + 1  # tiny-gpt2 bs1, bs2; swin-t bs1; broken bs1
    assert jobs.pop("prepare_inputs", 0) == 0
    assert jobs == {
        "profile": n_runs,
        "normalize_trace": n_runs,
        "aggregate_shares": 1,
        "plot_fig6": 1,
        "plot_fig7": 1,
        "plot_fig8": 1,
        "make_table5": 1,
        "plot_fig1": 1,
        "make_table4": 1,
        "make_scorecard": 1,
        "make_horizon": 1,  # the horizon draws every run of every backend
        "plot_fig10": 1,
        "plot_fig11": 1,
        "compare_runs": 1,  # the named comparison of tiny-gpt2 bs1 under eager and Inductor
        "all": 1,
    }  # not fig9 or table1: their models (figures.fig9.models, Table I's runs) are not in this config


def test_editing_the_papers_numbers_reruns_exactly_the_products_that_read_them(study, keep_going_study):
    """paper.yaml is an input of each product the figure table says reads it: an edit replans those and the
    scorecard (it reads their tables), nothing else. Snakemake compares the checksum of a newer small input,
    so the file is edited (a comment added), then restored byte for byte with its time; both studies have
    finished, so no other test sees the edit."""
    from ngbench.figures import paper

    assert planned_jobs(study) == {}
    original, before = paper.PAPER_PATH.read_bytes(), paper.PAPER_PATH.stat()
    try:
        paper.PAPER_PATH.write_bytes(original + b"# an edit\n")
        jobs = planned_jobs(study)
    finally:
        paper.PAPER_PATH.write_bytes(original)
        os.utime(paper.PAPER_PATH, ns=(before.st_atime_ns, before.st_mtime_ns))
    readers = {"plot_fig6", "plot_fig9", "make_table1", "make_table2", "make_table4", "make_table5"}
    assert jobs == dict.fromkeys(readers | {"make_scorecard", "all"}, 1)


def test_a_figures_models_rerun_that_figure_alone(study):
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["figures"]["fig7"]["models"] = ["tiny-gpt2"]
    (study / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        jobs = planned_jobs(study)
    finally:
        (study / "config.yaml").write_text(yaml.safe_dump(WORKFLOW_CONFIG))
    assert jobs == {"plot_fig7": 1, "all": 1}


def test_fusion_outputs_from_this_machines_runs(study):
    t5 = pd.read_csv(study / "figures/table5_all_rates.csv").set_index(["model", "batch_size", "backend"])
    ind = t5.loc[("tiny-gpt2", 1, "inductor")]
    assert ind.status == "ok" and ind.non_gemm_ms_after > 0 and 0 <= ind.fusion_rate <= 100
    assert t5.loc[("tiny-gpt2", 1, "trt")].status == "missing"  # no GPU here: the cell says why
    fig8 = pd.read_csv(study / "figures/fig8.csv")
    assert {"torch", "inductor", "trt"} == set(fig8.backend)
    meta = optable.read_run_metadata(study / "results/ops/cpu/inductor/tiny-gpt2/bs1.parquet")
    attributed = meta["normalize"]["inductor"]
    assert attributed["kernels"] > 0 and attributed["kernels_with_provenance"] == attributed["kernels"]
    assert meta["run"]["compile"]["compile_s"] > 0


def test_energy_is_na_here_with_the_reason(study):
    fig5 = pd.read_csv(study / "figures/fig5.csv", keep_default_na=False)  # "n/a" is a value here
    cpu = fig5[fig5.side == "cpu"]
    readable = False  # does this machine expose a readable RAPL package counter? (asked here, not via ngbench)
    for zone in Path("/sys/class/powercap").glob("intel-rapl:*"):
        try:
            readable |= zone.name.count(":") == 1 and (zone / "energy_uj").read_text().strip().isdigit()
        except OSError:
            pass
    assert len(cpu)
    if readable:
        assert (cpu.status == "ok").all(), cpu
    else:
        assert (cpu.status == "n/a").all() and cpu.reason.str.contains("powercap|RAPL|energy_uj").all(), cpu
    gpu = fig5[fig5.side == "gpu"]
    assert (gpu.reason == "no GPU on this platform").all()


def test_a_gpu_platform_plans_tensorrt_jobs(study):
    """No GPU here, but the DAG for one is right: engines from the ONNX export, then TRT profiles."""
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["platforms"]["gpu"] = {"device": "cuda"}
    cfg["backends"]["trt"] = {"models": ["tiny-gpt2"], "batch_sizes": [1]}
    (study / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        jobs = planned_jobs(study, by_backend=True)
    finally:
        (study / "config.yaml").write_text(yaml.safe_dump(WORKFLOW_CONFIG))
    assert jobs["build_engine"] == 1 and jobs["profile:trt"] == 1  # tiny-gpt2 bs1 on platform gpu
    assert jobs["convert_onnx_fp16"] == 1  # strongly typed fp16 engines build from the fp16 copy
    assert "export_onnx" not in jobs  # the existing exports are reused


def test_changing_an_ort_run_setting_reruns_ort_runs_not_exports(study):
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["backends"]["ort"]["iterations"] = 4
    (study / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        jobs = planned_jobs(study, by_backend=True)
    finally:
        (study / "config.yaml").write_text(yaml.safe_dump(WORKFLOW_CONFIG))
    n_runs = 1 + 1  # tiny-gpt2 bs1; broken bs1; under ort and ort-opt each
    # only ORT's runs, the union file and the one figure that draws ORT (fig7); no export, no other backend
    assert jobs == {
        "profile:ort": n_runs,
        "profile:ort-opt": n_runs,
        "normalize_trace:ort": n_runs,
        "normalize_trace:ort-opt": n_runs,
        "aggregate_shares": 1,
        "plot_fig7": 1,
        "make_scorecard": 1,  # it sets every run beside the paper's claims
        "make_horizon": 1,  # and the horizon every run against the roofs: not the roofs themselves
        "plot_fig10": 1,
        "plot_fig11": 1,
        "all": 1,
    }


def test_results_copied_from_another_machine_join_without_rerunning(copy_of_study):
    work = copy_of_study  # the shared study keeps only its own platform's rows
    src = work / "results/traces/cpu/torch/tiny-gpt2/bs1"
    dst = work / "results/traces/a100/torch/tiny-gpt2/bs1"
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    meta["platform"] = "a100"
    (dst / "meta.json").write_text(json.dumps(meta))
    jobs = planned_jobs(work)
    assert "profile" not in jobs and "prepare_inputs" not in jobs
    assert jobs["normalize_trace"] == 1 and jobs["aggregate_shares"] == 1
    res = snakemake(work, "--cores", "2", "results/shares.parquet")  # the union file; the figures follow it
    assert res.returncode == 0, res.stderr[-3000:]
    shares = pd.read_parquet(work / "results/shares.parquet")
    assert "a100" in set(shares.platform)


def test_report_bundles_figures_and_tables(study):
    res = snakemake(study, "--report", "report.zip")
    assert res.returncode == 0, res.stderr[-2000:]
    import zipfile

    names = zipfile.ZipFile(study / "report.zip").namelist()
    assert any(n.endswith("fig6.png") for n in names) and any(n.endswith("table4.md") for n in names)


def test_failures_csv_names_the_job_the_reason_and_the_log(study):
    failures = pd.read_csv(study / "results/failures.csv")
    assert set(failures.model) == {"broken"} and (failures.status == "failed").all()
    torch_row = failures[failures.backend == "torch"].iloc[0]
    assert torch_row.job == "profile" and "divisible" in torch_row.reason
    ort_rows = failures[failures.backend.isin(["ort", "ort-opt"])]
    assert len(ort_rows) == 2 and (ort_rows.job == "export_onnx").all()  # the export failed, not ORT
    for log in failures.log:
        assert (study / log).is_file(), log
        assert "divisible" in (study / log).read_text()


def test_an_archive_from_this_checkout_joins_another_and_reruns_nothing(study, tmp_path):
    from ngbench import archive

    archive.export("cpu", tmp_path / "cpu.tar.gz", results=study / "results")
    other = tmp_path / "laptop"
    other.mkdir()
    config = eager_only(platforms={"laptop": {"device": "cpu"}}, models={"tiny-gpt2": {"batch_sizes": [1]}})
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    archive.import_(tmp_path / "cpu.tar.gz", results=other / "results")
    dry = snakemake(other, "-n", "--cores", "2", "figures/fig6.png")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "platform=cpu" not in dry.stdout + dry.stderr  # nothing of the imported platform reruns
    res = snakemake(other, "--cores", "2", "figures/fig6.png")
    assert res.returncode == 0, res.stderr[-3000:]
    fig6 = pd.read_csv(other / "figures/fig6.csv")
    assert set(fig6.platform) == {"cpu", "laptop"} and set(fig6.model) == {"tiny-gpt2"}
    imported = optable.read(other / "results/ops/cpu/torch/tiny-gpt2/bs1.parquet")
    assert imported.equals(optable.read(study / "results/ops/cpu/torch/tiny-gpt2/bs1.parquet"))


def test_with_on_error_fail_keep_going_renders_every_figure_that_does_not_need_the_failure(keep_going_study):
    # conftest.keep_going_config: tiny-gpt2 bs1 and the broken model, eager, on_error: fail, --keep-going
    tmp_path, returncode = keep_going_study
    assert returncode != 0  # the broken model's profile job failed
    assert "divisible" in (tmp_path / "logs/profile/cpu/torch/broken/bs1.log").read_text()
    for made in ("figures/fig1.png", "figures/fig8.png", "figures/table2.md", "figures/fig5.png"):
        assert (tmp_path / made).is_file(), made  # none of these draws the broken run
    for blocked in ("figures/fig6.png", "figures/table4.md", "results/shares.parquet"):
        assert not (tmp_path / blocked).exists(), blocked


def _start(workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    return subprocess.Popen([*cmd, *args], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def _kill_when(proc, condition, timeout=300):
    import os
    import signal
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a power cut or an OOM kill would
            proc.wait()
            return True
        time.sleep(0.02)
    proc.kill()
    return False


@pytest.fixture
def copy_of_study(study, tmp_path):
    work = tmp_path / "study"
    shutil.copytree(study, work, symlinks=True)
    return work


def test_a_profile_killed_midway_asks_for_rerun_incomplete_and_redoes_it(copy_of_study):
    work = copy_of_study
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["backends"]["torch"]["profile_iterations"] = 5  # a profiling phase long enough to land in (after trace 2)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = work / "results/traces/cpu/torch/tiny-gpt2/bs1"
    target = "results/ops/cpu/torch/tiny-gpt2/bs1.parquet"
    proc = _start(work, "--cores", "1", target, "--forcerun", "profile")  # targets first: --forcerun takes a list
    killed = _kill_when(proc, lambda: (run_dir / "trace.2.json.gz").exists() and not (run_dir / "meta.json").exists())
    assert killed, "the profile finished before it could be killed"
    assert not (run_dir / "meta.json").exists()  # the run never recorded itself: it is not a result
    assert snakemake(work, "--unlock").returncode == 0  # the killed Snakemake left its lock, as after a power cut
    again = snakemake(work, "--cores", "1", target)
    assert again.returncode != 0 and "--rerun-incomplete" in again.stdout + again.stderr
    redo = snakemake(work, "--cores", "1", "--rerun-incomplete", target)
    assert redo.returncode == 0, redo.stderr[-3000:]
    df = optable.read(work / target)
    optable.check(df)
    assert df.iteration.nunique() == 5


def test_a_missing_op_table_is_rebuilt_by_the_study_and_its_named_targets(copy_of_study):
    work = copy_of_study
    ops = work / "results/ops/cpu/torch/tiny-gpt2/bs1.parquet"
    shares = work / "results/shares/cpu/torch/tiny-gpt2/bs1.parquet"
    fig6 = work / "figures/fig6.png"
    drawn_before = fig6.stat().st_mtime_ns
    # killed during a forced normalize_trace: Snakemake removed the old outputs before the job started
    proc = _start(work, "--cores", "1", str(shares.relative_to(work)), "--forcerun", "normalize_trace")
    assert _kill_when(proc, lambda: not ops.exists())
    assert not ops.exists() and not shares.exists()
    assert snakemake(work, "--unlock").returncode == 0
    # a present file target hides a missing intermediate (Snakemake's design): the workflow says so
    dry = snakemake(work, "-n", "--cores", "2", "figures/fig6.png")
    assert "1 measured run(s) lack their op table" in dry.stdout + dry.stderr
    # the named target rebuilds the op table and shares, then redraws fig6
    assert planned_jobs(work, "fig6") == {"normalize_trace": 1, "plot_fig6": 1, "fig6": 1}
    res = snakemake(work, "--cores", "2", "fig6")
    assert res.returncode == 0, res.stderr[-3000:]
    optable.check(optable.read(ops))
    assert shares.is_file() and fig6.stat().st_mtime_ns > drawn_before
    after = snakemake(work, "-n", "--cores", "2", "fig6")
    assert (
        "lack their op table" not in after.stdout + after.stderr and "Nothing to be done" in after.stdout + after.stderr
    )
    # the op table alone deleted (its shares still there): the whole study plans its rebuild too (the rebuild
    # itself is the one the fig6 target just made)
    ops.unlink()
    assert planned_jobs(work).get("normalize_trace") == 1


def test_the_scorecard_sets_every_claim_beside_ours(study):
    card = pd.read_csv(study / "figures/scorecard.csv", keep_default_na=False)
    assert len(card) == 26 and set(card.verdict) <= {"reproduced", "differs", "not measurable here"}
    by_id = card.set_index("id")
    assert by_id.loc["N1", "ours"] and by_id.loc["N1", "ours_compat"]  # measured here, under both metrics
    assert by_id.loc["N5", "verdict"] == "not measurable here" and "CUDA" in by_id.loc["N5", "detail"]
    assert by_id.loc["T2", "verdict"] != "not measurable here"  # Table II needs no run
    text = (study / "figures/scorecard.md").read_text()
    assert "Verdict rule." in text and "FrozenBatchNorm2d" in text
    compat = pd.read_parquet(study / "results/shares/cpu/torch/tiny-gpt2/bs1.compat.parquet")
    assert {"class", "group", "op"} <= set(compat.level)
    assert pd.read_parquet(study / "results/shares/cpu/ort/tiny-gpt2/bs1.compat.parquet").empty
    trust = pd.read_csv(study / "results/trust.csv")
    assert list(trust.columns) == ["platform", "backend", "model", "batch_size", "check", "reason"]
