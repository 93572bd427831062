"""The model's real input batch (photos or Wikipedia text that ship in packages, or the user's dataset)."""

from __future__ import annotations

import logging
import traceback

from ngbench import inputs, names, registry
from ngbench.jobs import records

log = logging.getLogger(__name__)


def make(params: dict, *, model: str, batch_size: int, out: str) -> dict:
    """On error with ``on_error: record``, an empty batch whose provenance says ``status: failed`` and why,
    so the run that reads it records the failure (and the figures say so). ``params``:
    :func:`ngbench.jobs.settings.input_params`."""
    cfg = params["inputs"]
    try:
        tensors, prov = inputs.make_batch(
            registry.spec_from_dict(params["spec"]),
            batch_size,
            seq_len=params["seq_len"],
            image_dir=cfg["image_dir"],
            wikitext=cfg["wikitext"],
            seed=cfg["seed"],
        )
        prov.update(model=model, batch_size=batch_size, status=names.STATUS_OK)
    except Exception as exc:  # becomes a record or a failed job
        if params["on_error"] == "fail":
            raise
        log.error("inputs for %s bs%d failed:\n%s", model, batch_size, traceback.format_exc())
        tensors = {}
        prov = {"model": model, "batch_size": batch_size, "status": names.STATUS_FAILED, "reason": records.reason(exc)}
    inputs.save(tensors, prov, out)
    log.info("wrote %s: %s", out, {k: list(v.shape) for k, v in tensors.items()})
    return prov
