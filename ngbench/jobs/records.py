"""Run records: what every run writes (``meta.json``, the latency record) and how a failure becomes one."""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ngbench import catalog, env, names
from ngbench.errors import Unavailable

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class UpstreamFailed(RuntimeError):
    """A job this one depends on recorded a failure; its reason is carried as is."""


def first_line(exc: BaseException) -> str:
    lines = _ANSI.sub("", str(exc)).splitlines()
    return lines[0] if lines else ""


def reason(exc: BaseException) -> str:
    """One line for figures and records: the error, and its root cause when it wraps one (exporters raise
    a generic error whose cause says what failed, e.g. a data-dependent guard in torchvision's NMS)."""
    if isinstance(exc, UpstreamFailed):
        return str(exc)[:300]
    text = f"{type(exc).__name__}: {first_line(exc)[:120]}"
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is not exc:
        where = next((ln.strip() for ln in str(root).splitlines() if ln.startswith("Caused by:")), "")
        text = f"{text} <- {type(root).__name__}: {first_line(root)} {where}".strip()
    return text[:300]


@contextmanager
def failure_recorded(on_error: str, record: dict, what: str, prefix: str = "") -> Iterator[None]:
    """``on_error: record``: an exception in the block becomes ``record``'s failed status and reason (the
    traceback goes to the job's log); ``on_error: fail``: it propagates and the job fails. An absent device
    or optional library (:class:`ngbench.errors.Unavailable`) is status ``skipped`` with its reason either
    way: nothing failed."""
    try:
        yield
    except Unavailable as exc:
        log.warning("%s skipped: %s", what, exc)
        record.update(status=names.STATUS_SKIPPED, reason=f"{prefix}{first_line(exc)[:300]}")
    except Exception as exc:  # every failure becomes a record or a failed job
        if on_error == "fail":
            raise
        log.error("%s failed:\n%s", what, traceback.format_exc())
        record.update(status=names.STATUS_FAILED, reason=f"{prefix}{reason(exc)}")


def export_record(modules_path: str | Path) -> dict[str, Any]:
    """The ONNX export's record, kept in its node table."""
    return json.loads(Path(modules_path).read_text()).get("export", {})


def require_ok(record: dict, what: str) -> None:
    """Raise :class:`UpstreamFailed` with an upstream record's reason unless it succeeded."""
    if record.get("status") != names.STATUS_OK:
        raise UpstreamFailed(record.get("reason") or f"{what} failed")


def require_packages(backend: str) -> None:
    """A backend whose optional packages (its catalog entry's ``requires``) are not installed is skipped, with
    the missing ones named."""
    missing = catalog.get(backend).missing_packages()
    if missing:
        verb, them = ("is", "it") if len(missing) == 1 else ("are", "them")
        raise Unavailable(f"{', '.join(missing)} {verb} not installed ({backend} needs {them})")


def run_meta(params: dict, batch_size: int) -> dict[str, Any]:
    """What every run records before it starts (its meta.json grows from here)."""
    return {
        "platform": params["platform"],
        "device": params["device"],
        "backend": params["backend"],
        "model": params["model"]["name"],
        "batch_size": batch_size,
        "seq_len": params["model"]["seq_len"],
        "settings": params["settings"],
        "environment": env.describe(params),
    }


def write_run_outputs(meta: dict, trace_dir: str | Path, latency_out: str | Path) -> None:
    Path(trace_dir).mkdir(parents=True, exist_ok=True)
    (Path(trace_dir) / names.META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    run = meta.get("run", {})
    latency = {k: meta[k] for k in ("platform", "backend", "model", "batch_size", "seq_len", "status") if k in meta}
    latency.update(
        reason=meta.get("reason"),
        samples_ms=run.get("latency_samples_ms"),
        stats=run.get("latency"),
        profiled_stats=run.get("profiled"),
        profiler_overhead_ratio=run.get("profiler_overhead_ratio"),
    )
    Path(latency_out).parent.mkdir(parents=True, exist_ok=True)
    Path(latency_out).write_text(json.dumps(latency, indent=2))


def write_empty(*paths: str | Path) -> None:
    """Leave a failed job's declared outputs, empty: their consumers read the failure record instead."""
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"")


def input_failed(provenance: dict) -> None:
    from ngbench.errors import InputError

    if provenance.get("status") == names.STATUS_FAILED:
        raise InputError(f"inputs: {provenance.get('reason')}")
