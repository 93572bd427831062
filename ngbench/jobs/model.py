"""The registry model as every backend runs it, from a run's ``model`` params."""

from __future__ import annotations

from typing import Any

from ngbench import names, registry


def build(model: dict[str, Any], tensors: dict, dtype: str, attn_implementation: str | None, meta: dict):
    """Weights (local or seeded random), norm calibration, one prefill forward without a KV cache;
    provenance goes into ``meta``. ``model``: :func:`ngbench.jobs.settings.model_params`."""
    spec = registry.spec_from_dict(model["spec"])
    built, prov = registry.build(
        spec,
        dtype=dtype,
        layers=model["layers"],
        seed=model["seed"],
        weights_path=model["weights"],
        use_local_cache=model["use_local_cache"],
        attn_implementation=attn_implementation if spec.source == "transformers" else None,
    )
    meta["model_provenance"] = prov
    if prov["weights"] == "random" and model["calibrate_norms"]:
        prov["norm_layers_calibrated"] = registry.calibrate_norms(built, tensors)
        prov["init"] += "; normalization running statistics calibrated on the input batch"
    if spec.source == "transformers":
        built.config.use_cache = False  # one prefill forward, as the paper ran it
        meta["attn_implementation"] = getattr(built.config, "_attn_implementation", None)
        prov["use_cache"] = False
    if spec.source == "torchvision":
        import torch

        meta["mha_fastpath"] = torch.backends.mha.get_fastpath_enabled()
    return built


def dtype_for(settings: dict, device: str) -> str:
    return settings["dtype_cuda" if names.is_cuda(device) else "dtype_cpu"]
