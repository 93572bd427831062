"""The scorecard's claims: measured on small share tables whose answers are worked out by hand."""

import pandas as pd
import pytest

from ngbench.analysis import claims
from ngbench.figures import paper, scorecard
from ngbench.figures.specs import FIGURES

NAMES = paper.section("group_names")


def share_rows(platform, device, model, bs, groups, backend="torch"):
    """Shares of one run: its groups (ours) and the GEMM / non-GEMM classes they imply (pct_mean)."""
    base = {"platform": platform, "device": device, "backend": backend, "model": model, "batch_size": bs,
            "status": "ok"}  # fmt: skip
    rows = [{**base, "level": "group", "group": g, "pct_mean": v} for g, v in groups.items()]
    gemm, idle = groups.get("GEMM", 0.0), groups.get("Idle", 0.0)
    rows += [{**base, "level": "class", "group": "GEMM", "pct_mean": gemm},
             {**base, "level": "class", "group": "non-GEMM", "pct_mean": 100.0 - gemm - idle}]  # fmt: skip
    return rows


SHARES = pd.DataFrame(
    share_rows("cpu", "cpu", "swin-t", 1, {"GEMM": 80, "Memory": 10, "Elementwise": 4, "Reduction": 2, "Idle": 4})
    + share_rows("cpu", "cpu", "swin-t", 2, {"GEMM": 90, "Memory": 6, "Idle": 4})
    + share_rows("cpu", "cpu", "detr", 1, {"GEMM": 60, "Normalization": 30, "Idle": 10})
    + share_rows("a100", "cuda", "swin-t", 1, {"GEMM": 50, "Memory": 30, "Elementwise": 15, "Idle": 5})
    + share_rows("a100", "cuda", "detr", 1, {"GEMM": 40, "Normalization": 36, "Idle": 24})
)
EVIDENCE = claims.Evidence(shares=SHARES, group_names=NAMES)


def claim(kind, value, unit="%", **needs_and_measure):
    measure = {"kind": kind, **{k: v for k, v in needs_and_measure.items() if k in ("group", "over", "column")}}
    needs = {k: v for k, v in needs_and_measure.items() if k in ("device", "backend", "models")}
    return {"id": "X", "claim": "test", "value": value, "unit": unit, "source": "test", "needs": needs,
            "measure": measure}  # fmt: skip


def test_ranges_over_runs_and_over_models():
    # GEMM per run: 80, 90, 60 (CPU), 50, 40 (GPU) -> 40 - 90 over every run
    r = claims.measure(claim("class_range", [42.8, 96.6], group="GEMM", over="run", backend="torch"), EVIDENCE)
    assert r.ours == (40.0, 90.0) and r.runs == 5
    assert r.verdict == claims.DIFFERS and r.reason.startswith("-2.8 pp, -6.6 pp")
    # non-GEMM per model: swin-t (16, 6, 45) -> 22.33; detr (30, 36) -> 33 -> 22.3 - 33.0
    r = claims.measure(claim("class_range", [20, 35], group="non-GEMM", over="model", backend="torch"), EVIDENCE)
    assert r.ours == pytest.approx((67 / 3, 33.0)) and r.verdict == claims.REPRODUCED


def test_a_claim_over_a_figures_results_reads_only_the_models_that_figure_draws():
    c = claim("class_range", [42.8, 96.6], group="GEMM", over="run", backend="torch")
    c["needs"]["figure"] = "fig6"
    # fig6 draws detr only here: GEMM per run 60 (CPU), 40 (GPU); swin-t's 80, 90, 50 are left out
    ev = claims.Evidence(shares=SHARES, group_names=NAMES, figure_models={"fig6": ["detr"]})
    r = claims.measure(c, ev)
    assert r.ours == (40.0, 60.0) and r.runs == 2
    assert scorecard._needs(c["needs"]).startswith("the models fig6 draws")
    with pytest.raises(ValueError, match="claim X: needs the models of 'fig6'"):
        claims.measure(c, EVIDENCE)


def test_every_figure_a_claim_names_is_a_figure():
    assert set(scorecard.claim_figures()) <= set(FIGURES) and "fig6" in scorecard.claim_figures()


def test_a_paper_group_sums_the_groups_of_ours_that_map_to_it():
    # the paper's arithmetic = our Elementwise + Reduction: swin-t bs1 CPU 4 + 2
    c = claim("group_mean", 6.0, group="Elementwise", device="cpu", backend="torch", models=["swin-t"])
    r = claims.measure(c, EVIDENCE)
    assert r.ours == pytest.approx((6 + 0) / 2) and r.runs == 2  # bs2 has none: 0, still a run


def test_a_gpu_claim_uses_gpu_runs_and_says_what_is_missing_without_them():
    c = claim("group_mean", 32.0, group="Memory", device="cuda", backend="torch", models=["swin-t"])
    r = claims.measure(c, EVIDENCE)
    assert r.ours == 30.0 and r.verdict == claims.REPRODUCED and r.reason == "-2.0 pp"
    cpu_only = claims.Evidence(shares=SHARES[SHARES.device == "cpu"], group_names=NAMES)
    r = claims.measure(c, cpu_only)
    assert r.verdict == claims.NOT_HERE and "needs a CUDA platform" in r.reason
    change = claim("device_change", [17.2, 42.3], group="non-GEMM", device=["cpu", "cuda"], backend="torch")
    r = claims.measure(change, EVIDENCE)
    # CPU: (16 + 6 + 30) / 3 = 17.33; GPU: (45 + 36) / 2 = 40.5
    assert r.ours == pytest.approx((52 / 3, 40.5)) and r.verdict == claims.REPRODUCED


def test_the_verdict_rule():
    assert claims.verdict(claim("group_mean", 30.0), 36.0) == (claims.DIFFERS, "+6.0 pp")
    assert claims.verdict(claim("x", 13.5, unit="x"), 12.0)[0] == claims.REPRODUCED  # -11% relative
    assert claims.verdict(claim("x", 13.5, unit="x"), 7.0)[0] == claims.DIFFERS
    verdict, gap = claims.verdict(claim("backend_change", [56.4, 32.2]), (40.0, 42.0))
    assert verdict == claims.DIFFERS and "opposite direction" in gap
    assert claims.verdict(claim("table1", 28), 26, rows=28)[0] == claims.REPRODUCED  # 93% of rows
    assert claims.verdict(claim("table1", 28), 20, rows=28)[0] == claims.DIFFERS


def test_tables_count_their_matching_rows():
    table1 = pd.DataFrame({"paper_shape_observed": [True, False, True, None]})
    table2 = pd.DataFrame({"paper_M": [86.0, 307.0, None], "ratio_to_paper": [1.01, 0.28, None]})
    ev = claims.Evidence(shares=SHARES, tables={"table1": table1, "table2": table2}, group_names=NAMES)
    assert claims.measure(claim("table1", 28), ev).ours == 2
    r = claims.measure(claim("table2", 17), ev)
    assert (r.ours, r.runs) == (1, 2)  # one of the two models with a paper value within 5%


def test_every_claim_of_the_paper_has_a_row_even_with_no_results(tmp_path):
    empty = claims.Evidence(shares=pd.DataFrame(columns=["platform", "device", "backend", "model", "status"]),
                            group_names=NAMES, figure_models={f: [] for f in scorecard.claim_figures()})  # fmt: skip
    df = scorecard.table(empty)
    ids = [c["id"] for c in paper.section("claims")]
    assert list(df["id"]) == ids and len(set(ids)) == len(ids)
    assert {f"N{i}" for i in range(1, 23)} | {"T1", "T2", "T4", "T5"} == set(ids)
    assert (df["verdict"] == claims.NOT_HERE).all() and df["detail"].str.len().gt(0).all()
    scorecard.write(df, tmp_path / "s.csv", tmp_path / "s.md")
    text = (tmp_path / "s.md").read_text()
    assert "26 claims: 0 reproduced, 0 differs, 26 not measurable here" in text and "FrozenBatchNorm2d" in text


def test_the_drill_down_names_the_groups_and_ops_that_part_the_metrics():
    compat_rows = pd.DataFrame(
        [
            {"platform": "a100", "device": "cuda", "backend": "torch", "model": "swin-t", "batch_size": 1,
             "status": "ok", "level": "group", "group": "memory", "pct": 31.0, "name": None, "latency_us": 310.0},
            {"platform": "a100", "device": "cuda", "backend": "torch", "model": "swin-t", "batch_size": 1,
             "status": "ok", "level": "op", "group": "memory", "pct": 20.0, "name": "aten::view", "latency_us": 200.0},
        ]
    )  # fmt: skip
    ev = claims.Evidence(shares=SHARES, compat=compat_rows, group_names=NAMES)
    c = claim("group_mean", 32.0, group="Memory", device="cuda", backend="torch", models=["swin-t"])
    text = claims.drill_down(c, ev)
    # ours: Memory 30% of the GPU swin-t run; compat: 31%, carried by view
    assert text.startswith("over 1 runs: ") and "memory 31.0% under compat vs 30.0% ours (+1.0 pp)" in text
    assert "(largest: aten::view)" in text
