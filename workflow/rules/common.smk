import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import min_version, validate

min_version("9.0")

# The ngbench package lives beside the Snakefile (scripts find it through workflow/scripts/_pkg.py).
sys.path.insert(0, workflow.basedir)

from ngbench import catalog, names, plan, registry, taxonomy  # noqa: E402
from ngbench.figures import paper, scorecard, specs  # noqa: E402
from ngbench.jobs import settings  # noqa: E402

validate(config, str(settings.SCHEMA_PATH), set_default=True)
if config["only_models"] is not None:
    unknown = sorted(set(config["only_models"]) - set(config["models"]))
    if unknown:
        raise ValueError(
            f"only_models: {unknown} are not under models: ({sorted(config['models'])})"
        )
    config["models"] = {m: config["models"][m] for m in config["only_models"]}

# The Llama-2 vocabulary the README's set-up rebuilt in this checkout, for jobs whatever their working directory
LLAMA2_VOCAB = (
    Path(workflow.basedir) / "resources" / "tokenizers" / "llama2" / "tokenizer.model"
)
if LLAMA2_VOCAB.is_file():
    os.environ.setdefault("NGBENCH_LLAMA2_TOKENIZER", str(LLAMA2_VOCAB))

PLATFORMS = sorted(config["platforms"])
CUDA_PLATFORMS = [
    p for p in PLATFORMS if names.is_cuda(config["platforms"][p]["device"])
]
# package data files that are inputs of rules (the package beside the Snakefile, wherever the working directory is)
TAXONOMY_FILE = str(taxonomy.TAXONOMY_PATH)
REGISTRY_FILE = str(registry.REGISTRY_PATH)
PAPER_FILE = str(paper.PAPER_PATH)
# A measurement takes every core it is given (Snakemake caps a rule's threads at --cores), so no other job
# shares the machine while it runs.
MEASUREMENT_THREADS = 1024
SAFE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # the schema's name pattern: no wildcard can climb out of results/


wildcard_constraints:
    bs=r"\d+",
    model=SAFE_NAME,
    platform=SAFE_NAME,
    backend="|".join(catalog.BACKENDS),


# -- which runs exist ------------------------------------------------------------------------------------------
CONFIGURED_RUNS = plan.configured_runs(config)


def copied_in_runs():
    """Runs whose raw traces are on disk for platforms this machine does not run (copied in)."""
    found = glob_wildcards(
        "results/traces/{platform,[^/]+}/{backend,[^/]+}/{model,[^/]+}/bs{bs,\\d+}/meta.json"
    )
    return [
        plan.Run(p, b, m, int(bs))
        for p, b, m, bs in zip(found.platform, found.backend, found.model, found.bs)
        if p not in PLATFORMS and b in catalog.BACKENDS
    ]


def all_runs():
    return sorted(set(CONFIGURED_RUNS) | set(copied_in_runs()))


def all_shares(wildcards=None):
    return [plan.shares_path(r) for r in all_runs()]


def all_unknown(wildcards=None):
    return [plan.unknown_path(r) for r in all_runs()]


def figure_models(figure):
    return plan.figure_models(config, figure)


# -- the figure table (ngbench/figures/specs.py) makes the figure rules -------------------------------------------
FIGURES = specs.FIGURES
# The study's products: `snakemake --cores all fig6` names one (`all` names every one).
PRODUCTS = {name: spec.product for name, spec in FIGURES.items()}


def figure_runs_files(figure, kind):
    """Input function: one per-run file (shares, ops, compat) of each run a figure draws."""
    path = {
        "shares": plan.shares_path,
        "ops": plan.ops_path,
        "compat": plan.compat_path,
    }[kind]
    return lambda wildcards: [
        path(r) for r in plan.figure_runs(figure, config, all_runs())
    ]


def figure_inputs(figure):
    """A figure rule's inputs: its runs' files and every other file it names (package data included, so
    editing paper.yaml or taxonomy.yaml reruns exactly the products that read it)."""
    spec = FIGURES[figure]
    shared = {
        "paper": PAPER_FILE,
        "taxonomy": TAXONOMY_FILE,
        "registry": REGISTRY_FILE,
        "energy": energy_records,
        "limits": horizon_limits,
    }
    files = {
        name: specs.input_file(source) or shared[source]
        for name, source in spec.files.items()
    }
    return {kind: figure_runs_files(figure, kind) for kind in spec.reads} | files


def figure_outputs(figure):
    """A figure rule's outputs; its product is a report item."""
    spec = FIGURES[figure]
    label = "figure" if spec.is_figure else "table"
    outputs = dict(spec.outputs)
    first = next(iter(outputs))
    outputs[first] = report(
        spec.product,
        caption=f"../report/{figure}.rst",
        category=spec.category,
        labels={label: figure},
    )
    return outputs


def figure_params(figure):
    """What a figure reads of the config: editing it reruns that figure alone."""
    values = {
        "models": lambda: figure_models(figure),
        "custom_models": lambda: config["custom_models"],
        "overhead_factor": lambda: config["platform_limits"]["overhead_factor"],
        "top": lambda: config["platform_limits"]["top_ops"],
        "figure_models": lambda: {
            name: figure_models(name) for name in scorecard.claim_figures()
        },
    }
    return {name: values[name]() for name in FIGURES[figure].params}


COMPARISONS = config["comparisons"]


def comparison_ops_path(spec):
    """``platform/backend/model/bsN`` (the schema's pattern) -> that run's op table."""
    platform, backend, model, bs = spec.split("/")
    return plan.ops_path(plan.Run(platform, backend, model, int(bs.removeprefix("bs"))))


def comparison_tables(wildcards):
    return [comparison_ops_path(spec) for spec in COMPARISONS[wildcards.name]["runs"]]


def normalized_results(product):
    """The op tables and shares of the runs a product draws (the scorecard: every run). A named target lists
    them so that a missing one is rebuilt: Snakemake rebuilds a missing input of an output-less target rule,
    but not a missing intermediate behind a present file target (snakemake/snakemake#1978).
    """
    runs = plan.figure_runs(product, config, all_runs())
    return [f(r) for r in runs for f in (plan.ops_path, plan.shares_path)]


def warn_missing_results():
    """Say which measured runs lack their op table: a file target (figures/fig6.png) will not rebuild it."""
    if not workflow.is_main_process:
        return
    missing = plan.unnormalized_runs(all_runs(), Path("."))
    if missing:
        logger.warning(
            f"{len(missing)} measured run(s) lack their op table or shares ({plan.ops_path(missing[0])}"
            f"{', ...' if len(missing) > 1 else ''}): `snakemake` or a named target (fig6, table4, ...) "
            "rebuilds them; a file target such as figures/fig6.png does not (Snakemake's rule for "
            "intermediate files)"
        )


HIDDEN_MODELS = plan.hidden_models(config)


# -- what each job depends on (params: a change reruns exactly the jobs that read it) ----------------------------
def input_params(wildcards):
    return settings.input_params(config, wildcards.model)


def export_params(wildcards):
    return settings.export_params(config, wildcards.model)


def run_params(wildcards):
    return settings.run_params(
        config, wildcards.platform, wildcards.backend, wildcards.model
    )


def engine_params(wildcards):
    return settings.engine_params(config, wildcards.platform)


def platform_params(wildcards):
    backends = [r.backend for r in CONFIGURED_RUNS if r.platform == wildcards.platform]
    return settings.platform_params(config, wildcards.platform, backends)


def horizon_limits(wildcards=None):
    """The roofs of the platforms the horizon draws: measured here, or imported with a platform's results
    (a platform without them falls back to a vendor spec sheet, marked as such)."""
    platforms = {r.platform for r in plan.figure_runs("horizon", config, all_runs())}
    return [
        f"results/platform/{p}.json"
        for p in sorted(platforms)
        if p in PLATFORMS or Path(f"results/platform/{p}.json").is_file()
    ]


def energy_params(wildcards):
    return settings.energy_params(config, wildcards.platform, wildcards.model)


def run_inputs(wildcards):
    """The input batch and whatever else the backend's catalog entry names (export, engine)."""
    entry = catalog.get(wildcards.backend)
    fields = {
        **wildcards,
        "precision": config["backends"]["trt"]["precision"],
        "graph": engine_graph(config["backends"]["trt"]["precision"]),
    }
    extra = {name: t.format(**fields) for name, t in entry.inputs.items()}
    return {"batch": f"results/inputs/{wildcards.model}/bs{wildcards.bs}.pt", **extra}


def gpus(wildcards):
    """One GPU for a measurement on a CUDA platform, none elsewhere (the resource the SLURM executor
    plugin turns into --gpus; locally it limits nothing unless --resources gpu=N is given).
    """
    return int(wildcards.platform in CUDA_PLATFORMS)


def run_conda_env(wildcards):
    return f"../../{catalog.get(wildcards.backend).conda_env}"


def engine_graph(precision):
    """ "fp16." when an engine is built from the export's fp16 copy (strongly typed fp16), else ""."""
    strong = config["backends"]["trt"]["typing"] == "strong"
    return "fp16." if precision == "fp16" and strong else ""


def trt_engine_onnx(wildcards):
    """The graph an engine is built from: the fp16 copy for a strongly typed fp16 engine, else the export."""
    return f"results/onnx/{wildcards.model}/bs{wildcards.bs}.{engine_graph(wildcards.precision)}onnx"


ENERGY = config["energy"]


def energy_records(wildcards=None):
    if not ENERGY["enabled"]:
        return []
    models = ENERGY["models"] or plan.drawn_models(config)
    bs = ENERGY["batch_size"]
    return [f"results/energy/{p}/{m}/bs{bs}.json" for p in PLATFORMS for m in models]


def cuda_results(wildcards=None):
    """What the GPU smoke makes: the op tables and shares of every run on a CUDA platform, the platforms' energy
    records and measured roofs."""
    runs = [r for r in all_runs() if r.platform in CUDA_PLATFORMS]
    energy = [e for e in energy_records() if e.split("/")[2] in CUDA_PLATFORMS]
    roofs = [f"results/platform/{p}.json" for p in CUDA_PLATFORMS]
    return (
        [f(r) for r in runs for f in (plan.ops_path, plan.shares_path)] + energy + roofs
    )


def check_devices():
    """Before any job runs: a measurement on a CUDA platform needs a GPU here (fail fast, one message)."""
    planned = [
        (job.rule.name, job.wildcards.get("platform", ""))
        for job in workflow.dag.needrun_jobs()
    ]
    if not any(name in plan.MEASUREMENT_RULES for name, _ in planned):
        return
    problem = plan.absent_devices(config, planned, plan.cuda_visible())
    if problem:
        raise WorkflowError(problem)
