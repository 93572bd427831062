"""nongemm-bench: where ML inference time goes, GEMM versus non-GEMM operators, across backends and platforms."""

import os

# Kineto prints INFO/ERROR lines (e.g. "gpuGetDeviceCount failed" on CUDA builds without a GPU) straight to
# stderr; they are harmless but alarm users. Respect a value the user set explicitly.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")
# No hub access at run time, ever (weights build offline from the registry's configs).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
