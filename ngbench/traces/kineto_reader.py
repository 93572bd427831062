"""Reading a PyTorch profiler (Kineto) Chrome-trace file: its events, typed and streamed.

PyTorch's own exporter layout is decoded with msgspec ~8 MiB of events at a time, into :class:`Event` (only
the fields a normalizer reads; every other key is skipped unparsed); any other layout (minified, other
exporters, the JSON array format) streams through ijson. A damaged or foreign file is an
:class:`~ngbench.errors.InputError` naming it, in one line.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import ijson
import msgspec

from ngbench.errors import InputError


class EventArgs(msgspec.Struct, gc=False):
    """The ``args`` a normalizer reads: the launch/kernel correlation id and an op's recorded inputs."""

    correlation: int | None = None
    input_dims: list | None = msgspec.field(name="Input Dims", default=None)
    input_type: list | None = msgspec.field(name="Input type", default=None)
    input_strides: list | None = msgspec.field(name="Input Strides", default=None)
    concrete_inputs: list | None = msgspec.field(name="Concrete Inputs", default=None)


class Event(msgspec.Struct, gc=False):
    """The fields of a Chrome-trace event that the normalizer reads; everything else is skipped unparsed."""

    ph: str = ""
    cat: str | None = None
    name: str = ""
    ts: float = math.nan  # absent: NaN, so a complete event (ph X) without its times is rejected, not placed at 0
    dur: float = math.nan
    pid: int | str | None = None
    tid: int | str | None = None
    args: EventArgs | None = None


def _open(path: Path) -> IO[bytes]:
    f = open(path, "rb")  # noqa: SIM115 - the caller closes it (a stream outlives this call)
    magic = f.read(2)
    f.seek(0)
    return gzip.GzipFile(fileobj=f) if magic == b"\x1f\x8b" else f


_DECODER = msgspec.json.Decoder(list[Event])
_KINETO_START = re.compile(rb'"traceEvents"\s*:\s*\[\s*\n  \{')
_KINETO_SEP = b"\n  },\n  {"  # between two events of PyTorch's own exporter (JSON strings hold no raw newline)
_KINETO_END = re.compile(rb"\n  \}\s*\n?\s*\]")
CHUNK_BYTES = 8 << 20
# what a damaged or foreign file can raise while it is read and decoded
_READ_ERRORS = (
    ijson.JSONError,
    ijson.IncompleteJSONError,
    msgspec.MsgspecError,
    OSError,
    EOFError,
    zlib.error,
    ValueError,  # UnicodeDecodeError and number conversions
)


def _decode(buf: bytearray, first: int, last: int, ascii_: bool) -> list[Event]:
    """The events from the ``{`` at ``first`` to the ``}`` at ``last`` of ``buf``, decoded in place: the byte
    before the first event (whitespace) and the one after the last (a comma, or whitespace) become the
    brackets of a JSON array, so no copy is made.

    msgspec skips keys it does not know without checking their bytes: a key damaged into invalid UTF-8
    would read as absent, so a segment that is not all ASCII is checked first."""
    view = memoryview(buf)[first - 1 : last + 2]
    try:
        if not ascii_:
            str(view, "utf-8")  # raises UnicodeDecodeError (a ValueError): unreadable, one line
        view[0], view[-1] = 0x5B, 0x5D  # [ ]
        return _DECODER.decode(view)
    finally:
        view.release()


def _kineto_batches(f: IO[bytes]) -> Iterator[list[Event]] | None:
    """Fast path for PyTorch's own exporter layout (one event per ``\n  {`` block): decode ~8 MiB of
    events at a time with msgspec, in place in one reused buffer, so memory stays bounded. Returns None when
    the layout differs."""
    head = f.read(CHUNK_BYTES)
    m = _KINETO_START.search(head)
    if not m:
        return None

    def batches() -> Iterator[list[Event]]:
        buf, pos = bytearray(head), m.end() - 1  # pos at the "{" of the first event
        ascii_ = head.isascii()  # of every byte in buf
        while True:
            more = f.read(CHUNK_BYTES)
            if not more:  # the rest of the array is in buf
                tail = _KINETO_END.search(buf, pos)
                if tail is None:
                    raise InputError("the traceEvents array does not end as PyTorch writes it (truncated?)")
                yield _decode(buf, pos, tail.start() + 3, ascii_)
                return
            cut = buf.rfind(_KINETO_SEP, pos)
            if cut != -1:  # every event up to the last complete one
                yield _decode(buf, pos, cut + 3, ascii_)
                del buf[: cut + len(_KINETO_SEP) - 2]  # keep the byte before the next "{"
                pos = 1
                ascii_ = buf.isascii()
            buf += more
            ascii_ = ascii_ and more.isascii()

    return batches()


_JSON_KINDS = {"start_map": "object", "start_array": "array", "string": "string", "number": "number",
               "boolean": "boolean", "null": "null"}  # fmt: skip


def _generic_prefix(f: IO[bytes], path: Path) -> str:
    """Where the events are in a Chrome trace that is not in PyTorch's own layout: the ``traceEvents`` array
    of the JSON object format, or the top-level array of the JSON array format (both in the Trace Event
    Format spec)."""
    keys: list[str] = []
    parser = ijson.parse(f, use_float=True)
    for prefix, event, value in parser:
        if prefix != "":
            continue
        if event == "start_array":
            return "item"
        if event == "map_key":
            if value == "traceEvents":
                _, kind, _ = next(parser)
                if kind != "start_array":
                    raise InputError(
                        f"{path}: 'traceEvents' is a JSON {_JSON_KINDS.get(kind, kind)}, expected an array of events"
                    )
                return "traceEvents.item"
            keys.append(str(value))
        elif event in _JSON_KINDS and event != "start_map":
            raise InputError(
                f"{path}: the file is a JSON {_JSON_KINDS[event]}, expected a Chrome trace (an object with a "
                "'traceEvents' array, or an array of events)"
            )
    shown = ", ".join(repr(k) for k in keys[:8]) or "none"
    raise InputError(f"{path}: no 'traceEvents' array (top-level keys: {shown}); expected a Kineto/Chrome trace")


def _generic_batches(f: IO[bytes], prefix: str) -> Iterator[list[Event]]:
    """Any Chrome-trace JSON (minified, other exporters): stream events with ijson."""
    batch: list[Event] = []
    for item in ijson.items(f, prefix, use_float=True):
        batch.append(msgspec.convert(item, Event, strict=False))
        if len(batch) == 65536:
            yield batch
            batch = []
    if batch:
        yield batch


_UNREADABLE = (
    "not a readable Kineto/Chrome trace (expected JSON, gzipped or not: an object with a 'traceEvents' array of "
    "event objects, or an array of event objects)"
)


def _first_line(exc: BaseException) -> str:
    """The error's type and first line (ijson's parse errors go on to draw a caret diagram)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()


def iter_event_batches(path: str | Path) -> tuple[str, Iterator[list[Event]]]:
    """(parser used, batches of events) of the ``traceEvents`` array of a trace file (gzipped or not)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such trace file" if not p.exists() else f"{p}: not a file")

    def guarded(it: Iterator[list[Event]]) -> Iterator[list[Event]]:
        try:
            yield from it
        except InputError as exc:
            raise InputError(f"{p}: {exc}" if not str(exc).startswith(str(p)) else str(exc)) from exc
        except _READ_ERRORS as exc:
            raise InputError(f"{p}: {_UNREADABLE}: {_first_line(exc)}") from exc

    try:
        fast = _kineto_batches(_open(p))
        if fast is not None:
            return "msgspec (PyTorch exporter layout)", guarded(fast)
        prefix = _generic_prefix(_open(p), p)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: {_UNREADABLE}: {_first_line(exc)}") from exc
    return "ijson (generic)", guarded(_generic_batches(_open(p), prefix))
