"""Can a run's numbers be trusted? Each measurement is judged against stated bounds (config ``trust:``):
the profiled/unprofiled latency ratio, the spread of iterations, other processes' CPU use. A disturbed run
is measured again up to ``retries`` times; what stays disturbed is marked in its record (``meta.json``
``trust``), its shares, the figures' labels and the scorecard, never dropped."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
OK, DISTURBED = "ok", "disturbed"


def judge(record: dict[str, Any], bounds: dict[str, Any]) -> list[str]:
    """Why a run record is not trustworthy under ``bounds`` (empty: it is)."""
    reasons = []
    ratio = record.get("profiler_overhead_ratio")
    median = (record.get("latency") or {}).get("median_ms") or 0.0
    if median < bounds["min_judged_ms"]:
        ratio = None  # jitter, not disturbance, moves iterations this short
    if ratio is not None and not bounds["min_overhead_ratio"] <= ratio <= bounds["max_overhead_ratio"]:
        reasons.append(
            f"profiled/unprofiled latency {ratio:.2f} outside [{bounds['min_overhead_ratio']}, "
            f"{bounds['max_overhead_ratio']}]"
        )
    for phase, key in (("unprofiled", "latency_samples_ms"), ("profiled", "profiled_samples_ms")):
        samples = sorted(record.get(key) or [])
        if len(samples) >= 2 and median >= bounds["min_judged_ms"]:
            mid = statistics.median(samples)
            if mid > 0 and samples[-1] / mid > bounds["max_spread"]:
                reasons.append(f"{phase} iteration {samples[-1] / mid:.1f}x the median (bound {bounds['max_spread']}x)")
    for phase, load in (record.get("load") or {}).items():
        if load["others_cpu_cores"] > bounds["max_other_cpu_cores"]:
            reasons.append(
                f"other processes used {load['others_cpu_cores']:.2f} cores during the {phase} phase "
                f"(bound {bounds['max_other_cpu_cores']})"
            )
    return reasons


def measure(
    attempt: Callable[[], dict[str, Any]],
    bounds: dict[str, Any],
    what: str,
    reset: Callable[[], None] = lambda: None,
) -> tuple[dict, dict]:
    """Run ``attempt`` (one whole measurement) until it is judged trustworthy or ``retries`` are spent;
    ``reset`` clears what an attempt wrote before the next. Returns (the last record, its trust verdict with
    every attempt's reasons)."""
    earlier: list[list[str]] = []
    while True:
        if earlier:
            reset()
        record = attempt()
        reasons = judge(record, bounds)
        if not reasons or len(earlier) >= bounds["retries"]:
            verdict = {"status": DISTURBED if reasons else OK, "reasons": reasons, "attempts": len(earlier) + 1}
            if earlier:
                verdict["earlier_attempts"] = earlier
            if reasons:
                log.warning("%s stays disturbed after %d attempts: %s", what, len(earlier) + 1, "; ".join(reasons))
            return record, verdict
        log.warning("%s disturbed (%s): measuring again", what, "; ".join(reasons))
        earlier.append(reasons)
