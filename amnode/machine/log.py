"""Log levels, log entries and the bounded args mapper shared by logs and recordings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class LogLevel(IntEnum):
    """How much a machine logs; each level includes the ones below it (Go LogLevel)."""

    NOTHING = 0
    EXTERNAL = 1
    CHANGES = 2
    OPS = 3
    DECISIONS = 4
    EVERYTHING = 5

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One formatted log line and the level it was emitted at."""

    level: int
    text: str


#: Arg keys shown in log lines by `new_args_mapper()` (Go LogArgs).
LOG_ARGS = ("name", "id", "port", "addr", "err", "path", "url", "uri")

#: Default maximum length of one rendered arg value (Go's mapper default is 20).
ARGS_MAX_LEN = 20

ArgsMapper = Callable[[Mapping[str, Any]], dict[str, str]]


def truncate(text: str, max_len: int) -> str:
    """Cut `text` to `max_len` characters, ending with "..." when cut (Go's mapper rule)."""
    if max_len <= 0 or len(text) <= max_len:
        return text
    if max_len <= 3:
        return text[:max_len]
    return text[: max_len - 3] + "..."


def render_value(value: Any, max_len: int) -> str:
    """Render one arg value to a short, safe string; never raises."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception as err:  # a hostile __repr__ must not break a transition
        text = f"<unrepresentable {type(value).__name__}: {err!r}>"
    return truncate(text.replace("\n", " "), max_len)


def new_args_mapper(max_len: int = ARGS_MAX_LEN,
                    names: Iterable[str] | None = LOG_ARGS) -> ArgsMapper:
    """Return a mapper rendering the listed arg keys (all keys when `names` is None) to strings."""
    keys = None if names is None else frozenset(names)

    def mapper(args: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in args.items():
            if keys is not None and key not in keys:
                continue
            out[str(key)] = render_value(value, max_len)
        return out

    return mapper


def format_args(mapped: Mapping[str, str]) -> str:
    """Format mapped args as Go does for log lines: " (k=v k2=v2)", keys sorted, or ""."""
    if not mapped:
        return ""
    return " (" + " ".join(f"{k}={mapped[k]}" for k in sorted(mapped)) + ")"
