"""The GPU paths on a real GPU (``pytest -m gpu``, part of the GPU smoke); skipped with the reason elsewhere.

Each test runs one path end to end on a tiny model and checks the invariants a CPU cannot: kernels in the
trace, device busy time equal to the kernel union per iteration (recomputed by the checker's own reader),
Inductor's Triton kernels attributed, NVML energy read, the roofs measured on the device."""

import pytest
import torch
from conftest import REPO

pytestmark = pytest.mark.gpu


class Block(torch.nn.Module):
    """Normalization, attention-like products and softmax: the non-GEMM mix of a transformer layer."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.out = torch.nn.Linear(width, width)

    def forward(self, x):
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        attn = torch.softmax(q @ k.transpose(-1, -2) / 8.0, dim=-1)
        return x + self.out(torch.nn.functional.gelu(attn @ v))


LABELS = dict(platform="gpu", backend="torch", model="block", batch_size=2, seq_len=None)


def _profile(tmp_path, **kwargs):
    from ngbench.backends import torch_eager

    return torch_eager.run(Block(), {"x": torch.randn(2, 32, 64)}, device="cuda", trace_dir=tmp_path, warmup=2,
                           iterations=3, profile_iterations=2, threads=None, dtype="float16", **kwargs)  # fmt: skip


def test_eager_cuda_profile_closes_and_device_busy_is_the_kernel_union(tmp_path):
    import sys

    from ngbench import names
    from ngbench.normalize import RunFiles, kineto_run
    from ngbench.table import check

    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    record = _profile(tmp_path)
    assert "CUDA" in record["profiler_activities"]
    df, info = kineto_run(RunFiles.of_run(tmp_path, "torch"), LABELS)
    check(df)
    assert info["device_activity"] and info["device_time_without_launching_op_us"] == 0
    assert info["device_time_outside_iterations_us"] <= 0.01 * info["device_time_us"]
    union = gpu_check.kernel_union_per_step(sorted(tmp_path.glob(names.KINETO_TRACE_GLOB)))
    busy = df[df["group"] != "Idle"].groupby("iteration")["time_us"].sum()
    assert set(union) == set(busy.index) and all(abs(busy[i] - u) < 0.01 for i, u in union.items())
    assert {"Normalization", "Logit", "GEMM"} <= set(df["group"])
    assert (df.loc[df["group"] != "Idle", "work_source"] == "tensors").all()  # the execution trace on CUDA


def test_inductor_triton_kernels_are_attributed(tmp_path):
    from ngbench.backends import inductor
    from ngbench.normalize import RunFiles, inductor_run

    _profile(tmp_path, compiler=inductor.make_compiler(tmp_path / "cache"), scope_modules=False, shapes_pass=False)
    df, info = inductor_run(RunFiles.of_run(tmp_path, "inductor"), {**LABELS, "backend": "inductor"})
    ind = info["inductor"]
    assert ind["kernels"] > 0 and ind["kernels_with_provenance"] == ind["kernels"], ind
    assert df["op"].str.startswith("triton_").any()


def test_nvml_energy_on_the_jobs_gpu():
    from ngbench import energy
    from ngbench.jobs.energy import _cuda_pci_bus_id

    counters = energy.counters_for("cuda:0", "/nonexistent", gpu_pci_bus_id=_cuda_pci_bus_id("cuda:0"))
    assert not isinstance(counters["gpu"], str), counters["gpu"]
    x = torch.randn(2048, 2048, device="cuda")
    out = energy.measure(lambda: x @ x, torch.cuda.synchronize, {"gpu": counters["gpu"]}, inferences=50, repeats=2,
                         idle_s=0.5, min_block_s=0.5, resolution_s=0.5)["gpu"]  # fmt: skip
    assert out["status"] == "ok" and out["joules_per_inference_median"] > 0
    assert out["counter_updates_per_block"] >= 10


def test_platform_roofs_on_the_device(tmp_path):
    from ngbench.analysis import horizon
    from ngbench.jobs import platform_limits

    limits = {"threads": None, "min_working_set_kib": 1024, "max_working_set_mib": 512,
              "max_auto_working_set_mib": 1024, "min_time_ms": 5, "trials": 2, "max_gemm_n": 8192}  # fmt: skip
    params = {"platform": "gpu", "device": "cuda", "dtypes": ["float32", "float16", "bfloat16"],
              "backends": ["torch"], "limits": limits}  # fmt: skip
    record = platform_limits.measure(params, out=str(tmp_path / "gpu.json"))
    limits = horizon.read_limits(tmp_path / "gpu.json")
    assert record["gpu_name"] and limits.dram_gb_per_s > 100 and limits.floor_us("torch") > 0
    assert record["peak_flops"]["float16"]["flops_per_s"] > record["peak_flops"]["float32"]["flops_per_s"]


def test_ort_cuda_provider_when_installed(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} has no CUDA provider (install onnxruntime-gpu)")
    from ngbench.jobs import platform_limits

    assert platform_limits._ort_floor(["CUDAExecutionProvider"]) is not None


def test_tensorrt_builds_and_runs_when_installed(tmp_path):
    pytest.importorskip("tensorrt", reason="tensorrt is not installed (requirements-trt.txt)")
    from ngbench.backends import trt

    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.LayerNorm(16)).eval()
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.randn(2, 16),), str(onnx_path), input_names=["x"], dynamo=False)
    plan = tmp_path / "m.plan"
    trt.build_engine(onnx_path, plan, precision="fp32", typing="strong", timing_cache=tmp_path / "cache",
                     log_path=tmp_path / "build.log", workspace_gib=None)  # fmt: skip
    record = trt.run(plan, {"x": torch.randn(2, 16).numpy()}, trace_dir=tmp_path / "run", warmup=2, iterations=3,
                     profile_iterations=2)  # fmt: skip
    assert record["latency"]["median_ms"] > 0
