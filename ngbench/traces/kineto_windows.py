"""A Kineto trace's iteration windows: ``ProfilerStep#N`` ranges, else ranges matching the iteration marker
(the innermost ones), else the whole trace. Each is clipped to the profiler's record window; windows never
overlap (a repeated step, or steps overlapping by more than :data:`STEP_OVERLAP_TOLERANCE_US`, is an error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ngbench.errors import InputError
from ngbench.traces.kineto_events import PROFILER_STEP, MarkerRange, ParsedTrace

STEP_OVERLAP_TOLERANCE_US = 1.0  # step ranges that overlap by at most this much are clipped, not rejected
WHOLE_TRACE = "whole trace"


@dataclass(frozen=True)
class Window:
    iteration: int
    start: float
    end: float
    name: str


@dataclass(frozen=True)
class Windows:
    windows: list[Window]  # sorted by start, disjoint
    after_record: int  # ranges that lay wholly after the record window (dropped)
    enclosing: int  # marker ranges that enclosed other marker ranges (phases, not iterations)


def compile_marker(iteration_marker: str | None) -> re.Pattern | None:
    if not iteration_marker:
        return None
    try:
        return re.compile(iteration_marker)
    except re.error as exc:
        raise InputError(f"--iteration-marker {iteration_marker!r}: not a valid regular expression: {exc}") from exc


def find(pt: ParsedTrace, path: str | Path) -> Windows:
    """The iteration windows of a collected trace. A range is clipped to the profiler's record window: some
    tools close the step range long after the profiler stopped recording."""
    markers = sorted(pt.markers, key=lambda m: (m.start, -m.end, m.name))
    steps = [m for m in markers if PROFILER_STEP.match(m.name)]
    out: list[Window] = []
    enclosing = 0
    if steps:
        seen: dict[int, float] = {}
        for ts, end, name in steps:
            number = int(PROFILER_STEP.match(name).group(1))
            if number in seen:
                raise InputError(
                    f"{path}: {name} appears twice (at ts {seen[number]} and {ts}): expected one range per step"
                )
            seen[number] = ts
            out.append(Window(number, ts, min(end, pt.record_end), name))
    elif markers:
        leaves = _innermost(markers)
        enclosing = len(markers) - len(leaves)
        out = [Window(i, ts, min(end, pt.record_end), name) for i, (ts, end, name) in enumerate(leaves)]
    elif pt.first_ts <= pt.last_end:
        out.append(Window(0, pt.first_ts, pt.last_end, WHOLE_TRACE))
    kept = [w for w in out if w.end > w.start or (w.end == w.start and w.start < pt.record_end)]
    for i in range(1, len(kept)):
        prev, cur = kept[i - 1], kept[i]
        if cur.start < prev.end:
            if prev.end - cur.start > STEP_OVERLAP_TOLERANCE_US:
                raise InputError(
                    f"{path}: iteration ranges {prev.name!r} [{prev.start}, {prev.end}] and {cur.name!r} "
                    f"[{cur.start}, {cur.end}] overlap by {prev.end - cur.start:.3f} us: expected disjoint "
                    "iterations (use a more specific --iteration-marker)"
                )
            kept[i - 1] = Window(prev.iteration, prev.start, cur.start, prev.name)
    return Windows(kept, len(out) - len(kept), enclosing)


def _innermost(markers: list[MarkerRange]) -> list[MarkerRange]:
    """Marker ranges that enclose no other marker range: a matching range around others is a phase (a
    benchmark's whole measure loop), not an iteration. ``markers`` sorted by start, longest first."""
    out = []
    for i, m in enumerate(markers):
        encloses = any(s >= m.start and e <= m.end for s, e, _ in markers[i + 1 : i + 1 + 64] if s < m.end)
        if not encloses:
            out.append(m)
    return out


def source(windows: list[Window], iteration_marker: str | None) -> str:
    """How the iterations were found, for the run's info."""
    if PROFILER_STEP.match(windows[0].name):
        return "ProfilerStep#N ranges"
    if windows[0].name == WHOLE_TRACE:
        return "whole trace (no ProfilerStep or marker ranges)"
    return f"ranges matching {iteration_marker!r}"
