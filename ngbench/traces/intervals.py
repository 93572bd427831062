"""Interval arithmetic shared by the trace parsers."""

from __future__ import annotations

from collections import defaultdict


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def split_busy_time(owned: list[tuple[float, float, int]]) -> dict[int, float]:
    """Split the union of intervals among owners: at each instant, equal shares to the active owners."""
    points: list[tuple[float, int, int]] = []
    for s, e, owner in owned:
        if e > s:
            points.append((s, 1, owner))
            points.append((e, -1, owner))
    points.sort(key=lambda p: (p[0], p[1]))
    active: dict[int, int] = defaultdict(int)
    share: dict[int, float] = defaultdict(float)
    prev = None
    for t, delta, owner in points:
        if prev is not None and t > prev and active:
            piece = (t - prev) / len(active)
            for o in active:
                share[o] += piece
        active[owner] += delta
        if active[owner] == 0:
            del active[owner]
        prev = t
    return share
