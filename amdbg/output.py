"""Where amdbg writes: a rich console for humans, raw text and JSON for pipes and tools.

Colors only on a terminal; `NO_COLOR` turns them off there too (rich reads it), `FORCE_COLOR`
forces them. Piped output is plain text, wide enough not to wrap table rows. Every way out
escapes control characters (`amdbg.escape`): recordings are untrusted, whatever the stream.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from rich import box
from rich.cells import cell_len
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

    def write_text(self, text: Text) -> None:
        """Write lines already laid out (no wrapping, no table): styled on a terminal, plain
        right-trimmed text otherwise. Much cheaper than `print` for thousands of rows."""
        if self.tty:
            self.console.print(text, end="", soft_wrap=True, crop=False)
        else:
            plain = printable(text.plain, newlines=True)
            self.stream.write("\n".join(line.rstrip() for line in plain.split("\n")))
        self.stream.flush()


def table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A borderless table with a header rule; columns named in `right` are right-aligned."""
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False,
              header_style="bold")
    for name in columns:
        t.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return t


class RowWriter:
    """Prints a table row by row as rows are produced (a big `log` starts printing at once and
    never holds every row): column widths come from the header and the first rows (what is
    ready within `FIRST_WAIT` seconds, at most `SAMPLE` rows) and only grow afterwards.

    Cells are `str` (already escaped by the caller) or `Text`; styles show on a terminal only.
    `before_write` runs before each batch reaches the stream (a progress line clears itself).
    """

    #: rows buffered to size the columns before the first line is printed
    SAMPLE = 100
    #: seconds after the first buffered row when a batch is printed regardless
    FIRST_WAIT = 0.2
    #: rows per batch written to the stream after the first
    BATCH = 200
    GAP = "   "

    def __init__(self, printer: Printer, columns: Iterable[str], *, right: Iterable[str] = (),
                 before_write: Callable[[], None] | None = None) -> None:
        self.printer = printer
        self.columns = list(columns)
        right = set(right)
        self.right = [name in right for name in self.columns]
        self.widths = [cell_len(name) for name in self.columns]
        self.before_write = before_write
        self.rows = 0
        self._pending: list[list[Text]] = []
        self._since = 0.0
        self._started = False

    def reserve(self, column: str, sample: str) -> None:
        """Make `column` at least as wide as `sample` (e.g. the largest number to come), so
        that rows printed later line up with the first ones."""
        i = self.columns.index(column)
        self.widths[i] = max(self.widths[i], cell_len(sample))

    def add(self, *cells: str | Text) -> None:
        """Queue one row; printed with the next batch."""
        row = [c if isinstance(c, Text) else Text(c) for c in cells]
        if not self._pending:
            self._since = time.monotonic()
        self._pending.append(row)
        self.rows += 1
        limit = self.BATCH if self._started else self.SAMPLE
        if len(self._pending) >= limit or time.monotonic() - self._since >= self.FIRST_WAIT:
            self.flush()

    def flush(self) -> None:
        """Print the queued rows (and the header before the first of them)."""
        if not self._pending:
            return
        for row in self._pending:
            for i, cell in enumerate(row[:-1]):
                width = cell.cell_len
                if width > self.widths[i]:
                    self.widths[i] = width
        out = Text()
        if not self._started:
            self._started = True
            self._line(out, [Text(name, style="bold") for name in self.columns])
            rule = sum(self.widths[:-1]) + len(self.GAP) * (len(self.columns) - 1) + \
                max(self.widths[-1], max((r[-1].cell_len for r in self._pending), default=0))
            out.append("\u2500" * rule + "\n")
        for row in self._pending:
            self._line(out, row)
        self._pending.clear()
        if self.before_write is not None:
            self.before_write()
        self.printer.write_text(out)

    def _line(self, out: Text, cells: list[Text]) -> None:
        last = len(cells) - 1
        for i, cell in enumerate(cells):
            if i:
                out.append(self.GAP)
            pad = self.widths[i] - cell.cell_len if i < last else 0
            if pad > 0 and self.right[i]:
                out.append(" " * pad)
            out.append_text(cell)
            if pad > 0 and not self.right[i]:
                out.append(" " * pad)
        out.append("\n")


class Progress:
    """A one-line progress report on stderr for long scans, only when stderr is a terminal
    (never in pipes or logs); it appears after `DELAY` seconds and is erased when done."""

    DELAY = 0.5
    INTERVAL = 0.1

    def __init__(self, stream: TextIO | None, what: str, total: int) -> None:
        self.stream = stream if stream is not None and _is_tty(stream) else None
        self.what = what
        self.total = total
        self._start = time.monotonic()
        self._next = self._start + self.DELAY
        self._shown = False

    @property
    def active(self) -> bool:
        """True when progress can be shown (stderr is a terminal)."""
        return self.stream is not None

    def update(self, done: int) -> None:
        """Report `done` of `total`; cheap when called often (redraws 10 times a second)."""
        if self.stream is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.INTERVAL
        pct = f" ({done * 100 // self.total}%)" if self.total else ""
        self.stream.write(f"\r\x1b[2K{self.what} {done:,}/{self.total:,}{pct}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the progress line (before other output, and when done)."""
        if self.stream is not None and self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
            self._next = time.monotonic() + self.INTERVAL


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
    "PIPE_WIDTH", "STYLE_UNVERIFIED", "Printer", "Progress", "RowWriter", "heading",
    "make_console", "table", "write_json", "write_raw",
]
