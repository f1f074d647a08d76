"""How the TUI writes times: offsets from the recording start, wall clock (UTC), or nothing.

Hidden times (`t` twice) also hide durations, which makes a screen depend only on what
happened, not on how fast: handy to compare two runs or to share a capture.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..times import format_duration, format_offset

MODES = ("offset", "wall", "off")


def when(ns: int | None, base_ns: int | None, mode: str) -> str:
    """A transition's time in `mode` ("" when hidden)."""
    if mode == "off" or ns is None:
        return ""
    if mode == "wall":
        secs, rest = divmod(ns, 1_000_000_000)
        return datetime.fromtimestamp(secs, UTC).strftime("%H:%M:%S") + f".{rest // 1000:06d}"
    return format_offset(ns, base_ns)


def took(ns: int | None, mode: str) -> str:
    """A duration, or "" when times are hidden."""
    return "" if mode == "off" else format_duration(ns)


def next_mode(mode: str) -> str:
    """The mode after `mode` in the `t` cycle."""
    return MODES[(MODES.index(mode) + 1) % len(MODES)]


__all__ = ["MODES", "next_mode", "took", "when"]
