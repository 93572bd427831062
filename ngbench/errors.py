"""The one error type for bad input: a file, key or value that is not what the normalizers, readers or the
command line expect.

Its message is one line that names the file (and the key, event or record index) and says what was expected;
the CLI prints it as ``error: <message>`` with exit code 2, and workflow jobs write it to their log. Anything
else that escapes is a bug in ngbench, and keeps its traceback.
"""

from __future__ import annotations

import math

# Plausible times in microseconds: no profiled event lasts 11.6 days, no timestamp lies 3,000 years from its
# epoch. Beyond them float arithmetic loses the microseconds it adds (1e308 + 1e308 is inf).
MAX_DURATION_US = 1e12
MAX_TIMESTAMP_US = 1e17


def implausible_time(ts: float, dur: float) -> bool:
    """An event time no profiler writes (also NaN: every comparison with it is False)."""
    return not (0.0 <= dur < MAX_DURATION_US and -MAX_TIMESTAMP_US < ts < MAX_TIMESTAMP_US)


def bad_event_time(path: object, index: int, name: str, cat: object, ts: float, dur: float) -> InputError:
    """The one message for an event with an implausible time, in every trace format."""
    return InputError(
        f"{path}: event {index} ({name[:60]!r}, cat {cat!r}) has ts={ts!r}, dur={dur!r}: expected microseconds "
        f"with 0 <= dur < {MAX_DURATION_US:g} and |ts| < {MAX_TIMESTAMP_US:g}"
    )


class InputError(ValueError):
    """Bad input. ``str()`` is always a single line (newlines in wrapped messages are folded)."""

    def __init__(self, message: object) -> None:
        super().__init__(one_line(str(message)))


def one_line(text: str, limit: int = 600) -> str:
    """Fold a message (a library's multi-line diagnostic, say) into one line of at most ``limit`` chars."""
    folded = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return folded if len(folded) <= limit else folded[: limit - 3] + "..."


_JSON_TYPES = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array",
               dict: "object"}  # fmt: skip


def json_type(value: object) -> str:
    """What ``value`` is in a JSON document's words (null, string, array, ...)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def finite_number(value: object, where: str, *, minimum: float | None = None) -> float:
    """``value`` as a finite float (``>= minimum`` when given), else an InputError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: expected a number, got {json_type(value)} {str(value)[:40]!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{where}: expected a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise InputError(f"{where}: expected a number >= {minimum:g}, got {value!r}")
    return number


class Unavailable(RuntimeError):
    """A device or optional library a job needs is absent on this machine (no CUDA GPU, no
    onnxruntime-gpu, no TensorRT, no bitsandbytes): the job is *skipped* with this reason, not failed, and
    its figure cells say so."""
