"""The unified op table: schema, closure check, parquet I/O.

One row per top-level op instance per measured iteration, plus one explicit ``idle/unattributed`` row per
iteration (group ``Idle``) so that, per iteration, ``sum(time_us) == iteration_time_us``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ngbench.errors import InputError
from ngbench.taxonomy import IDLE

IDLE_OP = "idle/unattributed"
RUN_METADATA_KEY = b"ngbench.run"

SCHEMA = pa.schema(
    [
        pa.field("platform", pa.string(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("seq_len", pa.int32()),  # null for models without a sequence dimension
        pa.field("iteration", pa.int32(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),  # order within the iteration
        pa.field("op", pa.string(), nullable=False),  # backend-native op kind
        pa.field("node", pa.string(), nullable=False),  # instance name where the backend has one, else ""
        pa.field("module", pa.string(), nullable=False),  # innermost module path, "" outside modules
        pa.field("module_type", pa.string(), nullable=False),
        pa.field("group", pa.string(), nullable=False),
        pa.field("group_source", pa.string(), nullable=False),  # module|op|kernel|fused-name|fused|unknown|idle
        pa.field("is_gemm", pa.bool_(), nullable=False),
        pa.field("time_us", pa.float64(), nullable=False),  # attributed on the critical path; sums to iteration
        pa.field("device_time_us", pa.float64()),  # union of the op's device intervals; null on CPU-only runs
        pa.field("host_time_us", pa.float64()),  # inclusive host (dispatch) time
        pa.field("iteration_time_us", pa.float64(), nullable=False),  # measured iteration time (closure target)
        pa.field("input_shapes", pa.string(), nullable=False),  # JSON list of input dims, "" when unknown
        pa.field("fused_ops", pa.list_(pa.string()), nullable=False),  # fused_entry() per replaced op
        # the op's work (ngbench.work): ideal bytes moved and FLOPs, how they were known, input layout
        pa.field("bytes", pa.float64()),  # null: not known (work_source none)
        pa.field("flops", pa.float64()),
        pa.field("work_source", pa.string(), nullable=False),  # tensors|shapes|graph|layer-info|kernel-graph|none
        pa.field("layout", pa.string(), nullable=False),  # contiguous | non-contiguous | "" (unknown)
    ]
)
COLUMNS = SCHEMA.names
# columns a table written before the horizon lacks: read as unknown work
WORK_DEFAULTS: dict[str, Any] = {"bytes": None, "flops": None, "work_source": "none", "layout": ""}
CLOSURE_RTOL = 1e-9
NULLABLE_NUMBERS = ("device_time_us", "host_time_us", "bytes", "flops")


class ClosureError(InputError):
    """An op table that breaks the closure invariant or holds impossible times."""


class FusedOp(NamedTuple):
    """One op a fused node, kernel or layer replaced: ``fused_ops`` holds them as ``op|node|module|class``."""

    op: str
    node: str
    module: str
    module_type: str


# the columns one op row fills (the run's labels, its iteration and its place in it are filled for it)
OP_COLUMNS = ("op", "node", "module", "module_type", "group", "group_source", "is_gemm", "time_us", "device_time_us",
              "host_time_us", "input_shapes", "fused_ops", "bytes", "flops", "work_source", "layout")  # fmt: skip


class OpRows:
    """One iteration's op rows, column by column, for :func:`append_iteration` (the one row builder of every
    normalizer: a normalizer that builds whole columns at once passes them as a dict of OP_COLUMNS)."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {c: [] for c in OP_COLUMNS}

    def add(
        self,
        op: str,
        *,
        group: str,
        group_source: str,
        is_gemm: bool,
        time_us: float,
        node: str = "",
        module: str = "",
        module_type: str = "",
        device_time_us: float | None = None,
        host_time_us: float | None = None,
        input_shapes: str = "",
        fused_ops: list[str] | tuple = (),
        work: Any = None,  # an ngbench.work.Work, None: unknown
    ) -> None:
        row = (op, node, module, module_type, group, group_source, is_gemm, time_us, device_time_us, host_time_us,
               input_shapes, fused_ops, *((work.bytes, work.flops, work.source, work.layout) if work else
                                          (None, None, "none", "")))  # fmt: skip
        for column, value in zip(OP_COLUMNS, row, strict=True):
            self.columns[column].append(value)


def append_iteration(
    cols: dict[str, list], iteration: int, iteration_time_us: float, ops: dict[str, list], idle_op: str = IDLE_OP
) -> None:
    """One iteration's op rows (``ops``: the OP_COLUMNS, one value per row each) and its Idle row, which holds
    the part of the iteration the rows' ``time_us`` do not (``idle_op`` says which idle)."""
    if set(ops) != set(OP_COLUMNS) or len({len(v) for v in ops.values()}) > 1:
        raise ValueError(f"an iteration's rows need the columns {OP_COLUMNS}, each as long as the others")
    n = len(ops["op"]) + 1
    cols["iteration"].extend([iteration] * n)
    cols["seq"].extend(range(n))
    cols["iteration_time_us"].extend([iteration_time_us] * n)
    for column in OP_COLUMNS:
        cols[column].extend(ops[column])
    append_idle_row(cols, iteration_time_us - sum(ops["time_us"]), op=idle_op)


def append_idle_row(cols: dict[str, list], time_us: float, op: str = IDLE_OP) -> None:
    """Append the iteration's explicit Idle row to column lists being built (``op`` says which idle:
    ``idle/unattributed``, ORT's ``session overhead``)."""
    row = {
        "op": op,
        "node": "",
        "module": "",
        "module_type": "",
        "group": IDLE,
        "group_source": "idle",
        "is_gemm": False,
        "time_us": time_us,
        "device_time_us": None,
        "host_time_us": None,
        "input_shapes": "",
        "fused_ops": (),
        "bytes": None,
        "flops": None,
        "work_source": "none",
        "layout": "",
    }
    for key, value in row.items():
        cols[key].append(value)


INT_COLUMNS = {"batch_size": "int32", "iteration": "int32", "seq": "int32", "seq_len": "Int32"}


def frame(cols: dict[str, list], **constants: Any) -> pd.DataFrame:
    """The op table from column lists built row by row, plus columns that hold one value for every row
    (the run's labels), with the schema's integer types."""
    total = len(cols["op"])
    for column, value in {**WORK_DEFAULTS, **constants}.items():
        if column in constants or len(cols.get(column) or ()) != total:
            # one value, typed as a list of it would be, repeated: no inference over every row
            cols[column] = pd.Series([value]).repeat(total).reset_index(drop=True)
    data = {c: _text_column(v) if c in _TEXT_COLUMNS else v for c, v in cols.items()}
    return pd.DataFrame(data).astype(INT_COLUMNS)


_TEXT_COLUMNS = {f.name for f in SCHEMA if f.type == pa.string()}


def _text_column(values: Any) -> Any:
    """A list of strings as pandas' string column, built by Arrow in one pass (pandas' own inference looks at
    every value first); anything else (None only, other types) is left to pandas, so the type is the same."""
    if not isinstance(values, list) or not values:
        return values
    try:
        array = pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return values
    return (
        pd.Series(array, dtype=pd.StringDtype("pyarrow", na_value=np.nan)) if array.null_count < len(array) else values
    )


def with_work_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the work columns, filled as unknown where absent (tables written before them)."""
    missing = {c: v for c, v in WORK_DEFAULTS.items() if c not in df.columns}
    if not missing:
        return df
    df = df.copy()
    for column, value in missing.items():
        df[column] = pd.Series([value] * len(df), index=df.index, dtype=object if value is None else None)
    return df


def fused_entry(op: str, node: str, module: str = "", module_type: str = "") -> str:
    return "|".join((op, node, module, module_type))


def parse_fused(entry: str) -> FusedOp:
    parts = (entry.split("|") + ["", "", "", ""])[:4]
    return FusedOp(*parts)


def _show(value: Any) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return repr(value)


TIME_COLUMNS = ("time_us", "device_time_us", "host_time_us", "iteration_time_us", "bytes", "flops")


def check(df: pd.DataFrame, *, source: str = "op table", types: bool = True) -> None:
    """Validate columns, types (unless ``types=False``), times (finite, not negative) and the closure
    invariant; raise :class:`ClosureError` (an :class:`InputError`) with the first problem named."""
    missing = [c for c in COLUMNS if c not in df.columns and c not in WORK_DEFAULTS]
    if missing:
        raise ClosureError(f"{source}: missing columns {missing}")
    df = with_work_columns(df)
    if types:
        try:
            pa.Table.from_pandas(df[COLUMNS], schema=SCHEMA, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise ClosureError(f"{source}: columns do not match the op table schema: {exc}") from exc
    for column in TIME_COLUMNS:
        values = pd.to_numeric(df[column], errors="coerce").astype(float)
        present = values.notna() if column in NULLABLE_NUMBERS else pd.Series(True, df.index)
        bad = present & ~np.isfinite(values)
        if bad.any():
            row = df.loc[bad].iloc[0]
            raise ClosureError(
                f"{source}: {column} is {_show(row[column])} for op {row.op!r} in iteration {row.iteration}: "
                f"expected a finite number{' of microseconds' if column.endswith('_us') else ''}"
            )
        slack = -1e-6 if column == "time_us" else 0.0
        negative = present & (values < slack)
        if negative.any():
            row = df.loc[negative].iloc[0]
            what = (
                "ops were attributed more time than the iteration measured (double counting)"
                if column == "time_us"
                else f"{'work' if column in ('bytes', 'flops') else 'times'} cannot be negative"
            )
            raise ClosureError(
                f"{source}: negative {column} {row[column]:.3f} for op {row.op!r} in iteration {row.iteration}: " + what
            )
    keys = ["platform", "backend", "model", "batch_size", "iteration"]
    per_iter = df.groupby(keys, dropna=False).agg(total=("time_us", "sum"), measured=("iteration_time_us", "first"))
    err = (per_iter["total"] - per_iter["measured"]).abs()
    tol = CLOSURE_RTOL * per_iter["measured"].abs().clip(lower=1.0) + 1e-6
    if (err > tol).any():
        row = per_iter.loc[err > tol].iloc[0]
        raise ClosureError(
            f"{source}: closure violated in {row.name}: sum(time_us)={row.total:.3f} "
            f"!= measured iteration time {row.measured:.3f}"
        )
    idle = df[df["group"] == "Idle"].groupby(keys, dropna=False).size()
    if len(idle) != len(per_iter) or (idle != 1).any():
        raise ClosureError(f"{source}: every iteration needs exactly one explicit Idle row")


def to_arrow(df: pd.DataFrame, run: dict[str, Any] | None = None) -> pa.Table:
    df = with_work_columns(df)
    table = pa.Table.from_pandas(df[COLUMNS], schema=SCHEMA, preserve_index=False)
    if run is not None:
        meta = dict(table.schema.metadata or {})
        meta[RUN_METADATA_KEY] = json.dumps(run, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    return table


def write(df: pd.DataFrame, path: str | Path, run: dict[str, Any] | None = None) -> None:
    """Check, then write atomically: a temporary file beside ``path``, renamed into place, so a failure
    leaves neither a partial file nor a half-replaced one."""
    check(df, source=str(path))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(to_arrow(df, run), tmp, compression="zstd")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: str | Path, *, checked: bool = True) -> pd.DataFrame:
    """An op table from parquet; ``checked`` (default) runs :func:`check` on it, so no reader computes
    shares from a table with impossible times."""
    try:
        df = with_work_columns(pq.read_table(path).to_pandas())
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable op table: {exc}") from exc
    if checked and len(df):
        check(df, source=str(path), types=False)
    return df


def read_run_metadata(path: str | Path) -> dict[str, Any]:
    try:
        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(RUN_METADATA_KEY)
        return json.loads(raw) if raw else {}
    except (OSError, pa.ArrowInvalid, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable op table: {exc}") from exc


def read_runs(paths) -> dict[tuple, dict[str, tuple[pd.DataFrame, dict[str, Any]]]]:
    """(platform, model, batch size) -> backend -> (op table, run metadata), for comparing backends."""
    runs: dict[tuple, dict] = {}
    for path in paths:
        meta = read_run_metadata(path)
        key = (meta.get("platform"), meta.get("model"), int(meta.get("batch_size") or 0))
        runs.setdefault(key, {})[meta.get("backend")] = (read(path), meta)
    return runs
