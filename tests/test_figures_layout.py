"""How figures say what they cannot draw, and how wide they get: the layout's rules, then real PNGs."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

from ngbench import names
from ngbench.figures import comparison, fig5, style


def platforms(**devices: str) -> pd.DataFrame:
    return pd.DataFrame({"platform": list(devices), "device": list(devices.values())})


def test_a_reason_for_a_whole_panel_is_one_line_and_a_figure_without_panels_draws_nothing():
    def slots(rows, kind):  # 17 models, every counter unreadable for one reason
        return [style.Slot(f"m{i}", "n/a: no RAPL", "CPU") for i in range(17)]

    plan = style.layout(platforms(cpu="cpu"), slots)
    assert plan.panels == [] and plan.footnotes == []
    assert plan.said_once == [
        "CPU-only - platform cpu: n/a: no RAPL (all 17 cells)",
        f"CPU+GPU: {style.NO_GPU}",
    ]


def test_a_series_missing_everywhere_in_a_panel_is_said_once_and_not_drawn():
    def slots(rows, kind):
        out = []
        for m in ("a", "b", "c"):
            out += [style.Slot(f"{m} torch", None, "torch"), style.Slot(f"{m} trt", "TensorRT needs a GPU", "trt")]
        out[2] = style.Slot("b torch", "failed: boom", "torch")  # one failure among drawn bars
        return out

    plan = style.layout(platforms(cpu="cpu"), slots)
    (panel,) = plan.panels
    assert [s.label for s in panel.slots] == ["a torch", "b torch", "c torch"]
    assert "CPU-only - platform cpu: trt: TensorRT needs a GPU (3 cells, not drawn)" in plan.said_once
    assert plan.footnotes == ["[1] b torch: failed: boom"] and panel.slots[1].footnote == 1


def test_a_wide_panel_wraps_into_even_rows_of_at_most_max_slots():
    def slots(rows, kind):
        return [style.Slot(f"m{i}") for i in range(2 * style.MAX_SLOTS + 3)]

    plan = style.layout(platforms(cpu="cpu", h100="cuda"), slots)
    titles = [p.title for p in plan.panels]
    assert titles == [f"CPU-only - platform cpu ({i}/3)" for i in (1, 2, 3)] + [
        f"CPU+GPU - platform h100 ({i}/3)" for i in (1, 2, 3)
    ]
    per_row = -(-(2 * style.MAX_SLOTS + 3) // 3)  # three rows, the bars shared out evenly
    assert [len(p.slots) for p in plan.panels] == [per_row, per_row, 2 * style.MAX_SLOTS + 3 - 2 * per_row] * 2
    assert max(len(p.slots) for p in plan.panels) <= style.MAX_SLOTS
    assert plan.said_once == []  # both columns have a platform: nothing to say about either


def test_one_reason_one_number_however_many_cells():
    def slots(rows, kind):
        return [style.Slot("x", None), style.Slot("y", "ort not run"), style.Slot("z", "ort not run"),
                style.Slot("w", "failed: e")]  # fmt: skip

    plan = style.layout(platforms(cpu="cpu"), slots)
    assert [s.footnote for s in plan.panels[0].slots] == [0, 1, 1, 2]
    assert plan.footnotes == ["[1] y, z: ort not run", "[2] w: failed: e"]


def shares_of(models: int, backends: list[str]) -> pd.DataFrame:
    rows = []
    for m in range(models):
        for b in backends:
            for group, pct in (("GEMM", 60.0), ("Memory", 25.0), ("Idle", 15.0)):
                rows.append({"platform": "cpu", "device": "cpu", "backend": b, "model": f"model-{m:02d}",
                             "batch_size": 1, "status": names.STATUS_OK, "reason": None, "level": "fusion",
                             "group": group, "pct_mean": pct, "layers": None, "full_depth": None})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("models", [3, 40])
def test_a_comparison_figure_stays_readable_at_its_natural_size(tmp_path, models):
    """40 models x 2 drawn backends and a GPU-only one: rows of at most MAX_SLOTS bars, never wider than a
    screen, growing down instead; the GPU-only backend is one line, not 40 hatched bars."""
    data = comparison.select(shares_of(models, ["torch", "inductor"]), models=[f"model-{m:02d}" for m in
                             range(models)], backends=["torch", "inductor", "trt"], level="fusion")  # fmt: skip
    plan = style.layout(data, comparison.slots)
    assert len(plan.panels) == -(-2 * models // style.MAX_SLOTS)
    assert plan.said_once[0] == f"CPU-only - platform cpu: trt: TensorRT needs a GPU ({models} cells, not drawn)"
    png = tmp_path / "f.png"
    comparison.plot(data, png, order=["GEMM", "Memory", "Idle"], palette={"GEMM": "#111", "Memory": "#555",
                    "Idle": "#ddd"}, title="a comparison")  # fmt: skip
    width, height = Image.open(png).size
    assert width <= style.DPI * (1.6 + style.SLOT_INCHES * style.MAX_SLOTS) + 1
    assert height >= style.DPI * style.PANEL_INCHES * len(plan.panels)


def test_fig5_without_any_counter_is_one_short_figure(tmp_path):
    records = [{"platform": "cpu", "device": "cpu", "model": f"m{i}", "batch_size": 1, "status": "ok",
                "cpu": {"status": "n/a", "reason": "no powercap"}, "gpu": None} for i in range(17)]  # fmt: skip
    fig5.plot(records, tmp_path / "fig5.png", tmp_path / "fig5.csv")
    width, height = Image.open(tmp_path / "fig5.png").size
    assert width <= 9 * style.DPI + 1 and height < 2 * style.DPI  # a title and two lines, not 17 hatched bars
    assert len(pd.read_csv(tmp_path / "fig5.csv")) == 34  # the data still holds every cell and its reason
