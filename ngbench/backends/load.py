"""How busy the machine was while a phase was measured: other processes' CPU use (cores) and the load average,
from psutil. A shared machine or cluster node disturbs measurements; the run records it so its numbers can be
judged (``ngbench.jobs.trust``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _busy_seconds(times) -> float:
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return sum(times) - idle


@contextmanager
def measured_phase(record: dict[str, Any], name: str) -> Iterator[None]:
    """Record ``record[name]``: wall seconds, this process's CPU cores in use, every other process's (system
    busy CPU time minus ours, over the wall time) and the 1-minute load average before and after."""
    import psutil

    me = psutil.Process()
    sys0, own0, t0 = psutil.cpu_times(), me.cpu_times(), time.perf_counter()
    load0 = os.getloadavg()[0]
    try:
        yield
    finally:
        wall = max(time.perf_counter() - t0, 1e-9)
        sys1, own1 = psutil.cpu_times(), me.cpu_times()
        system = _busy_seconds(sys1) - _busy_seconds(sys0)
        own = (own1.user + own1.system) - (own0.user + own0.system)
        record[name] = {
            "wall_s": wall,
            "own_cpu_cores": own / wall,
            "others_cpu_cores": max(0.0, (system - own) / wall),
            "loadavg_1m_before": load0,
            "loadavg_1m_after": os.getloadavg()[0],
            "cpu_count": psutil.cpu_count(),
        }
