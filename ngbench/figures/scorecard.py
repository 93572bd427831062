"""The scorecard: one row per numeric claim of the paper (``paper.yaml`` ``claims:``), the paper's value
beside ours measured the same way (our metric, and the original's ``compat`` metric where it applies), and a
verdict by the rule in :mod:`ngbench.analysis.claims`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ngbench.analysis import claims
from ngbench.figures import paper

TITLE = "Scorecard: the paper's claims, measured here"
COLUMNS = [
    "id",
    "claim",
    "source",
    "needs",
    "paper",
    "ours",
    "ours_compat",
    "verdict",
    "detail",
    "runs",
    "disturbed_runs",
    "gap",
]
DRILL_DOWN = 5  # the largest differences get an explanation from the data


RANGES = ("class_range",)  # a pair that is a range (low - high); other pairs are changes (before -> after)


def _fmt(value, unit: str, kind: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        sep = " - " if kind in RANGES else " -> "
        return sep.join(_fmt(v, unit) for v in value)
    if isinstance(value, float):
        return f"{value:.1f}{unit}" if unit in ("%", "x") else f"{value:.3g} {unit}"
    return f"{value}{unit}" if unit in ("%", "x") else f"{value} {unit}"


def claim_figures() -> list[str]:
    """The figures whose models some claim reads (``needs: {figure: ...}``); the workflow lists their models."""
    return sorted({c["needs"]["figure"] for c in paper.section("claims") if c["needs"].get("figure")})


def _needs(needs: dict) -> str:
    parts = [f"the models {needs['figure']} draws"] if needs.get("figure") else []
    for key in ("device", "backend", "models"):
        if needs.get(key) not in (None, "any"):
            value = needs[key]
            parts.append(f"{key} {', '.join(value) if isinstance(value, list) else value}")
    return "; ".join(parts) or "any run"


def table(evidence: claims.Evidence) -> pd.DataFrame:
    rows = []
    for claim in paper.section("claims"):
        unit, kind = claim.get("unit", "%"), claim["measure"]["kind"]
        result = claims.measure(claim, evidence)
        value = claim["value"]
        rows.append(
            {
                "id": claim["id"],
                "claim": claim["claim"],
                "source": claim["source"],
                "needs": _needs(claim["needs"]),
                "paper": _fmt(value, unit, kind),
                "ours": (f"{result.ours} of {result.runs}" if result.ours is not None else "")
                if kind in claims.TABLE_KINDS
                else _fmt(result.ours, unit, kind),
                "ours_compat": _fmt(result.compat, unit, kind),
                "verdict": result.verdict,
                "detail": result.reason,
                "runs": result.runs,
                "disturbed_runs": claims.disturbed_runs(claim, evidence),
                "gap": round(result.gap, 2),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def drill_downs(df: pd.DataFrame, evidence: claims.Evidence) -> list[str]:
    """For the largest differences, where compat and ours part (a claim about group shares only)."""
    by_id = {c["id"]: c for c in paper.section("claims")}
    lines = []
    for r in df[df["verdict"] == claims.DIFFERS].nlargest(DRILL_DOWN, "gap").itertuples():
        claim = by_id[r.id]
        if claim["measure"]["kind"] not in claims.SHARE_KINDS:
            continue
        text = claims.drill_down(claim, evidence)
        if not text:
            continue
        result = claims.measure(claim, evidence)
        if result.compat is not None:
            apart = claims.distance(result.ours, result.compat)
            paper_gap = claims.distance(result.ours, claim["value"])
            share = "little of" if apart < paper_gap / 3 else "part of" if apart < paper_gap else "most of"
            text += (
                f". The metric explains {share} the gap: ours and compat are {apart:.1f} pp apart, ours and the "
                f"paper {paper_gap:.1f} pp; the rest is the system and the runs (see the needs column)"
            )
        lines.append(f"- **{r.id}** ({r.claim}; paper {r.paper}, ours {r.ours}): {text}")
    return lines


def write(df: pd.DataFrame, csv: str | Path, md: str | Path, drill: list[str] | None = None) -> None:
    df.to_csv(csv, index=False)
    counts = df["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in (claims.REPRODUCED, claims.DIFFERS, claims.NOT_HERE))
    confounders = "\n".join(f"- {c}" for c in paper.section("confounders"))
    mapping = ", ".join(f"{ours} -> {theirs}" for ours, theirs in paper.section("group_names").items() if theirs)
    Path(md).write_text(
        f"# {TITLE}\n\n{len(df)} claims: {summary}.\n\n**Verdict rule.** {claims.VERDICT_RULE}\n\n"
        f"**Metrics.** ours: share of the measured iteration (attributed time; mean over iterations and runs). "
        f"ours_compat: the original study's metric from the same traces (PyTorch eager runs only; "
        f"`ngbench normalize --metric compat`).\n\n{df.to_markdown(index=False)}\n\n"
        + ("**The largest differences, from the data**\n\n" + "\n".join(drill) + "\n\n" if drill else "")
        + f"**Where our groups and runs differ from the paper's**\n\n{confounders}\n\n"
        f"Group names, ours -> the paper's: {mapping}.\n"
    )


def make(i: dict, o: dict, p: dict) -> None:
    """The workflow's job: every claim against the runs' shares, the original metric and the tables."""
    from ngbench.analysis import compat, shares
    from ngbench.figures import tables

    evidence = claims.Evidence(
        shares=shares.read(i["shares"]),
        compat=compat.read(i["compat"]),
        tables={name: tables.read(i[name]) for name in ("table1", "table2", "table4", "table5", "fig9_summary")},
        group_names=paper.section("group_names"),
        figure_models=p["figure_models"],
    )
    df = table(evidence)
    write(df, o["csv"], o["md"], drill_downs(df, evidence))
