"""ngbench compare: pairing by module (folded where a backend fused modules away), by group, added/removed
units, bootstrap intervals with their correction, and the iterations a change needs. Expected values are
worked by hand in the comments."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_ngbench

from ngbench import table as optable
from ngbench.analysis import compare as cmp
from ngbench.errors import InputError


def op_table(iterations: list[list[tuple]], *, backend="torch", model="m", batch_size=1, idle_us=10.0):
    """An op table from rows (op, module, group, time_us[, fused_ops]) per iteration; each iteration's Idle row
    is ``idle_us``, so the iteration time is the rows' sum plus it."""
    cols = {c: [] for c in optable.COLUMNS}
    its, seqs, totals = [], [], []
    for it, rows in enumerate(iterations):
        for seq, row in enumerate(rows):
            op, module, group, us, *fused = row
            values = {"op": op, "node": "", "module": module, "module_type": "", "group": group,
                      "group_source": "module", "is_gemm": group == "GEMM", "time_us": us, "device_time_us": None,
                      "host_time_us": us, "input_shapes": "", "fused_ops": fused[0] if fused else [], "bytes": None,
                      "flops": None, "work_source": "none", "layout": ""}  # fmt: skip
            for key, value in values.items():
                cols[key].append(value)
            its.append(it)
            seqs.append(seq)
        optable.append_idle_row(cols, idle_us)
        its.append(it)
        seqs.append(len(rows))
        totals += [sum(r[3] for r in rows) + idle_us] * (len(rows) + 1)
    cols["iteration"], cols["seq"], cols["iteration_time_us"] = its, seqs, totals
    df = optable.frame(
        cols, platform="cpu", device="cpu", backend=backend, model=model, batch_size=batch_size, seq_len=None
    )
    optable.check(df)
    return df


def by_unit(result, run):
    return result.units[result.units.run == run].set_index("unit")


def test_an_inductor_kernel_that_fused_layernorm_and_linear_pairs_with_the_eager_block():
    # eager: blk.ln 30 (Normalization), blk.fc 50 (GEMM), blk's own add 5; head 20 -> blk = 85 when folded
    # inductor: one kernel owned by blk (the common parent of ln and fc) 60; head 21
    eager = [
        [
            ("aten::layer_norm", "blk.ln", "Normalization", 30 + d),
            ("aten::linear", "blk.fc", "GEMM", 50),
            ("aten::add", "blk", "Elementwise", 5),
            ("aten::linear", "head", "GEMM", 20),
        ]
        for d in (-1, 0, 1, 0)
    ]
    fused = ["aten::native_layer_norm|ln|blk.ln|LayerNorm", "aten::addmm|fc|blk.fc|Linear"]
    inductor = [[("cpp_fused_layer_norm_addmm_0", "blk", "GEMM", 60 + d, fused),
                 ("aten::linear", "head", "GEMM", 21)] for d in (0, 1, -1, 0)]  # fmt: skip
    result = cmp.compare(
        [cmp.Run("eager", op_table(eager)), cmp.Run("inductor", op_table(inductor, backend="inductor"))]
    )
    units = by_unit(result, "inductor")
    assert set(units.index) == {"blk", "head"}  # blk.ln and blk.fc folded into blk in both runs
    assert units.loc["blk", "baseline_us"] == pytest.approx(85.0) and units.loc["blk", "run_us"] == pytest.approx(60.0)
    assert units.loc["blk", "delta_us"] == pytest.approx(-25.0) and units.loc["blk", "verdict"] == "faster"
    assert units.loc["blk", "status"] == "paired"
    assert any("2 module(s) folded" in n for n in result.notes)
    groups = result.groups[result.groups.run == "inductor"].set_index("unit")
    # by group: Normalization 30 -> 0 (fused into the GEMM kernel), GEMM 70 -> 81
    assert groups.loc["Normalization", "delta_us"] == pytest.approx(-30.0)
    assert groups.loc["GEMM", "delta_us"] == pytest.approx(11.0)


def test_a_tensorrt_layer_fused_across_two_modules_pairs_with_their_common_parent():
    # eager: enc.a.conv 40, enc.a's own op 3, enc.b.relu 7, head 10; TensorRT: one layer over conv and relu,
    # owned by enc (their common parent) 35, and head 10 -> enc: 50 vs 35
    eager = [
        [
            ("aten::conv2d", "enc.a.conv", "GEMM", 40),
            ("aten::add", "enc.a", "Elementwise", 3),
            ("aten::relu", "enc.b.relu", "Activation", 7),
            ("aten::linear", "head", "GEMM", 10),
        ]
    ] * 3
    layer = ["Conv|conv|enc.a.conv|Conv2d", "Relu|relu|enc.b.relu|ReLU"]
    trt = [[("CaskConvolution", "enc", "GEMM", 35, layer), ("CaskGemm", "head", "GEMM", 10)]] * 3
    result = cmp.compare([cmp.Run("eager", op_table(eager)), cmp.Run("trt", op_table(trt, backend="trt"))])
    units = by_unit(result, "trt")
    assert set(units.index) == {"enc", "head"}
    assert units.loc["enc", "baseline_us"] == pytest.approx(50.0) and units.loc["enc", "run_us"] == pytest.approx(35.0)
    # no spread at all: the interval is the point, and -15 us is a clear change
    assert units.loc["enc", "ci_low_us"] == pytest.approx(-15.0) and units.loc["enc", "verdict"] == "faster"
    assert units.loc["head", "verdict"] == "no clear change" and units.loc["head", "delta_us"] == 0


def test_units_only_one_run_has_are_listed_not_dropped():
    base = [[("aten::linear", "fc", "GEMM", 10), ("aten::gelu", "act", "Activation", 4)]] * 3
    other = [[("aten::linear", "fc", "GEMM", 10), ("extern_kernels.addmm", "", "GEMM", 5)]] * 3
    result = cmp.compare([cmp.Run("a", op_table(base)), cmp.Run("b", op_table(other))])
    units = by_unit(result, "b")
    assert units.loc["act", "status"] == "removed" and units.loc["act", "delta_us"] == pytest.approx(-4.0)
    # a row without a module pairs by its group
    assert units.loc["(no module) GEMM", "status"] == "added" and units.loc["(no module) GEMM", "run_us"] == 5


def test_a_difference_inside_the_noise_is_no_clear_change():
    # the same five values in another order: means equal (100), spread 7.9 us
    base = [[("aten::softmax", "attn", "Logit", v)] for v in (100, 110, 90, 105, 95)]
    other = [[("aten::softmax", "attn", "Logit", v)] for v in (95, 105, 100, 110, 90)]
    result = cmp.compare([cmp.Run("a", op_table(base)), cmp.Run("b", op_table(other))])
    row = by_unit(result, "b").loc["attn"]
    assert row.delta_us == 0 and row.ci_low_us < 0 < row.ci_high_us and row.verdict == "no clear change"
    # iterations for a 10 us change: 2 * ((z_0.975 + z_0.8) * 7.91 / 10)^2 = 2 * (2.802 * 0.791)^2 = 9.82 -> 10
    assert row.iterations_for_10pct == 10
    assert row.interval_level == pytest.approx(0.95)  # one unit: nothing to correct


def test_a_planted_ten_percent_slowdown_is_found_with_the_iterations_the_spread_needs():
    """Twenty modules with the per-module spread measured in the workflow study on this CPU (tiny GPT-2,
    eager, coefficient of variation over iterations: median 0.19), one slowed down by 10%."""
    rng = np.random.default_rng(7)
    means = {f"h.{i}.mlp": 50.0 + 10 * i for i in range(20)}
    cv = 0.19

    def run(n, slow):
        return [[("aten::op", m, "Activation", mu * (1.1 if m == slow else 1.0) * rng.lognormal(0, cv))
                 for m, mu in means.items()] for _ in range(n)]  # fmt: skip

    # with the study's 3 profiled iterations the change is not distinguishable, and the tool says so
    few = cmp.compare([cmp.Run("a", op_table(run(3, None))), cmp.Run("b", op_table(run(3, "h.7.mlp")))])
    planted = by_unit(few, "b").loc["h.7.mlp"]
    assert planted.verdict == "no clear change" and planted.iterations_for_10pct > 20
    n = int(planted.iterations_for_10pct * 1.2)
    many = cmp.compare([cmp.Run("a", op_table(run(n, None))), cmp.Run("b", op_table(run(n, "h.7.mlp")))])
    units = by_unit(many, "b")
    assert units.loc["h.7.mlp", "verdict"] == "slower"
    assert units.loc["h.7.mlp", "delta_pct"] == pytest.approx(10, abs=4)
    others = units.drop("h.7.mlp")
    assert (others.verdict == "no clear change").sum() >= 18  # family-wise 5%: at most a stray one
    assert units.loc["h.7.mlp", "interval_level"] == pytest.approx(1 - 0.05 / 20)  # Bonferroni over 20 units


def test_runs_of_different_models_are_refused_and_batch_sizes_labelled():
    a = op_table([[("aten::relu", "r", "Activation", 1.0)]], model="gpt2")
    b = op_table([[("aten::relu", "r", "Activation", 1.0)]], model="swin-t")
    with pytest.raises(InputError, match=r"runs of different models .*a \(gpt2\), b \(swin-t\)"):
        cmp.compare([cmp.Run("a", a), cmp.Run("b", b)])
    c = op_table([[("aten::relu", "r", "Activation", 2.0)]], model="gpt2", batch_size=2)
    result = cmp.compare([cmp.Run("a", a), cmp.Run("c", c)])
    assert any(n.startswith("batch_size differs: a 1, c 2") for n in result.notes)
    with pytest.raises(InputError, match="at least two runs"):
        cmp.compare([cmp.Run("a", a)])


def test_the_command_line_reads_op_tables_and_writes_its_outputs(tmp_path):
    eager = [[("aten::layer_norm", "blk.ln", "Normalization", 30.0 + d), ("aten::linear", "blk.fc", "GEMM", 50.0)]
             for d in (0, 1, 2)]  # fmt: skip
    fused = [[("kernel", "blk", "GEMM", 60.0 + d, ["a|b|blk.ln|LayerNorm", "c|d|blk.fc|Linear"])] for d in (0, 1, 2)]
    for rows, backend in ((eager, "torch"), (fused, "inductor")):
        optable.write(op_table(rows, backend=backend), tmp_path / "results/ops/cpu" / backend / "m/bs1.parquet",
                      run={"status": "ok"})  # fmt: skip
    res = run_ngbench("compare", "cpu/torch/m/bs1", "cpu/inductor/m/bs1", "--out", "out/cmp", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "baseline: torch" in res.stdout and "blk" in res.stdout and "faster" in res.stdout
    table = pd.read_csv(tmp_path / "out/cmp.csv")
    row = table[(table.run == "inductor") & (table.unit == "blk")].iloc[0]
    assert row.delta_us == pytest.approx(-20.0)  # blk: 80, 81, 82 (ln + fc) vs the kernel's 60, 61, 62
    assert (tmp_path / "out/cmp.png").is_file() and (tmp_path / "out/cmp_waterfall.csv").is_file()
    bad = run_ngbench("compare", "cpu/torch/m/bs1", "cpu/ort/m/bs1", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "cpu/ort/m/bs1: no op table at" in bad.stderr
