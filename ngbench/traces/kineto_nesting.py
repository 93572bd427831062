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
from ngbench.traces.kineto_events import EPS, NN_MODULE, Kind, ThreadEvents

COMPILED_REGION = re.compile(r"^Torch-Compiled Region: (?P<id>\S+)")  # torch.compile's range, with its compile id


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
    args: str = ""  # recorded arguments (ThreadEvents.args), "" when the trace has none
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


class Context(NamedTuple):
    """Where an op runs: inside which modules (innermost first) and which compiled region."""

    module: str  # the innermost module scope's path
    module_types: tuple[str, ...]  # the classes of the enclosing module scopes, innermost first
    region: str  # the innermost compiled region's compile id


OUTSIDE = Context("", (), "")


def enter(context: Context, scope: Scope | None) -> Context:
    """The context inside ``scope`` opened in ``context``."""
    if scope is None:
        return context
    if scope.region:
        return Context(context.module, context.module_types, scope.region)
    return Context(scope.module, (scope.module_type, *context.module_types), context.region)


def top_level_ops(events: ThreadEvents, device_correlations: dict | frozenset, jump: bool) -> list[TopLevelOp]:
    """Top-level ops of one thread, with module scope and launched correlations.

    ``jump``: the thread holds no runtime (launch) events, so nothing inside a top-level op matters and the
    sweep jumps over its children. A range that starts inside another and ends after it (a damaged trace:
    one thread's ranges nest) is treated as ending with its parent."""
    order, starts, after = events.sweep_order()
    durations, kinds, event_names = events.dur, events.kind, events.name
    shapes_of, args_of, correlation_of = events.shapes, events.args, events.correlation
    rows: list[TopLevelOp] = []
    ends: list[float] = []  # end time of each open range
    contexts: list[Context] = [OUTSIDE]  # the context inside each open range (OUTSIDE: none open)
    owner: TopLevelOp | None = None  # the open top-level op
    owner_depth = -1
    OP, SCOPE, RUNTIME = Kind.OP, Kind.SCOPE, Kind.RUNTIME
    n, hi = 0, len(order)
    while n < hi:
        at, ts = order[n], starts[n]
        n += 1
        while ends and ends[-1] <= ts + EPS:
            ends.pop()
            contexts.pop()
            if len(ends) == owner_depth:
                owner, owner_depth = None, -1
        kind = kinds[at]
        if kind == RUNTIME:
            correlation = correlation_of.get(at)
            if owner is not None:
                if correlation is not None:
                    owner.correlations.append(correlation)
            elif correlation in device_correlations:  # device work launched outside any op
                c = contexts[-1]
                rows.append(TopLevelOp("", ts, ts, c.module, c.module_types, "", [correlation], node=c.region))
            continue
        end = ts + durations[at]
        clipped = bool(ends) and end > ends[-1]
        if clipped:
            end = ends[-1]  # a range cannot outlive its parent on one thread
        if kind == OP and owner is None:
            c = contexts[-1]
            owner = TopLevelOp(event_names[at], ts, end, c.module, c.module_types, shapes_of.get(at, ""), [],
                               node=c.region, args=args_of.get(at, ""))  # fmt: skip
            rows.append(owner)
            if jump:  # skip the op's children: next event starting at or after its end
                n = bisect.bisect_left(starts, end - EPS, n, hi) if clipped else max(n, after[n - 1])
                owner = None
                continue
            owner_depth = len(ends)
        ends.append(end)
        contexts.append(enter(contexts[-1], scope_of(event_names[at])) if kind == SCOPE else contexts[-1])
    return rows
