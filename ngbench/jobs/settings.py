"""What each job depends on, derived once from the validated config. The workflow passes these dicts to its
scripts as ``params`` (so a change to any value reruns exactly the jobs that read it) and the jobs read
nothing else. Defaults come from the config schema only (:func:`with_defaults`).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from ngbench import catalog, names, registry

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config.schema.yaml"
# keys that choose which runs exist, not how one runs: changing them adds or drops jobs, never reruns one
SELECTION_KEYS = ("enabled", "models", "batch_sizes", "variants")
# ORT settings the ONNX export depends on (the rest are run settings: they never re-export)
EXPORT_KEYS = ("opset", "export_tolerance", "attn_implementation")


def with_defaults(config: dict) -> dict:
    """A copy of ``config`` validated against the workflow's schema, with its defaults filled in (as the
    Snakefile's ``validate(..., set_default=True)`` does)."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


def model_settings(config: dict, model: str) -> dict[str, Any]:
    """Per-model settings: registry defaults overridden by ``config['models'][model]``. A model entry with
    ``base: <registry name>`` is a variant of that model under its own name (e.g. the paper's debug sizes),
    so its results never collide with the base model's."""
    specs = registry.load(config.get("custom_models"))
    over = (config.get("models") or {}).get(model) or {}
    spec = registry.get(over.get("base") or model, specs)
    return {
        "spec": spec,
        "batch_sizes": list(over.get("batch_sizes") or config.get("batch_sizes") or spec.batch_sizes),
        "seq_len": over.get("seq_len") or spec.seq_len if spec.is_text else None,
        "layers": over.get("layers", config.get("layers")),
        "weights": over.get("weights") or ((config.get("weights") or {}).get("paths") or {}).get(model),
    }


def model_params(config: dict, model: str) -> dict[str, Any]:
    """Everything a built model depends on: editing a registry entry reruns that model's jobs only."""
    s = model_settings(config, model)
    return {
        "name": model,
        "spec": dataclasses.asdict(s["spec"]),
        "seq_len": s["seq_len"],
        "layers": s["layers"],
        "weights": s["weights"],
        "use_local_cache": config["weights"]["use_local_cache"],
        "seed": config["seed"],
        "calibrate_norms": config["calibrate_norms"],
    }


def input_params(config: dict, model: str) -> dict[str, Any]:
    """Everything a model's input batch depends on."""
    from ngbench import inputs

    s = model_settings(config, model)
    return {
        "spec": dataclasses.asdict(s["spec"]),
        "seq_len": s["seq_len"],
        "inputs": config["inputs"],
        "vocabulary": inputs.vocabulary_state(s["spec"].input.get("tokenizer", "")),
        "on_error": config["on_error"],
    }


def backend_settings(config: dict, backend: str, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """How one backend runs (its settings block without the keys that only select runs)."""
    block = config["backends"][catalog.get(backend).settings]
    return {k: v for k, v in block.items() if k not in SELECTION_KEYS and k not in drop}


def run_params(config: dict, platform: str, backend: str, model: str) -> dict[str, Any]:
    """Everything one profiling run depends on besides its input files."""
    entry = catalog.get(backend)
    params = {
        "platform": platform,
        "device": config["platforms"][platform]["device"],
        "backend": backend,
        # a backend that runs the export: the export's keys in its block re-export, they do not rerun it
        "settings": backend_settings(config, backend, drop=EXPORT_KEYS if "onnx" in entry.inputs else ()),
        "options": entry.options,
        "trust": config["trust"],
        "on_error": config["on_error"],
    }
    if entry.builds_model:
        params["model"] = model_params(config, model)
    else:  # runs a prebuilt artifact: what the model is matters to that artifact's rule, not to this run
        params["model"] = {"name": model, "seq_len": model_settings(config, model)["seq_len"]}
    return params


def export_params(config: dict, model: str) -> dict[str, Any]:
    """What an ONNX export depends on: ORT run settings (iterations, threads) do not re-export."""
    ort = config["backends"]["ort"]
    return {
        "model": model_params(config, model),
        "export": {k: ort[k] for k in EXPORT_KEYS},
        "threads": ort["threads"],
        "on_error": config["on_error"],
    }


def engine_params(config: dict, platform: str) -> dict[str, Any]:
    """What a TensorRT engine build depends on."""
    trt = config["backends"]["trt"]
    return {
        "platform": platform,
        "typing": trt["typing"],
        "workspace_gib": trt["workspace_gib"],
        "timing_cache_dir": trt["timing_cache_dir"],
        "on_error": config["on_error"],
    }


def energy_params(config: dict, platform: str, model: str) -> dict[str, Any]:
    """What an energy record depends on: the eager model as the torch backend builds it (its iteration counts
    do not matter here) and the energy settings."""
    torch = config["backends"]["torch"]
    return {
        "platform": platform,
        "device": config["platforms"][platform]["device"],
        "model": model_params(config, model),
        "energy": config["energy"],
        "torch": {k: torch[k] for k in ("dtype_cpu", "dtype_cuda", "attn_implementation", "threads")},
        "on_error": config["on_error"],
    }


def platform_params(config: dict, platform: str, backends: list[str]) -> dict[str, Any]:
    """What a platform's roofs depend on: its device, the dtypes and ``backends`` the study runs there, and
    the measurement settings (the horizon's own knobs, overhead_factor and top_ops, are not among them)."""
    device = config["platforms"][platform]["device"]
    cuda = names.is_cuda(device)
    # the dtypes the study computes in there; on a GPU every tensor-core dtype, as a GPU's spec sheet lists them
    dtypes = {"float32"} | ({"float16", "bfloat16"} if cuda else set())
    dtypes |= {config["backends"][catalog.get(b).settings].get("dtype_cuda" if cuda else "dtype_cpu") or "float32"
               for b in backends}  # fmt: skip
    dtypes = sorted(dtypes)
    limits = {k: v for k, v in config["platform_limits"].items() if k not in ("overhead_factor", "top_ops")}
    return {"platform": platform, "device": device, "dtypes": dtypes, "backends": sorted(backends), "limits": limits}
