"""Model registry (``models.yaml`` beside this file) and offline model builders.

Every model builds with no hub access: torchvision builders, or a transformers config class filled with the
published config values written out in the registry. Pretrained tensors load only from a local file named in
config (``weights.paths``), the local torch hub cache (torchvision) or the local Hugging Face cache
(transformers, ``local_files_only``). Otherwise parameters are random with a fixed seed, every tensor given
small seeded noise so that biases are not exactly 0 nor norm weights exactly 1 (exporters and optimizers
would otherwise fold them and change the graph). Each build returns a provenance dict that every result
records.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ngbench.errors import InputError

REGISTRY_PATH = Path(__file__).with_name("models.yaml")
SOURCES = ("torchvision", "transformers")
REQUIRED = {
    "torchvision": ("task", "dataset", "builder", "weights", "input", "batch_sizes"),
    "transformers": ("task", "dataset", "model_class", "config_class", "config", "input", "batch_sizes"),
}


class RegistryError(InputError):
    """A registry entry (shipped, or the config's ``custom_models``) that is not what the registry expects."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str
    task: str
    dataset: str
    input: dict
    batch_sizes: tuple[int, ...]
    paper_name: str = ""
    builder: str | None = None
    weights: str | None = None
    hf_id: str | None = None
    model_class: str | None = None
    config_class: str | None = None
    config: dict = field(default_factory=dict)
    layers_key: str | None = None
    layers_module: str | None = None  # torchvision: dotted path of the block list that `layers` slices
    full_layers: int | None = None  # torchvision: depth of that block list at full size
    seq_len: int | None = None
    paper_params: float | None = None

    @property
    def is_text(self) -> bool:
        return self.input.get("kind") == "text"


def spec_from_dict(fields: dict[str, Any]) -> ModelSpec:
    """The spec back from ``dataclasses.asdict`` (how workflow params carry it)."""
    return ModelSpec(**{**fields, "batch_sizes": tuple(fields["batch_sizes"])})


def _spec(name: str, entry: Any, where: str) -> ModelSpec:
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: model {name!r}: expected a mapping of fields, got {type(entry).__name__}")
    source = entry.get("source")
    if source not in SOURCES:
        raise RegistryError(f"{where}: model {name!r}: 'source' must be one of {list(SOURCES)}, got {source!r}")
    missing = [k for k in REQUIRED[source] if k not in entry]
    if missing:
        raise RegistryError(f"{where}: model {name!r}: missing field(s) {missing} (source {source})")
    known = set(ModelSpec.__dataclass_fields__) - {"name"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise RegistryError(f"{where}: model {name!r}: unknown field(s) {unknown}; known fields: {sorted(known)}")
    kind = entry["input"].get("kind") if isinstance(entry["input"], dict) else None
    if kind not in ("image", "text"):
        raise RegistryError(f"{where}: model {name!r}: input.kind must be 'image' or 'text', got {kind!r}")
    if kind == "text" and not entry.get("seq_len"):
        raise RegistryError(f"{where}: model {name!r}: text models need 'seq_len'")
    values = dict(entry)
    values["batch_sizes"] = tuple(int(b) for b in entry["batch_sizes"])
    if values.get("paper_params") is not None:  # YAML 1.1 reads 29.0e6 (no exponent sign) as a string
        values["paper_params"] = float(values["paper_params"])
    return ModelSpec(name=name, **values)


def load(custom: dict[str, Any] | None = None, path: str | Path | None = None) -> dict[str, ModelSpec]:
    """The registry, plus ``custom`` entries (config.yaml ``custom_models``), which may override by name."""
    p = Path(path) if path else REGISTRY_PATH
    data = yaml.safe_load(p.read_text()) or {}
    specs = {name: _spec(name, entry, str(p)) for name, entry in data.items()}
    for name, entry in (custom or {}).items():
        specs[name] = _spec(name, entry, "config.yaml custom_models")
    return specs


def get(name: str, specs: dict[str, ModelSpec]) -> ModelSpec:
    try:
        return specs[name]
    except KeyError:
        raise RegistryError(f"unknown model {name!r}; registered models: {sorted(specs)}") from None


def resolved_config(spec: ModelSpec, layers: int | None) -> dict:
    cfg = copy.deepcopy(spec.config)
    if layers is not None:
        if not spec.layers_key:
            raise RegistryError(f"model {spec.name!r} has no layers_key: it cannot be truncated to {layers} layers")
        full = cfg.get(spec.layers_key)
        if full is not None and layers > full:
            raise RegistryError(f"model {spec.name!r}: layers={layers} exceeds the full depth {full}")
        cfg[spec.layers_key] = layers
    return cfg


def full_depth(spec: ModelSpec) -> int | None:
    if spec.layers_key:
        return spec.config.get(spec.layers_key)
    return spec.full_layers if spec.layers_module else None


def build(
    spec: ModelSpec,
    *,
    layers: int | None = None,
    seed: int = 0,
    weights_path: str | None = None,
    use_local_cache: bool = True,
    attn_implementation: str | None = None,
    dtype: str = "float32",
):
    """Build the model in eval mode, its parameters created in ``dtype`` (a large model built in float32
    and converted afterwards would need twice the memory). Returns ``(model, provenance)``."""
    import torch

    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        if spec.source == "torchvision":
            model, prov = _build_torchvision(spec, weights_path, use_local_cache, layers)
        else:
            model, prov = _build_transformers(spec, layers, weights_path, use_local_cache, attn_implementation)
    finally:
        torch.set_default_dtype(previous)
    if prov["weights"] == "random":
        _perturb(model, seed)
        prov["init"] = f"default init + N(0, 0.02) noise on every tensor, seed {seed}"
    prov["seed"] = seed
    prov["dtype"] = dtype
    prov["layers"] = layers if layers is not None else full_depth(spec)
    prov["full_depth"] = full_depth(spec)
    prov["parameters"] = sum(p.numel() for p in model.parameters())
    return model.eval(), prov


def _perturb(model, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.02)


def _load_state_dict(path: str) -> dict:
    import torch

    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _build_torchvision(spec: ModelSpec, weights_path: str | None, use_local_cache: bool, layers: int | None):
    import torch
    import torchvision

    if layers is not None and not spec.layers_module:
        raise RegistryError(f"model {spec.name!r} has no layers knob (no layers_module in the registry)")
    model = _torchvision_builder(spec)(weights=None)
    prov = {"weights": "random", "weights_source": None}
    if weights_path:
        model.load_state_dict(_load_state_dict(weights_path))
        prov = {"weights": "pretrained", "weights_source": weights_path}
    elif use_local_cache:
        weights = torchvision.models.get_weight(spec.weights)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if cached.is_file():
            model.load_state_dict(_load_state_dict(str(cached)))
            prov = {"weights": "pretrained", "weights_source": str(cached)}
    if layers is not None:
        _truncate(model, spec, layers)
    return model, prov


def _torchvision_builder(spec: ModelSpec):
    """``name`` from torchvision.models, or ``module:function`` (e.g. ngbench.registry.builders:...)."""
    module_name, _, func = spec.builder.rpartition(":")
    module = importlib.import_module(module_name or "torchvision.models")
    builder = getattr(module, func, None)
    if builder is None:
        raise RegistryError(f"model {spec.name!r}: {module.__name__} has no builder {func!r}")
    return builder


def _truncate(model, spec: ModelSpec, layers: int) -> None:
    """Keep the first ``layers`` blocks of the block list at ``spec.layers_module`` (full width kept)."""
    parent_path, _, attr = spec.layers_module.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    blocks = getattr(parent, attr)
    if layers > len(blocks):
        raise RegistryError(f"model {spec.name!r}: layers={layers} exceeds the full depth {len(blocks)}")
    setattr(parent, attr, blocks[:layers])


def _build_transformers(
    spec: ModelSpec, layers: int | None, weights_path: str | None, use_local_cache: bool, attn: str | None
):
    import transformers

    config_cls = getattr(transformers, spec.config_class)
    model_cls = getattr(transformers, spec.model_class)
    cfg_values = resolved_config(spec, layers)
    extra = {"attn_implementation": attn} if attn else {}
    source = weights_path or (spec.hf_id if use_local_cache else None)
    if source:
        try:
            kwargs = {spec.layers_key: cfg_values[spec.layers_key]} if layers is not None else {}
            model = model_cls.from_pretrained(source, local_files_only=True, use_safetensors=None, **kwargs, **extra)
            return model, {"weights": "pretrained", "weights_source": str(source)}
        except (OSError, ValueError) as exc:
            if weights_path:  # the user asked for these weights: failing to load them is an error
                raise RegistryError(f"model {spec.name!r}: cannot load weights from {weights_path}: {exc}") from exc
    config = config_cls(**cfg_values, **extra)
    model = model_cls(config)
    return model, {"weights": "random", "weights_source": None}


def count_parameters(spec: ModelSpec) -> int:
    """Full-depth parameter count, built on the meta device (no memory)."""
    import torch

    with torch.device("meta"):
        if spec.source == "torchvision":
            model = _torchvision_builder(spec)(weights=None)
        else:
            import transformers

            config = getattr(transformers, spec.config_class)(**spec.config)
            model = getattr(transformers, spec.model_class)(config)
    return sum(p.numel() for p in model.parameters())


def _like(value, param):
    """``value`` (a tensor, or a list/tuple/dict of them) on ``param``'s device, floating tensors in its dtype."""
    import torch

    if torch.is_tensor(value):
        return value.to(param.device, param.dtype) if value.is_floating_point() else value.to(param.device)
    if isinstance(value, list | tuple):
        return type(value)(_like(v, param) for v in value)
    if isinstance(value, dict):
        return {k: _like(v, param) for k, v in value.items()}
    return value


def calibrate_norms(model, inputs: dict) -> int:
    """Random weights only: set every normalization layer's running statistics to the per-channel mean and
    variance of the input it receives on ``inputs``, layer by layer in one forward (pre-hooks), as a trained
    model's would be. Without it, deep random CNNs with frozen batch norm blow activations up (ResNet-50 FPN
    features ~1e3), Faster/Mask R-CNN's RPN then proposes no valid box and every RoI/NMS op sees empty
    tensors: a different graph. Returns the number of layers calibrated."""
    import torch

    hooks, count, seen = [], 0, set()

    def pre(module, args):
        nonlocal count
        seen.add(id(module))
        x = args[0]
        if not torch.is_tensor(x) or x.dim() < 2 or x.shape[1] != module.running_mean.shape[0]:
            return
        dims = [d for d in range(x.dim()) if d != 1]
        module.running_mean.copy_(x.float().mean(dim=dims))
        module.running_var.copy_(x.float().var(dim=dims, unbiased=False))
        count += 1

    for module in model.modules():
        if hasattr(module, "running_mean") and hasattr(module, "running_var") and module.running_mean is not None:
            hooks.append(module.register_forward_pre_hook(pre))
    if not hooks:
        return 0
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is not None:  # a model built in float16/bfloat16 (the GPU dtype) takes its input in that dtype
        inputs = {k: _like(v, param) for k, v in inputs.items()}
    try:
        with torch.inference_mode():
            model(**inputs)
    except Exception:
        # Only the statistics matter here: a forward that fails after every normalization layer saw its
        # input (torchvision's CPU NMS has no float16 kernel, and NMS runs after the backbone) has done its
        # job; the run itself will meet, and report, the same failure.
        if len(seen) < len(hooks):
            raise
    finally:
        for h in hooks:
            h.remove()
    return count
