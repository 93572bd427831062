"""LLM.int8 (``backend=torch-int8``): the *same* checkpoint as the fp32/fp16 ``torch`` run, quantized by
bitsandbytes through transformers' ``BitsAndBytesConfig(load_in_8bit=True)``.

transformers cannot quantize a model built with ``from_config``; so the registry model (random weights,
same seed as the ``torch`` run, or the user's pretrained weights) is saved to a scratch directory as
safetensors and loaded back with ``from_pretrained(dir, quantization_config=...)``. bitsandbytes >= 0.45
runs LLM.int8 on the CPU too (``accelerate`` must be installed), so the study runs here and on CUDA alike.
The model must stay in ``eval()``: in training mode ``Linear8bitLt`` dequantizes and calls ``aten::addmm``
(no int8 at all). Under the profiler: ``MatMul8bitLt`` -> ``bitsandbytes::int8_vectorwise_quant``,
``int8_mixed_scaled_mm`` / ``int8_scaled_mm`` -> ``int8_linear_matmul`` (``aten::_int_mm``) +
``int8_mm_dequant``; the taxonomy's ``quantization_scopes`` make everything inside ``Linear8bitLt`` but the
matmuls Quantization.
"""

from __future__ import annotations

import logging
import tempfile
from importlib import metadata
from typing import Any

from ngbench.errors import Unavailable

log = logging.getLogger(__name__)


def quantize(model, *, device: str, dtype: str, threshold: float = 6.0) -> tuple[Any, dict[str, Any]]:
    """Reload ``model`` (a transformers model) with LLM.int8 linears. Returns (int8 model, provenance)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, BitsAndBytesConfig

    try:
        bnb_version = metadata.version("bitsandbytes")
        metadata.version("accelerate")
    except metadata.PackageNotFoundError as exc:
        raise Unavailable(f"torch-int8 needs bitsandbytes and accelerate installed ({exc.name} is missing)") from exc
    if not hasattr(model, "save_pretrained"):
        raise TypeError(f"torch-int8 quantizes transformers models only, not {type(model).__name__}")
    auto = AutoModelForMaskedLM if "MaskedLM" in type(model).__name__ else AutoModelForCausalLM
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)
    with tempfile.TemporaryDirectory(prefix="ngbench-int8-") as scratch:
        model.save_pretrained(scratch, safe_serialization=True)
        quantized = auto.from_pretrained(
            scratch,
            quantization_config=config,
            device_map={"": device if device != "cuda" else "cuda:0"},
            dtype=getattr(torch, dtype),
            attn_implementation=getattr(model.config, "_attn_implementation", None),
        )
    quantized.eval()  # Linear8bitLt dequantizes to fp and runs addmm in training mode
    quantized.config.use_cache = False
    int8_linears = sum(1 for m in quantized.modules() if type(m).__name__ == "Linear8bitLt")
    if int8_linears == 0:
        raise RuntimeError("bitsandbytes replaced no Linear with Linear8bitLt: nothing was quantized")
    return quantized, {
        "quantization": "LLM.int8 (bitsandbytes Linear8bitLt via transformers BitsAndBytesConfig)",
        "bitsandbytes": bnb_version,
        "llm_int8_threshold": threshold,
        "int8_linears": int8_linears,
        "compute_dtype": dtype,
        "device": device,
        "same_checkpoint_as": "the torch backend's run of this model (same registry entry, seed and weights)",
    }
