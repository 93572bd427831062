"""A job whose device or optional library is absent here is skipped with its reason, never failed, and
leaves its declared outputs so the rest of the study (and its figures) go on."""

import json

import pytest
import torch

from ngbench.jobs import direct


@pytest.fixture
def config():
    return {
        "platforms": {"gpu": {"device": "cuda"}},
        "models": {"swin-t": {"batch_sizes": [1]}},
        "backends": {"torch": {}, "trt": {}},
        "on_error": "fail",  # skipping is not failing: even on_error: fail does not raise
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_cuda_run_without_a_gpu_is_skipped_before_building_anything(config, tmp_path):
    meta = direct.profile(
        config,
        "gpu",
        "swin-t",
        1,
        str(tmp_path / "missing-inputs.pt"),
        str(tmp_path / "trace"),
        str(tmp_path / "l.json"),
    )
    assert meta["status"] == "skipped" and "no CUDA GPU is visible" in meta["reason"]
    assert "model_provenance" not in meta  # the model was never built
    assert json.loads((tmp_path / "l.json").read_text())["status"] == "skipped"


def test_tensorrt_missing_skips_the_engine_and_its_run(config, tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here")
    modules = tmp_path / "m.modules.json"
    modules.write_text(json.dumps({"export": {"status": "ok"}}))
    onnx = tmp_path / "m.fp16.onnx"
    onnx.write_bytes(b"not empty")
    plan = tmp_path / "engines" / "m.fp16.plan"
    record = direct.build_trt_engine(
        config,
        "gpu",
        "swin-t",
        1,
        modules_path=str(modules),
        onnx_path=str(onnx),
        plan=str(plan),
        log_path=str(tmp_path / "b.log"),
    )
    assert record["status"] == "skipped" and "tensorrt is not installed" in record["reason"]
    assert plan.is_file() and plan.stat().st_size == 0  # the declared output exists: the DAG goes on
    assert json.loads(plan.with_suffix(".plan.json").read_text())["status"] == "skipped"
