"""Timing loop and statistics shared by every backend."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def summarize(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {}
    qs = statistics.quantiles(samples_ms, n=10, method="inclusive") if len(samples_ms) > 1 else [samples_ms[0]] * 9
    return {
        "median_ms": statistics.median(samples_ms),
        "p10_ms": qs[0],
        "p90_ms": qs[8],
        "mean_ms": statistics.fmean(samples_ms),
        "min_ms": min(samples_ms),
        "max_ms": max(samples_ms),
        "n": len(samples_ms),
    }


def time_iterations(step: Callable[[], None], sync: Callable[[], None], n: int) -> list[float]:
    """Wall time (ms) of ``n`` calls of ``step``, the device synchronized before and after each."""
    samples = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter_ns()
        step()
        sync()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples
