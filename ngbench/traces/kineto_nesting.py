"""The nesting sweep: one host thread's sorted events -> its top-level operators (:class:`TopLevelOp`), each
with the module scope around it, the compiled region that ran it and the device work it launched.

A top-level op is a PyTorch operator with no enclosing operator on its thread. Module scopes (our
``ngb.module::`` ranges, ``nn.Module: X_N`` Python frames), compiled-region wrappers and transparent
composite ops are scopes: they set the module of what they enclose, and their children are the rows.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from ngbench import names
from ngbench.traces.kineto_events import NN_MODULE, HostEvent, Kind

COMPILED_REGION = re.compile(r"^Torch-Compiled Region: (?P<id>\S+)")  # torch.compile's range, with its compile id
EPS = 1e-3  # 1 ns: trace timestamps carry ns precision in us units


class Scope(NamedTuple):
    """What an open scope range says about the ops inside it."""

    module: str  # the module path of a module scope ("" for a compiled region)
    module_type: str  # its class
    region: str  # the Dynamo compile id ("0/1") of a compiled region ("" for a module scope)


@dataclass(slots=True)
class TopLevelOp:
    op: str  # the operator's name ("" for a launch outside any op, named after its kernel later)
    ts: float
    end: float
    module: str  # the innermost enclosing module scope's path
    module_types: tuple[str, ...]  # the enclosing scopes' classes, innermost first
    shapes: str
    correlations: list[int] = field(default_factory=list)  # of the device work it launched
    args: str = ""  # recorded arguments (HostEvent.args), "" when the trace has none
    host: bool = True  # False: device work with no launching op (a row named after its kernel)
    node: str = ""  # the Dynamo compile id ("0/1") of the compiled region that ran the op, if any


@lru_cache(maxsize=65536)
def scope_of(name: str) -> Scope | None:
    """The scope a SCOPE event opens: a module (path, class), a compiled region (its compile id), or None
    for other wrappers (transparent ops)."""
    if name.startswith(names.MODULE_SCOPE_PREFIX):
        path, _, cls = name[len(names.MODULE_SCOPE_PREFIX) :].rpartition("::")
        return Scope(path, cls, "")
    m = NN_MODULE.match(name)
    if m:
        return Scope(name[len("nn.Module: ") :], m.group("cls"), "")
    m = COMPILED_REGION.match(name)
    if m:
        return Scope("", "", m.group("id"))
    return None


class _Context(NamedTuple):
    module: str
    module_types: tuple[str, ...]
    region: str


def _context(scopes: list[Scope | None]) -> _Context:
    """The module and region the open scopes (outermost first) put an op in."""
    modules = [s for s in reversed(scopes) if s is not None and not s.region]
    region = next((s.region for s in reversed(scopes) if s is not None and s.region), "")
    return _Context(modules[0].module if modules else "", tuple(s.module_type for s in modules), region)


def top_level_ops(events: list[HostEvent], device_correlations: dict | frozenset, jump: bool) -> list[TopLevelOp]:
    """Top-level ops of one thread (``events`` sorted), with module scope and launched correlations.

    ``jump``: the thread holds no runtime (launch) events, so nothing inside a top-level op matters and the
    sweep jumps over its children. A range that starts inside another and ends after it (a damaged trace:
    one thread's ranges nest) is treated as ending with its parent."""
    rows: list[TopLevelOp] = []
    ends: list[float] = []  # end time of each open range
    scopes: list[Scope | None] = []  # per open range: the scope it opens, if any
    current: _Context | None = None  # the context of the open scopes, computed when an op needs it
    owner: TopLevelOp | None = None  # the open top-level op
    owner_depth = -1
    starts = [e.ts for e in events] if jump else None
    OP, SCOPE, RUNTIME = Kind.OP, Kind.SCOPE, Kind.RUNTIME
    i, hi = 0, len(events)
    while i < hi:
        ts, _neg_dur, kind, end, name, shapes, recorded, correlation = events[i]
        i += 1
        while ends and ends[-1] <= ts + EPS:
            ends.pop()
            if scopes.pop() is not None:
                current = None
            if len(ends) == owner_depth:
                owner, owner_depth = None, -1
        if kind == RUNTIME:
            if owner is not None:
                if correlation is not None:
                    owner.correlations.append(correlation)
            elif correlation in device_correlations:  # device work launched outside any op
                current = current or _context(scopes)
                rows.append(TopLevelOp("", ts, ts, current.module, current.module_types, "", [correlation],
                                       node=current.region))  # fmt: skip
            continue
        if ends and end > ends[-1]:
            end = ends[-1]  # a range cannot outlive its parent on one thread
        if kind == OP and owner is None:
            current = current or _context(scopes)
            owner = TopLevelOp(name, ts, end, current.module, current.module_types, shapes, [], node=current.region,
                               args=recorded)  # fmt: skip
            rows.append(owner)
            if starts is not None:  # skip the op's children: next event starting at or after its end
                i = bisect.bisect_left(starts, end - EPS, i, hi)
                owner = None
                continue
            owner_depth = len(ends)
        ends.append(end)
        if kind == SCOPE:
            scope = scope_of(name)
            scopes.append(scope)
            if scope is not None:
                current = None
        else:
            scopes.append(None)
    return rows
