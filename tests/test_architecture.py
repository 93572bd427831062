"""The package's layers and its one table of backends: what a new engineer relies on when adding a backend."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, jobs_by_rule

from ngbench import catalog, names, plan
from ngbench import table as optable
from ngbench.figures import specs
from ngbench.jobs import settings

PACKAGE = REPO / "ngbench"


def imported_modules(path: Path) -> set[str]:
    """Every ngbench module a file imports, at any depth of the file (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ngbench"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ngbench")}
    return found


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("traces", ("ngbench.backends", "ngbench.jobs", "ngbench.analysis", "ngbench.figures", "ngbench.catalog")),
        ("backends", ("ngbench.traces", "ngbench.jobs", "ngbench.analysis", "ngbench.figures", "ngbench.catalog")),
        ("analysis", ("ngbench.jobs", "ngbench.figures", "ngbench.backends")),
        ("figures", ("ngbench.jobs", "ngbench.backends", "ngbench.traces")),
    ],
)
def test_layers_never_point_back_up(layer, forbidden):
    for path in sorted((PACKAGE / layer).glob("*.py")):
        bad = sorted(m for m in imported_modules(path) if m.startswith(forbidden))
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_the_bottom_module_imports_nothing_of_ours():
    assert imported_modules(PACKAGE / "names.py") == set()


def test_every_catalog_entry_resolves_and_the_schema_knows_it():
    schema = yaml.safe_load((REPO / "ngbench/config.schema.yaml").read_text())
    blocks = schema["properties"]["backends"]["properties"]
    platform_enum = schema["properties"]["platforms"]["additionalProperties"]["properties"]["backends"]["items"]["enum"]
    assert set(platform_enum) == set(catalog.BACKENDS)
    for entry in catalog.BACKENDS.values():
        assert callable(entry.load_runner()) and callable(entry.load_normalizer())
        assert entry.settings in blocks, entry.name
        assert entry.trace_format in catalog.TRACE_FORMATS
        assert (REPO / entry.conda_env).is_file()
    variants = blocks["ort"]["properties"]["variants"]["items"]["enum"]
    assert set(variants) == {b.name for b in catalog.BACKENDS.values() if b.variant}


def test_no_rule_or_script_spells_a_backend_name():
    """Rules and scripts read the catalog; a backend's name appears in them only as data (the TensorRT engine
    rules read their own settings block, ``config["backends"]["trt"]``)."""
    pattern = {f'"{name}"' for name in catalog.BACKENDS} | {f"'{name}'" for name in catalog.BACKENDS}
    for path in [*sorted((REPO / "workflow/rules").glob("*.smk")), *sorted((REPO / "workflow/scripts").glob("*.py"))]:
        text = path.read_text().replace('config["backends"]["trt"]', "")
        assert not [p for p in pattern if p in text], path.name


def decisions_by_backend_name(path: Path) -> list[str]:
    """Where code decides by a backend's name: a comparison (``==``, ``in``) or a parameter default that
    spells one. Trace formats share two names with backends (ort, trt) and are compared as formats."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any("trace_format" in ast.unparse(side) for side in sides):
                continue
            spelled = [c.value for side in sides for c in ast.walk(side) if isinstance(c, ast.Constant)]
        elif isinstance(node, ast.FunctionDef):
            defaults = [*node.args.defaults, *node.args.kw_defaults]
            spelled = [d.value for d in defaults if isinstance(d, ast.Constant)]
        else:
            continue
        found += [f"{path.relative_to(REPO)}:{node.lineno}: {v!r}" for v in spelled if v in catalog.BACKENDS]
    return found


@pytest.mark.parametrize("where", ["analysis", "jobs", "figures", "backends", "../benchmarks", "."])
def test_no_module_decides_by_a_backend_name(where):
    """Analyses, jobs, figures, the CLI and the benchmarks read a backend's facts from the catalog (fused,
    quantized, builds_model, dispatch_floor, BASELINE, ...), never by comparing its name. Not checked: the
    catalog itself, the trace readers (``traces/``: one per format, labelling rows) and the taxonomy, whose
    ``kind`` names its name tables (torch, onnx, trt)."""
    paths = sorted((PACKAGE / where).glob("*.py"))
    assert paths
    skip = {"catalog.py", "taxonomy.py"}
    found = [hit for path in paths if path.name not in skip for hit in decisions_by_backend_name(path)]
    assert not found


def test_the_name_check_sees_a_decision_by_name(tmp_path):
    probe = PACKAGE / "analysis" / "_probe_by_name.py"
    try:
        probe.write_text('def f(backend, fallback="inductor"):\n    return backend in ("torch", "x")\n')
        assert [h.split(": ")[1] for h in decisions_by_backend_name(probe)] == ["'inductor'", "'torch'"]
    finally:
        probe.unlink()


def test_one_helper_answers_is_this_cuda():
    """`names.is_cuda` / `names.device_kind` are the one spelling of "is this a GPU platform"."""
    spelled = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "benchmarks").glob("*.py"), *(REPO / "workflow").rglob("*.smk")]:
        if path.name == "names.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if 'startswith("cuda")' in line or '== "cuda"' in line or "'cuda' ==" in line:
                spelled.append(f"{path.relative_to(REPO)}:{i}")
    assert not spelled


# -- a toy backend: one catalog entry, its runner and its normalizer -------------------------------------------------
TOY_EVENTS = [("aten::linear", "GEMM", 30.0), ("aten::gelu", "Activation", 10.0), ("aten::view", "Memory", 5.0)]
TOY_ITERATION_US = 50.0


def toy_runner(params, *, batch_size, files, trace_dir, latency_out, threads=None):
    """Writes a raw 'trace' of its own format: one JSON list of (op, us) per iteration."""
    trace_dir = Path(trace_dir)
    trace_dir.mkdir(parents=True)
    (trace_dir / "toy.json").write_text(json.dumps([[op, us] for op, _, us in TOY_EVENTS]))
    meta = {"platform": params["platform"], "device": params["device"], "backend": params["backend"],
            "model": params["model"]["name"], "batch_size": batch_size, "seq_len": None, "status": names.STATUS_OK,
            "run": {"latency": {"median_ms": TOY_ITERATION_US / 1e3}}}  # fmt: skip
    (trace_dir / names.META_FILE).write_text(json.dumps(meta))
    Path(latency_out).write_text(json.dumps({"status": names.STATUS_OK}))
    return meta


def toy_normalizer(files, labels):
    """Two iterations of the toy trace, each closed by an Idle row, built with the op table's row builder."""
    from ngbench import taxonomy as tax

    taxonomy = tax.load()
    (trace,) = files.traces
    events = json.loads(trace.read_text())
    cols: dict[str, list] = {c: [] for c in optable.COLUMNS}
    for it in range(2):
        rows = optable.OpRows()
        for op, us in events:
            group = taxonomy.op_group(op, "torch") or tax.OTHER
            rows.add(op, group=group, group_source="op", is_gemm=taxonomy.is_gemm(group), time_us=us, host_time_us=us)
        optable.append_iteration(cols, it, TOY_ITERATION_US, rows.columns)
    df = optable.frame(cols, device="cpu", **labels)
    return df, {"iterations": 2, "iteration_source": "toy", "time_basis": "toy host time"}


def test_a_toy_backend_is_one_entry_plus_its_runner_and_normalizer(tmp_path, monkeypatch):
    from ngbench import normalize
    from ngbench.analysis import shares

    toy = catalog.Backend(
        name="toy",
        label="Toy runtime",
        settings="torch",  # reuses a settings block: a new block would be one more schema entry
        devices=("cpu",),
        runner=f"{__name__}:toy_runner",
        normalizer=f"{__name__}:toy_normalizer",
        trace_format="toy",
        trace_glob="toy.json",
        constituent_kind="torch",
    )
    monkeypatch.setitem(catalog.BACKENDS, "toy", toy)
    config = settings.with_defaults({"models": {"swin-t": {"batch_sizes": [1]}}})
    assert plan.Run("cpu", "toy", "swin-t", 1) in plan.configured_runs(config)
    params = settings.run_params(config, "cpu", "toy", "swin-t")
    trace = tmp_path / "trace"
    catalog.get("toy").load_runner()(params, batch_size=1, files={}, trace_dir=trace, latency_out=tmp_path / "l.json")
    normalize.normalize_run(
        trace, tmp_path / "ops.parquet", platform="cpu", backend="toy", model="swin-t", batch_size=1
    )
    s, unknown = shares.of_run(tmp_path / "ops.parquet")
    groups = s[s.level == "group"].set_index("group")
    assert groups.loc["GEMM", "ms_median"] == pytest.approx(0.030)
    assert groups.loc["Idle", "ms_median"] == pytest.approx(0.005)
    assert groups["pct_mean"].sum() == pytest.approx(100.0)
    assert unknown.empty


# -- which runs each figure draws (the shipped config) -------------------------------------------------------------
SHIPPED = settings.with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))


def count_by_backend(runs):
    out: dict[str, int] = {}
    for r in runs:
        out[r.backend] = out.get(r.backend, 0) + 1
    return out


def test_each_figure_draws_only_its_runs():
    runs = plan.configured_runs(SHIPPED)
    # the 17 paper models; those with a second batch size in the registry give 23 eager runs
    drawn = plan.drawn_models(SHIPPED)
    assert len(drawn) == 17
    expected_eager = sum(len(settings.model_settings(SHIPPED, m)["batch_sizes"]) for m in drawn)
    assert count_by_backend(plan.figure_runs("fig6", SHIPPED, runs)) == {"torch": expected_eager}
    assert count_by_backend(plan.figure_runs("table4", SHIPPED, runs)) == {"torch": expected_eager}
    # fig1: gpt2-xl and swin-t at batch 1 only
    assert plan.figure_runs("fig1", SHIPPED, runs) == [
        plan.Run("cpu", "torch", "gpt2-xl", 1),
        plan.Run("cpu", "torch", "swin-t", 1),
    ]
    # fig7: gpt2-xl and llama2 (batch 1) under torch, ort, ort-opt
    assert count_by_backend(plan.figure_runs("fig7", SHIPPED, runs)) == {"torch": 2, "ort": 2, "ort-opt": 2}
    # fig8: swin-t (bs1, bs2), swin-b, detr (1, 2), segformer (1, 2) eager; Inductor at batch 1; no TensorRT here
    assert count_by_backend(plan.figure_runs("fig8", SHIPPED, runs)) == {"torch": 7, "inductor": 4}
    assert count_by_backend(plan.figure_runs("fig9", SHIPPED, runs)) == {"torch": 2, "torch-int8": 2}
    assert plan.figure_runs("table2", SHIPPED, runs) == []


def test_a_measured_run_without_its_op_table_or_shares_is_found(tmp_path):
    measured, whole, unmeasured = (plan.Run("cpu", "torch", m, 1) for m in ("a", "b", "c"))
    for run in (measured, whole):
        (tmp_path / plan.trace_dir(run)).mkdir(parents=True)
        (tmp_path / plan.trace_dir(run) / "meta.json").write_text("{}")
    for path in (plan.ops_path(whole), plan.shares_path(whole), plan.ops_path(measured)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    # a: measured, op table there, shares missing; b: whole; c: never measured (nothing to rebuild from)
    assert plan.unnormalized_runs([measured, whole, unmeasured], tmp_path) == [measured]


PLANNED = {  # a fresh checkout, the shipped config: jobs per rule (and backend) of `snakemake -n <target>`
    "figures/fig6.png": {"prepare_inputs": 23, "profile:torch": 23, "normalize_trace:torch": 23, "plot_fig6": 1},
    "figures/fig1.png": {"prepare_inputs": 2, "profile:torch": 2, "normalize_trace:torch": 2, "plot_fig1": 1},
    "figures/fig7.png": {"prepare_inputs": 2, "export_onnx": 2, "profile:torch": 2, "profile:ort": 2,
                         "profile:ort-opt": 2, "normalize_trace:torch": 2, "normalize_trace:ort": 2,
                         "normalize_trace:ort-opt": 2, "plot_fig7": 1},
    "figures/fig8.png": {"prepare_inputs": 7, "profile:torch": 7, "profile:inductor": 4, "normalize_trace:torch": 7,
                         "normalize_trace:inductor": 4, "plot_fig8": 1},
    "figures/table2.md": {"make_table2": 1},
    # a named target: the same jobs, plus its own (it lists the op tables and shares of fig6's runs)
    "fig6": {"prepare_inputs": 23, "profile:torch": 23, "normalize_trace:torch": 23, "plot_fig6": 1, "fig6": 1},
}  # fmt: skip


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> dict[str, dict[str, int]]:
    """Jobs per rule (and backend) that a dry run of each target in PLANNED plans, in a fresh folder with the
    shipped config (one Snakefile parse for all targets: tests/plan_targets.py)."""
    import re
    import shutil
    import subprocess
    import sys

    work = tmp_path_factory.mktemp("plan")
    shutil.copy(REPO / "config.yaml", work / "config.yaml")
    res = subprocess.run(
        [sys.executable, str(REPO / "tests/plan_targets.py"), str(work), *PLANNED],
        capture_output=True, text=True, timeout=300, cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out: dict[str, dict[str, int]] = {}
    for section in re.split(r"^== ", res.stdout + res.stderr, flags=re.M)[1:]:
        target, text = section.split("\n", 1)
        out[target] = jobs_by_rule(text)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", list(PLANNED))
def test_a_figure_plans_only_the_jobs_it_draws(target, planned):
    assert planned[target] == PLANNED[target]


def test_failures_name_the_job_that_failed():
    from ngbench.analysis import failures

    shares = pd.DataFrame(
        [
            {"platform": "cpu", "backend": "torch", "model": "a", "batch_size": 1, "status": "ok", "reason": ""},
            {"platform": "cpu", "backend": "torch", "model": "b", "batch_size": 2, "status": "failed",
             "reason": "ValueError: 32 is not divisible by 3\nmore"},
            {"platform": "cpu", "backend": "ort", "model": "b", "batch_size": 2, "status": "failed",
             "reason": "ONNX export: ValueError: 32 is not divisible by 3"},
            {"platform": "gpu", "backend": "trt", "model": "a", "batch_size": 1, "status": "skipped",
             "reason": "tensorrt is not installed"},
            {"platform": "cpu", "backend": "torch", "model": "c", "batch_size": 1, "status": "failed",
             "reason": "inputs: config inputs.image_dir: /x is not a directory of images"},
        ]
    )  # fmt: skip
    rows = failures.from_shares(shares).set_index(["platform", "backend", "model"])
    assert len(rows) == 4
    assert rows.loc[("cpu", "torch", "b"), "job"] == "profile"
    assert rows.loc[("cpu", "torch", "b"), "log"] == "logs/profile/cpu/torch/b/bs2.log"
    assert rows.loc[("cpu", "torch", "b"), "reason"] == "ValueError: 32 is not divisible by 3"  # first line
    assert rows.loc[("cpu", "ort", "b"), "log"] == "logs/export_onnx/b/bs2.log"
    assert rows.loc[("cpu", "torch", "c"), "job"] == "prepare_inputs"
    assert rows.loc[("gpu", "trt", "a"), "status"] == "skipped"


def test_a_cuda_measurement_without_a_gpu_is_named_before_anything_runs():
    config = {"platforms": {"cpu": {"device": "cpu"}, "gpu": {"device": "cuda"}}}
    planned = [("prepare_inputs", ""), ("profile", "cpu"), ("profile", "gpu"), ("normalize_trace", "gpu")]
    assert "platform(s) gpu: device cuda" in plan.absent_devices(config, planned, has_cuda=False)
    assert plan.absent_devices(config, planned, has_cuda=True) is None
    # imported results plan no measurement: only their figures and normalizations may run
    assert plan.absent_devices(config, [("normalize_trace", "gpu"), ("plot_fig6", "")], has_cuda=False) is None


@pytest.mark.slow
def test_the_gpu_smoke_plans_only_gpu_runs_and_stops_here_saying_there_is_no_gpu(tmp_path):
    """The smoke command pointed at config/gpu-smoke.yaml: a dry run plans the gpu platform's runs, energy and
    roofs and nothing of any other platform, no figure; a real run on this GPU-less machine stops before any
    job, naming the platform."""
    import re
    import shutil
    import subprocess
    import sys

    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    cmd = [sys.executable, "-m", "snakemake", "gpu_smoke", "--cores", "2", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(REPO / "config" / "gpu-smoke.yaml")]  # fmt: skip
    dry = subprocess.run([*cmd, "-n"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    out = dry.stdout + dry.stderr
    platforms = set(re.findall(r"\bplatform=([\w.-]+)", out))
    rules = set(re.findall(r"^(?:local)?rule (\w+):", out, re.M))
    assert platforms == {"gpu"}, platforms
    assert {"profile", "normalize_trace", "measure_energy", "measure_platform", "build_engine"} <= rules
    assert not any(r.startswith(("plot_", "make_")) for r in rules), rules
    real = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert real.returncode != 0 and "platform(s) gpu: device cuda, but no CUDA GPU is visible" in real.stderr
    assert not (tmp_path / "results").exists()  # stopped before any job


# -- the figure table makes the figure rules ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(specs.FIGURES))
def test_a_product_that_reads_the_papers_numbers_declares_them(name):
    """paper.yaml is a declared input of every product whose module reads it, so editing it reruns them."""
    spec = specs.FIGURES[name]
    module = PACKAGE / "figures" / f"{spec.make.partition(':')[0].rsplit('.', 1)[1]}.py"
    reads_paper = "paper.section(" in module.read_text()
    assert reads_paper == ("paper" in spec.files.values()), module.name
    assert set(spec.reads) <= set(specs.PER_RUN)
    assert callable(spec.load_make())


def test_every_figure_rule_comes_from_the_figure_table():
    """figures.smk spells no product: one rule per row of the table, each product a named target."""
    rules = (REPO / "workflow/rules/figures.smk").read_text()
    assert "figures/" not in rules and "rule:" in rules
    assert sorted(p.name for p in (REPO / "workflow/scripts").glob("*.py") if "fig" in p.name) == ["make_figure.py"]


# -- the package stays a package ---------------------------------------------------------------------------------
def test_bad_input_has_one_error_type():
    """Every exception class the package defines for bad input is an InputError (the CLI's one-line errors and
    the jobs' records catch that one type); the others say a device or library is absent (Unavailable) or
    are not about input."""
    not_input = {"Unavailable", "UpstreamFailed", "EnergyUnavailable", "TensorRTVersionError", "ExportMismatch"}
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.bases:
                found[node.name] = ({ast.unparse(b).split(".")[-1] for b in node.bases}, path.relative_to(REPO))
    errors = {name: v for name, v in found.items() if any(b.endswith(("Error", "Exception", "Unavailable"))
                                                            for b in v[0])}  # fmt: skip

    def is_input(name: str) -> bool:
        return name == "InputError" or any(is_input(b) for b in found.get(name, (set(),))[0])

    def is_unavailable(name: str) -> bool:
        return name == "Unavailable" or any(is_unavailable(b) for b in found.get(name, (set(),))[0])

    stray = sorted(f"{v[1]}: {name}" for name, v in errors.items()
                   if not (is_input(name) or is_unavailable(name) or name in not_input))  # fmt: skip
    assert not stray
    assert {"ClosureError", "RegistryError"} <= {n for n in errors if is_input(n)}


def test_no_module_reads_files_outside_the_package():
    """Package data is found beside the module that reads it; nothing climbs out of the package to the
    checkout (an installed copy has none) - user files come from the working directory or arguments."""
    climbing = []
    for path in PACKAGE.rglob("*.py"):
        depth = len(path.relative_to(PACKAGE).parts) - 1  # parents[depth] is the package itself
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith(".parents"):
                index = node.slice.value if isinstance(node.slice, ast.Constant) else None
                if index is None or index > depth:
                    climbing.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not climbing


def test_code_and_docs_point_at_nothing_outside_the_repository():
    """The design card and the developers' guide live outside this repository: code and comments do not send a
    reader to them (docs/design-notes.md says where the card is)."""
    pointing = []
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.yaml"), *(REPO / "workflow").rglob("*.*"),
                 REPO / "Snakefile", REPO / "config.yaml", *(REPO / "benchmarks").glob("*.py")]:  # fmt: skip
        text = path.read_text(errors="replace")
        pointing += [f"{path.relative_to(REPO)}: {name}" for name in ("DESIGN.md", "DEVELOPERS.md") if name in text]
    assert not pointing


def test_ci_lints_every_file_before_the_readmes_test_command():
    run = (REPO / ".ci/run").read_text().splitlines()
    lint = (REPO / ".ci/lint").read_text()
    readme_command = next(line for line in (REPO / "README.md").read_text().splitlines() if line.endswith("&& pytest"))
    assert run.index(".ci/lint") < run.index(readme_command)  # the README's command, verbatim, after the lint
    for step in ("ruff check .", "ruff format --check .", "snakefmt --check Snakefile workflow", "snakemake --lint"):
        assert step in lint, step
