"""Wall times in recordings (ns since the Unix epoch): formatting and parsing for humans.

Absolute times are shown in UTC so that a recording reads the same in every time zone;
relative times ("+12.5ms") are offsets from the start of the recording.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import UsageError

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "min": 60_000_000_000, "h": 3_600_000_000_000}
_OFFSET = re.compile(r"^\+\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|min|m|h)?$")


def format_wall(ns: int | None) -> str:
    """`2026-01-31 12:00:00.123456Z` (UTC, microseconds); "-" for None."""
    if ns is None:
        return "-"
    secs, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{rest // 1000:06d}Z"


def format_duration(ns: int | None) -> str:
    """A short duration: `850ns`, `12.3µs`, `4.56ms`, `1.234s`, `2m05.0s`; "-" for None."""
    if ns is None:
        return "-"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        text = f"{ns}ns"
    elif ns < 1_000_000:
        text = f"{ns / 1_000:.1f}µs"
    elif ns < 1_000_000_000:
        text = f"{ns / 1_000_000:.2f}ms"
    elif ns < 60_000_000_000:
        text = f"{ns / 1_000_000_000:.3f}s"
    else:
        minutes, rest = divmod(ns, 60_000_000_000)
        text = f"{minutes}m{rest / 1_000_000_000:04.1f}s"
    return sign + text


def format_offset(ns: int | None, base_ns: int | None) -> str:
    """`+1.234567s`: `ns` relative to `base_ns` (the recording start), microsecond resolution."""
    if ns is None or base_ns is None:
        return "-"
    delta = ns - base_ns
    sign = "-" if delta < 0 else "+"
    micros = abs(delta) // 1000
    return f"{sign}{micros // 1_000_000}.{micros % 1_000_000:06d}s"


def parse_time(text: str, base_ns: int | None) -> int:
    """A wall time in ns from `+1.5s` / `+250ms` (offset from `base_ns`) or an ISO 8601 time.

    ISO times without a zone are UTC, like every time amdbg prints. Raises UsageError.
    """
    return parse_time_span(text, base_ns)[0]


def parse_time_span(text: str, base_ns: int | None) -> tuple[int, int]:
    """The interval [start, end) of wall ns that a written time covers at its precision.

    A time with a fraction covers its last digit: `+0.003798s` is a whole microsecond, so a
    time copied from amdbg's (rounded down) output still includes the transition it was
    printed for. A time without a fraction (`+2s`, `12:00:01`) is that exact nanosecond.
    """
    value = text.strip()
    match = _OFFSET.match(value)
    if match:
        if base_ns is None:
            raise UsageError(f"time {text!r} is relative, but the recording has no start time")
        number, unit = match.group(1), match.group(2) or "s"
        whole, _, frac = number.partition(".")
        scale = _UNITS[unit]
        nanos = int(whole or 0) * scale
        step = 1
        if frac:
            nanos += int(frac) * scale // 10 ** len(frac)
            step = max(scale // 10 ** len(frac), 1)
        return base_ns + nanos, base_ns + nanos + step
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(f"cannot read time {text!r}: use an offset like +1.5s or +200ms, or "
                         "an ISO time like 2026-01-31T12:00:00.5Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    start = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    fraction = re.search(r":\d\d[.,](\d+)", value)
    step = max(1_000_000_000 // 10 ** min(len(fraction.group(1)), 9), 1) if fraction else 1
    return start, start + step


__all__ = ["format_duration", "format_offset", "format_wall", "parse_time", "parse_time_span"]
