import dataclasses
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The ngbench package lives beside the Snakefile (scripts find it through workflow/scripts/_pkg.py).
sys.path.insert(0, workflow.basedir)

from ngbench import inputs, study  # noqa: E402

validate(config, "../schemas/config.schema.yaml", set_default=True)
if config["only_models"] is not None:
    unknown = sorted(set(config["only_models"]) - set(config["models"]))
    if unknown:
        raise ValueError(
            f"only_models: {unknown} are not under models: ({sorted(config['models'])})"
        )
    config["models"] = {m: config["models"][m] for m in config["only_models"]}

PLATFORMS = sorted(config["platforms"])
# package data files that are inputs of rules: beside the Snakefile, wherever the working directory is
TAXONOMY_FILE = str(Path(workflow.basedir) / "ngbench" / "taxonomy.yaml")
REGISTRY_FILE = str(Path(workflow.basedir) / "ngbench" / "registry" / "models.yaml")
TORCH = config["backends"]["torch"]
ORT = config["backends"]["ort"]
INDUCTOR = config["backends"]["inductor"]
TRT = config["backends"]["trt"]
INT8 = config["backends"]["torch-int8"]
CUDA_PLATFORMS = [
    p for p in PLATFORMS if config["platforms"][p]["device"].startswith("cuda")
]
TRACE_FILES = study.NORMALIZERS
# A measurement takes every core it is given (Snakemake caps a rule's threads at --cores), so no other job
# shares the machine while it runs.
MEASUREMENT_THREADS = 1024


wildcard_constraints:  # the schema's name pattern: no wildcard can climb out of results/
    bs=r"\d+",
    model=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    platform=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    backend=r"[A-Za-z0-9][A-Za-z0-9._-]*",


def model_settings(model):
    return study.model_settings(config, model)


def backend_batch_sizes(settings, model):
    """A backend's batch sizes for a model: its own list (kept to the model's) or the model's."""
    sizes = model_settings(model)["batch_sizes"]
    return (
        [b for b in sizes if b in settings["batch_sizes"]]
        if settings.get("batch_sizes")
        else sizes
    )


def configured_runs():
    """(platform, backend, model, bs) that this machine runs under the current config."""
    runs = []
    if TORCH["enabled"]:
        for model in config["models"]:
            for bs in model_settings(model)["batch_sizes"]:
                runs += [(p, "torch", model, bs) for p in PLATFORMS]
    if INDUCTOR["enabled"]:
        for model in INDUCTOR["models"] or drawn_models():
            for bs in backend_batch_sizes(INDUCTOR, model):
                runs += [(p, "inductor", model, bs) for p in PLATFORMS]
    if INT8["enabled"]:
        for model in INT8["models"] or []:
            for bs in model_settings(model)["batch_sizes"]:
                runs += [(p, "torch-int8", model, bs) for p in PLATFORMS]
    # TensorRT runs on CUDA platforms only; fig8 marks its panel elsewhere
    if TRT["enabled"]:
        for model in TRT["models"] or drawn_models():
            for bs in backend_batch_sizes(TRT, model):
                runs += [(p, "trt", model, bs) for p in CUDA_PLATFORMS]
    if ORT["enabled"]:
        for model in ORT["models"] or drawn_models():
            for bs in backend_batch_sizes(ORT, model):
                runs += [(p, b, model, bs) for p in PLATFORMS for b in ORT["variants"]]
    return [r for r in runs if platform_runs_backend(r[0], r[1])]


def platform_runs_backend(platform, backend):
    wanted = config["platforms"][platform].get("backends")
    return wanted is None or backend in wanted


def copied_in_runs():
    """Runs whose raw traces are already on disk for platforms this machine does not run (copied in)."""
    found = glob_wildcards(
        "results/traces/{platform,[^/]+}/{backend,[^/]+}/{model,[^/]+}/bs{bs,\\d+}/meta.json"
    )
    return [
        (p, b, m, int(bs))
        for p, b, m, bs in zip(found.platform, found.backend, found.model, found.bs)
        if p not in PLATFORMS and b in TRACE_FILES
    ]


def op_tables(wildcards=None):
    runs = sorted(set(configured_runs()) | set(copied_in_runs()))
    return [f"results/ops/{p}/{b}/{m}/bs{bs}.parquet" for p, b, m, bs in runs]


def torch_tables(wildcards=None):
    """PyTorch eager op tables: Table I compares aten operators and their input shapes, which only the
    eager runs have (ORT's nodes and Inductor's kernels would shadow them under the same model@bs).
    """
    runs = sorted(set(configured_runs()) | set(copied_in_runs()))
    return [
        f"results/ops/{p}/{b}/{m}/bs{bs}.parquet"
        for p, b, m, bs in runs
        if b == "torch"
    ]


def fig8_tables(wildcards=None):
    """Op tables of the fusion figures' models under PyTorch eager, Inductor and TensorRT (where run)."""
    models = set(config["figures"]["fig8"]["models"])
    runs = sorted(set(configured_runs()) | set(copied_in_runs()))
    return [
        f"results/ops/{p}/{b}/{m}/bs{bs}.parquet"
        for p, b, m, bs in runs
        if m in models and b in ("torch", "inductor", "trt")
    ]


def fig9_tables(wildcards=None):
    """Op tables of the quantization study: torch (fp) and torch-int8 runs of the fig9 models."""
    models = set(config["figures"]["fig9"]["models"])
    runs = sorted(set(configured_runs()) | set(copied_in_runs()))
    return [
        f"results/ops/{p}/{b}/{m}/bs{bs}.parquet"
        for p, b, m, bs in runs
        if m in models and b in ("torch", "torch-int8")
    ]


ENERGY = config["energy"]


def energy_records(wildcards=None):
    if not ENERGY["enabled"]:
        return []
    models = ENERGY["models"] or drawn_models()
    bs = ENERGY["batch_size"]
    return [f"results/energy/{p}/{m}/bs{bs}.json" for p in PLATFORMS for m in models]


def energy_params(wildcards):
    return {
        **model_params(wildcards.model),
        "energy": ENERGY,
        # the eager model as the torch backend builds it; its iteration counts do not matter here
        "torch": {
            k: TORCH[k]
            for k in ("dtype_cpu", "dtype_cuda", "attn_implementation", "threads")
        },
        "device": config["platforms"][wildcards.platform]["device"],
    }


def drawn_models():
    """Configured models shown in the breakdown figures (the default model set of the other backends)."""
    hidden = set(hidden_models())
    return [m for m in config["models"] if m not in hidden]


def hidden_models():
    """Models configured with figures: false (kept in shares.parquet, not drawn)."""
    return sorted(
        m for m, o in config["models"].items() if o and o.get("figures") is False
    )


def input_params(wildcards):
    """Everything a model's input batch depends on: a change reruns the inputs and what reads them."""
    s = model_settings(wildcards.model)
    return {
        "seq_len": s["seq_len"],
        "inputs": config["inputs"],
        "input_spec": s["spec"].input,
        "vocabulary": inputs.vocabulary_state(s["spec"].input.get("tokenizer", "")),
    }


# keys that choose which runs exist, not how one runs: changing them adds or drops jobs, never reruns one
SELECTION_KEYS = ("enabled", "models", "batch_sizes", "variants")


def run_settings(settings, drop=()):
    return {
        k: v for k, v in settings.items() if k not in SELECTION_KEYS and k not in drop
    }


def model_params(model):
    """Everything a built model depends on: editing a registry entry reruns that model only."""
    s = model_settings(model)
    return {
        "model": dataclasses.asdict(s["spec"]),
        "layers": s["layers"],
        "weights": s["weights"],
        "use_local_cache": config["weights"]["use_local_cache"],
        "seed": config["seed"],
        "calibrate_norms": config["calibrate_norms"],
        "on_error": config["on_error"],
    }


def torch_run_params(wildcards):
    """Everything a torch run depends on besides its input file: a change reruns only torch jobs."""
    return {
        **model_params(wildcards.model),
        "torch": run_settings(TORCH),
        "device": config["platforms"][wildcards.platform]["device"],
    }


def inductor_run_params(wildcards):
    return {
        **model_params(wildcards.model),
        "inductor": run_settings(INDUCTOR),
        "device": config["platforms"][wildcards.platform]["device"],
    }


def int8_run_params(wildcards):
    return {
        **model_params(wildcards.model),
        "torch-int8": run_settings(INT8),
        "device": config["platforms"][wildcards.platform]["device"],
    }


def trt_engine_onnx(wildcards):
    """The graph an engine is built from: the fp16 copy for a strongly typed fp16 engine, else the export."""
    fp16 = wildcards.precision == "fp16" and TRT["typing"] == "strong"
    return (
        f"results/onnx/{wildcards.model}/bs{wildcards.bs}.{'fp16.' if fp16 else ''}onnx"
    )


def trt_run_params(wildcards):
    return {
        "trt": run_settings(TRT),
        "on_error": config["on_error"],
        "device": config["platforms"][wildcards.platform]["device"],
    }


EXPORT_KEYS = ("opset", "export_tolerance", "attn_implementation", "threads")


def export_params(wildcards):
    """What an ONNX export depends on: ORT run settings (iterations, threads) do not re-export."""
    return {**model_params(wildcards.model), "export": {k: ORT[k] for k in EXPORT_KEYS}}


def ort_run_params(wildcards):
    return {
        "ort": run_settings(ORT, drop=EXPORT_KEYS[:3]),
        "on_error": config["on_error"],
        "device": config["platforms"][wildcards.platform]["device"],
    }
