"""Every run that did not succeed, one row each, from the runs' own records (``on_error: record``): which
job failed, where, the error's first line and the log to read (``results/failures.csv``); and every run whose
measurement is not to be trusted (``results/trust.csv``)."""

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


TRUST_COLUMNS = ["platform", "backend", "model", "batch_size", "check", "reason"]


def untrusted(shares: pd.DataFrame) -> pd.DataFrame:
    """Runs judged disturbed after their retries (their record's reasons), and runs a smaller batch of which
    took longer than a larger one of the same model and backend (a disturbance neither run saw alone)."""
    rows = []
    if shares.empty or "trust" not in shares:
        return pd.DataFrame(columns=TRUST_COLUMNS)
    runs = shares[shares["status"] == names.STATUS_OK].drop_duplicates(["platform", "backend", "model", "batch_size"])
    for r in runs[runs["trust"] == "disturbed"].itertuples():
        rows.append({"platform": r.platform, "backend": r.backend, "model": r.model, "batch_size": int(r.batch_size),
                     "check": "run", "reason": r.trust_reasons})  # fmt: skip
    for (platform, backend, model), sub in runs.groupby(["platform", "backend", "model"]):
        sub = sub.sort_values("batch_size")
        for small, large in zip(sub.itertuples(), sub.iloc[1:].itertuples()):
            if (
                small.latency_ms_median
                and large.latency_ms_median
                and small.latency_ms_median > large.latency_ms_median
            ):
                rows.append({"platform": platform, "backend": backend, "model": model,
                             "batch_size": int(small.batch_size), "check": "batch order",
                             "reason": f"bs{int(small.batch_size)} took {small.latency_ms_median:.1f} ms, longer than "
                                       f"bs{int(large.batch_size)}'s {large.latency_ms_median:.1f} ms"})  # fmt: skip
    return pd.DataFrame(rows, columns=TRUST_COLUMNS)
