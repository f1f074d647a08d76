"""How the TUI writes times: offsets from the recording start, wall clock (UTC), or nothing.

Hidden times (`t` twice) also hide durations, which makes a screen depend only on what
happened, not on how fast: handy to compare two runs or to share a capture.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..times import format_duration, format_offset

MODES = ("offset", "wall", "off")


def when(ns: int | None, base_ns: int | None, mode: str, *, column: str = "") -> str:
    """A transition's time in `mode` ("" when hidden). The wall clock is UTC and says so
    with its date (`2026-12-02 07:45:01.123456 UTC`), except in the transition list's column
    (`column`="time": `07:45:01.123456`, the header says UTC; "date": `12-02 07:45:01.123456`
    for recordings that span more than one day)."""
    if mode == "off" or ns is None:
        return ""
    if mode == "wall":
        secs, rest = divmod(ns, 1_000_000_000)
        at = datetime.fromtimestamp(secs, UTC)
        micro = f".{rest // 1000:06d}"
        if column == "time":
            return at.strftime("%H:%M:%S") + micro
        if column == "date":
            return at.strftime("%m-%d %H:%M:%S") + micro
        return at.strftime("%Y-%m-%d %H:%M:%S") + micro + " UTC"
    return format_offset(ns, base_ns)


def spans_days(first_ns: int | None, last_ns: int | None) -> bool:
    """True if the two moments fall on different UTC dates (the list then shows dates)."""
    if first_ns is None or last_ns is None:
        return False
    day = 86_400_000_000_000
    return first_ns // day != last_ns // day


def took(ns: int | None, mode: str) -> str:
    """A duration, or "" when times are hidden."""
    return "" if mode == "off" else format_duration(ns)


def next_mode(mode: str) -> str:
    """The mode after `mode` in the `t` cycle."""
    return MODES[(MODES.index(mode) + 1) % len(MODES)]


__all__ = ["MODES", "next_mode", "spans_days", "took", "when"]
