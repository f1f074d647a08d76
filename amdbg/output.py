"""Where amdbg writes: a rich console for humans, raw text and JSON for pipes and tools.

Colors only on a terminal; `NO_COLOR` turns them off there too (rich reads it), `FORCE_COLOR`
forces them. Piped output is plain text, wide enough not to wrap table rows. Every way out
escapes control characters (`amdbg.escape`): recordings are untrusted, whatever the stream.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from rich import box
from rich.console import (
    Console,
    ConsoleOptions,
    ConsoleRenderable,
    RenderableType,
    RenderHook,
    RenderResult,
)
from rich.table import Table
from rich.text import Text

from .escape import escape_json, printable, printable_segments

#: width used when stdout is not a terminal and COLUMNS is not set
PIPE_WIDTH = 200

STYLE_MACHINE = "bold cyan"
STYLE_ACCEPTED = "green"
STYLE_CANCELED = "bold red"
STYLE_ERROR = "bold red"
STYLE_FLAG = "magenta"
STYLE_DIM = "dim"
STYLE_HEADING = "bold underline"
STYLE_ADDED = "green"
STYLE_REMOVED = "red"
#: records no valid check record covered (a torn tail, a damaged block): shown, but marked
STYLE_UNVERIFIED = "bold yellow"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make_console(stream: TextIO | None = None) -> Console:
    """A console writing to `stream` (default: the current sys.stdout)."""
    stream = sys.stdout if stream is None else stream
    width = None
    if not _is_tty(stream):
        try:
            width = int(os.environ.get("COLUMNS", "")) or PIPE_WIDTH
        except ValueError:
            width = PIPE_WIDTH
    return Console(file=stream, highlight=False, markup=False, emoji=False, width=width,
                   soft_wrap=False)


class _Escaped:
    """A renderable whose text segments are escaped (`printable_segments`)."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from printable_segments(console.render(self.inner, options))


class _EscapeHook(RenderHook):
    """Escapes whatever the console prints, after rich has laid it out (a last line of
    defence: recorded strings are escaped where they are put into output, too)."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Escaped(r) for r in renderables]


class Printer:
    """Prints rich renderables: styled on a terminal, plain right-trimmed lines when piped;
    either way with every control character in their text escaped."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.console = make_console(self.stream)
        self.console.push_render_hook(_EscapeHook())
        self.tty = _is_tty(self.stream)

    def print(self, *renderables: Any) -> None:
        """Print renderables, one after the other."""
        if self.tty:
            self.console.print(*renderables)
            return
        with self.console.capture() as captured:
            self.console.print(*renderables)
        text = captured.get()
        self.stream.write("\n".join(line.rstrip() for line in text.split("\n")))


def table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A borderless table with a header rule; columns named in `right` are right-aligned."""
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False,
              header_style="bold")
    for name in columns:
        t.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return t


def heading(text: str) -> Text:
    """A section heading."""
    return Text(text, style=STYLE_HEADING)


def write_raw(text: str, stream: TextIO | None = None) -> None:
    """Write text (graph exports, JSON): never wrapped, never styled, control characters
    other than its line breaks escaped."""
    stream = sys.stdout if stream is None else stream
    text = printable(text, newlines=True)
    stream.write(text if text.endswith("\n") else text + "\n")


def write_json(data: Any, stream: TextIO | None = None) -> None:
    """Write `data` as indented JSON with a trailing newline; characters a terminal could act
    on are `\\uXXXX` escapes (the same data for a JSON parser)."""
    write_raw(escape_json(json.dumps(data, indent=2, ensure_ascii=False)), stream)


__all__ = [
    "PIPE_WIDTH", "STYLE_UNVERIFIED", "Printer", "heading", "make_console", "table", "write_json",
    "write_raw",
]
