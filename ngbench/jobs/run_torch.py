"""Profile one run under PyTorch: eager (torch), TorchInductor (inductor) or LLM.int8 (torch-int8); the
catalog entry's ``options`` say which."""

from __future__ import annotations

import shutil

from ngbench import env, inputs, names
from ngbench.jobs import model as model_job
from ngbench.jobs import records, trust


def run(params: dict, *, batch_size: int, files: dict, trace_dir: str, latency_out: str, threads: int | None = None):
    """Unprofiled latency + profiled trace. ``files``: ``batch`` (the input batch). ``threads``: the job's
    cores, used when the settings leave ``threads`` null. On error: a failure record (``on_error: record``)
    or the exception (``on_error: fail``)."""
    from ngbench.backends import torch_eager

    settings, options, device = params["settings"], params["options"], params["device"]
    meta = records.run_meta(params, batch_size)
    what = f"{params['backend']}/{params['model']['name']} bs{batch_size} on {params['platform']}"
    with records.failure_recorded(params["on_error"], meta, what):
        records.require_packages(params["backend"])
        torch_eager.require_device(device)  # before building anything
        tensors, meta["inputs"] = inputs.load(files["batch"])
        records.input_failed(meta["inputs"])
        dtype = model_job.dtype_for(settings, device)
        built = model_job.build(params["model"], tensors, dtype, settings["attn_implementation"], meta)
        if options.get("quantize") == "llm.int8":
            from ngbench.backends import int8

            built, meta["quantization"] = int8.quantize(
                built, device=device, dtype=dtype, threshold=settings["llm_int8_threshold"]
            )
        # scope_modules / record_shapes exist only in the torch block; the catalog's options switch them off
        # for Inductor (no module hooks inside a compiled graph, one shapes pass would recompile)
        record, meta["trust"] = trust.measure(
            lambda: torch_eager.run(
                built,
                tensors,
                device=device,
                trace_dir=trace_dir,
                warmup=settings["warmup"],
                iterations=settings["iterations"],
                profile_iterations=settings["profile_iterations"],
                threads=settings["threads"] or threads,
                dtype=dtype,
                scope_modules=settings.get("scope_modules", True) and options.get("scope_modules", True),
                shapes_pass=settings.get("record_shapes", True) and options.get("shapes_pass", True),
                compiler=_inductor_compiler(settings) if options.get("compile") else None,
                move_model=not options.get("quantize"),
            ),
            params["trust"],
            what,
            reset=lambda: shutil.rmtree(trace_dir, ignore_errors=True),
        )
        meta["environment"]["torch"] = env.torch_env()
        meta.update(status=names.STATUS_OK, run=record)
    records.write_run_outputs(meta, trace_dir, latency_out)
    return meta


def _inductor_compiler(settings: dict):
    from ngbench.backends import inductor

    return inductor.make_compiler(
        settings["cache_dir"], freezing=settings["freezing"], mode=settings["mode"], dynamic=settings["dynamic"]
    )
