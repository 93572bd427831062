"""Run one job straight from a config (tests, notebooks, a user's own script): the config is validated and
given the schema's defaults, and each job gets the params the workflow would pass it."""

from __future__ import annotations

from ngbench import catalog
from ngbench.jobs import settings


def make_inputs(config: dict, model: str, batch_size: int, out: str) -> dict:
    from ngbench.jobs import make_inputs as job

    config = settings.with_defaults(config)
    return job.make(settings.input_params(config, model), model=model, batch_size=batch_size, out=out)


def profile(
    config: dict,
    platform: str,
    model: str,
    batch_size: int,
    input_path: str,
    trace_dir: str,
    latency_out: str,
    backend: str = "torch",
    files: dict | None = None,
) -> dict:
    """One run of ``backend``; ``files``: its catalog inputs besides the batch (export, engine)."""
    config = settings.with_defaults(config)
    params = settings.run_params(config, platform, backend, model)
    return catalog.get(backend).load_runner()(
        params,
        batch_size=batch_size,
        files={"batch": input_path, **(files or {})},
        trace_dir=trace_dir,
        latency_out=latency_out,
    )


def export_onnx(config: dict, model: str, batch_size: int, input_path: str, out: str, modules_out: str) -> dict:
    from ngbench.jobs import run_ort

    config = settings.with_defaults(config)
    return run_ort.export(
        settings.export_params(config, model),
        batch_size=batch_size,
        input_path=input_path,
        out=out,
        modules_out=modules_out,
    )


def build_trt_engine(
    config: dict,
    platform: str,
    model: str,
    batch_size: int,
    *,
    modules_path: str,
    onnx_path: str,
    plan: str,
    log_path: str,
    precision: str = "fp16",
) -> dict:
    from ngbench.jobs import run_trt

    config = settings.with_defaults(config)
    return run_trt.build_engine(
        settings.engine_params(config, platform),
        model=model,
        batch_size=batch_size,
        modules_path=modules_path,
        onnx_path=onnx_path,
        plan=plan,
        log_path=log_path,
        precision=precision,
    )


def measure_energy(config: dict, platform: str, model: str, batch_size: int, input_path: str, out: str) -> dict:
    from ngbench.jobs import energy

    config = settings.with_defaults(config)
    return energy.measure(
        settings.energy_params(config, platform, model), batch_size=batch_size, input_path=input_path, out=out
    )
