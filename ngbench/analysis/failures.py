"""Every run that did not succeed, one row each, from the runs' own records (``on_error: record``): which
job failed, where, the error's first line and the log to read (``results/failures.csv``)."""

from __future__ import annotations

import pandas as pd

from ngbench import names

COLUMNS = ["job", "platform", "backend", "model", "batch_size", "status", "reason", "log"]
# a run's reason names the upstream job that failed when it was not the run itself
UPSTREAM = {"ONNX export: ": "export_onnx", "inputs: ": "prepare_inputs"}


def _log(job: str, r) -> str:
    if job == "export_onnx":
        return f"logs/export_onnx/{r.model}/bs{int(r.batch_size)}.log"
    if job == "prepare_inputs":
        return f"logs/prepare_inputs/{r.model}/bs{int(r.batch_size)}.log"
    return f"logs/profile/{r.platform}/{r.backend}/{r.model}/bs{int(r.batch_size)}.log"


def from_shares(shares: pd.DataFrame) -> pd.DataFrame:
    """One row per run whose status is not ok (failed, skipped), from the runs' shares."""
    if shares.empty or "status" not in shares:
        return pd.DataFrame(columns=COLUMNS)
    bad = shares[shares["status"] != names.STATUS_OK].drop_duplicates(["platform", "backend", "model", "batch_size"])
    rows = []
    for r in bad.itertuples():
        reason = str(r.reason or "")
        job = next((j for prefix, j in UPSTREAM.items() if reason.startswith(prefix)), "profile")
        rows.append(
            {"job": job, "platform": r.platform, "backend": r.backend, "model": r.model,
             "batch_size": int(r.batch_size), "status": r.status, "reason": reason.splitlines()[0] if reason else "",
             "log": _log(job, r)}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["platform", "backend", "model", "batch_size"])
