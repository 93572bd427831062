"""Energy per inference of the eager model (fig5), where counters exist; n/a with the reason where not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ngbench import catalog, env, inputs, names
from ngbench.jobs import model as model_job
from ngbench.jobs import records


def _cuda_pci_bus_id(device: str) -> str | None:
    """The PCI bus id of a CUDA device as NVML names it (None off CUDA, or where torch sees no GPU)."""
    if not names.is_cuda(device):
        return None
    import torch

    from ngbench import energy

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.device(device))
    return energy.pci_bus_id(props.pci_domain_id, props.pci_bus_id, props.pci_device_id)


def measure(params: dict, *, batch_size: int, input_path: str, out: str) -> dict:
    """Counters are checked first, so a machine without them never builds the model. ``params``:
    :func:`ngbench.jobs.settings.energy_params`."""
    from ngbench import energy
    from ngbench.backends import torch_eager

    settings, torch_settings, device = params["energy"], params["torch"], params["device"]
    model = params["model"]
    record: dict[str, Any] = {
        "platform": params["platform"],
        "device": device,
        "backend": catalog.BASELINE,
        "model": model["name"],
        "batch_size": batch_size,
        "settings": settings,
        "environment": env.describe(params),
    }
    with records.failure_recorded(params["on_error"], record, f"energy of {model['name']} bs{batch_size}"):
        # inside the record: a torch without the PCI attributes fails this job's record, not the job
        counters = energy.counters_for(
            device, settings["powercap_root"] or energy.POWERCAP_ROOT, gpu_pci_bus_id=_cuda_pci_bus_id(device)
        )
        if all(isinstance(c, str) for c in counters.values()):
            record.update(energy.measure(lambda: None, lambda: None, counters, inferences=0, repeats=0, idle_s=0))
            record["status"] = names.STATUS_OK
        else:
            import torch

            tensors, record["inputs"] = inputs.load(input_path)
            records.input_failed(record["inputs"])
            dtype = model_job.dtype_for(torch_settings, device)
            built = model_job.build(model, tensors, dtype, torch_settings["attn_implementation"], record)
            built, tensors, sync = torch_eager.prepare(
                built, tensors, device=device, dtype=dtype, threads=torch_settings["threads"]
            )
            with torch.inference_mode():
                for _ in range(settings["warmup"]):
                    built(**tensors)
                record.update(
                    energy.measure(
                        lambda: built(**tensors),
                        sync,
                        counters,
                        inferences=settings["inferences"],
                        repeats=settings["repeats"],
                        idle_s=settings["idle_s"],
                        min_block_s=settings["min_block_s"],
                        resolution_s=settings["resolution_s"],
                    )
                )
            record["status"] = names.STATUS_OK
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(record, indent=2, default=str))
    return record
