"""Module chains shared by the fused-backend parsers (ORT, Inductor, TensorRT)."""

from __future__ import annotations

from collections.abc import Sequence


def common_chain(chains: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[str, str, list[str], list[str]]:
    """The innermost module containing every constituent. Each chain is (module paths, module classes),
    innermost first; returns (path, class, classes innermost first, paths innermost first), empty when the
    constituents share no module (or there are none)."""
    outer_first = [list(zip(reversed(paths), reversed(classes), strict=False)) for paths, classes in chains]
    common: list[tuple[str, str]] = []
    for level in zip(*outer_first, strict=False) if outer_first else ():
        if any(x != level[0] for x in level):
            break
        common.append(level[0])
    if not common:
        return "", "", [], []
    inner_first = common[::-1]
    return inner_first[0][0], inner_first[0][1], [c for _, c in inner_first], [p for p, _ in inner_first]
