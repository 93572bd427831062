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
    backend: str = catalog.BASELINE,
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


def export_onnx(config: dict, model: str, batch_size: int, **paths: str) -> dict:
    """``paths``: ``input_path``, ``out``, ``modules_out`` (as :func:`ngbench.jobs.run_ort.export`)."""
    from ngbench.jobs import run_ort

    params = settings.export_params(settings.with_defaults(config), model)
    return run_ort.export(params, batch_size=batch_size, **paths)


def build_trt_engine(config: dict, platform: str, model: str, batch_size: int, **paths: str) -> dict:
    """``paths``: ``modules_path``, ``onnx_path``, ``plan``, ``log_path``, optionally ``precision``."""
    from ngbench.jobs import run_trt

    params = settings.engine_params(settings.with_defaults(config), platform)
    return run_trt.build_engine(params, model=model, batch_size=batch_size, **{"precision": "fp16", **paths})


def measure_energy(config: dict, platform: str, model: str, batch_size: int, input_path: str, out: str) -> dict:
    from ngbench.jobs import energy

    params = settings.energy_params(settings.with_defaults(config), platform, model)
    return energy.measure(params, batch_size=batch_size, input_path=input_path, out=out)
