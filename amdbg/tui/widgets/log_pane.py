"""The log pane (`l`): the machine's recorded log lines around the current transition.

Each transition's lines (those logged before it ran, then its own) form a region whose first
line carries the transition number in the gutter; the current transition's region is
highlighted and scrolled into view. Keys while the pane is focused: `1`..`5` show lines up to
that level (1 external ... 5 everything), `c` timestamps (the transition's wall-clock end,
UTC), `x` tracebacks (multi-line entries: first line only, or every line), `w` wrap long lines.

Only a window of transitions around the cursor is read (WINDOW visible ones each side, each
decoded once through the app's cache), and it is read again only when the cursor leaves its
middle, so stepping stays fast on big recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from amnode.telemetry import LogLine, RecordedMachine, RecordingError

from ...escape import printable, printable_segments
from ..cache import TxCache
from ..timefmt import when
from ..timeline import Timeline

#: visible transitions read on each side of the cursor
WINDOW = 40
#: log level names (amnode's LogLevel), 1..5
LEVELS = ("nothing", "external", "changes", "ops", "decisions", "everything")
_CURRENT = Style(bgcolor="#26304a")
_PREFIX_STYLE = {"error": "bold red", "cancel": "red", "state": "green", "exter": "dim",
                 "queue": "cyan", "handler": "magenta"}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One recorded log line of transition `number` (`pre`: logged before it ran)."""

    number: int
    line: LogLine
    pre: bool


class LogPane(ScrollView, can_focus=True, inherit_bindings=False):
    """A virtual, read-only view of log lines; rebuilt when the window or a toggle changes."""

    BINDINGS = [
        Binding("up", "scroll_by(-1)", "up", show=False),
        Binding("down", "scroll_by(1)", "down", show=False),
        Binding("pageup", "scroll_page(-1)", "page up", show=False),
        Binding("pagedown", "scroll_page(1)", "page down", show=False),
        *(Binding(str(n), f"level({n})", f"level {n}", show=False) for n in range(1, 6)),
        Binding("c", "flip('timestamps')", "timestamps", show=False),
        Binding("x", "flip('tracebacks')", "tracebacks", show=False),
        Binding("w", "flip('wrap')", "wrap", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.level = 5
        self.timestamps = False
        self.tracebacks = False
        self.wrap = False
        self.machine: RecordedMachine | None = None
        self.timeline: Timeline | None = None
        self.cache: TxCache | None = None
        self.base_ns: int | None = None
        self.current: int | None = None
        #: the transitions read: numbers in order, and their entries
        self.window: list[int] = []
        self._entries: dict[int, list[LogEntry]] = {}
        self._ends: dict[int, int] = {}
        self._errors: dict[int, str] = {}
        #: what is drawn: one visual line each, with the transition it belongs to
        self.lines: list[tuple[Text, int]] = []

    # ------------------------------------------------------------------ model

    def show(self, machine: RecordedMachine, timeline: Timeline, cache: TxCache,
             number: int | None, base_ns: int | None) -> None:
        """Show the lines around transition `number` of `machine`."""
        changed = machine is not self.machine or timeline is not self.timeline
        self.machine, self.timeline, self.cache, self.base_ns = machine, timeline, cache, base_ns
        self.current = number
        if changed or self._outside_middle(number):
            self._read_window()
        self._layout()

    def _outside_middle(self, number: int | None) -> bool:
        w = self.window
        if number is None or not w:
            return True
        if number < w[0] or number > w[-1]:
            return True
        quarter = max(len(w) // 4, 1)
        lo = w[min(quarter, len(w) - 1)]
        hi = w[max(len(w) - 1 - quarter, 0)]
        at_start = w[0] == self.timeline.first() if self.timeline is not None else False
        at_end = w[-1] == self.timeline.last() if self.timeline is not None else False
        return (number < lo and not at_start) or (number > hi and not at_end)

    def _read_window(self) -> None:
        tl, machine, cache = self.timeline, self.machine, self.cache
        self.window, self._entries, self._ends, self._errors = [], {}, {}, {}
        if tl is None or machine is None or cache is None or self.current is None:
            return
        before: list[int] = []
        n: int | None = self.current
        while n is not None and len(before) < WINDOW:
            n = tl.prev(n)
            if n is not None:
                before.append(n)
        after: list[int] = []
        n = self.current
        while n is not None and len(after) < WINDOW:
            n = tl.next(n)
            if n is not None:
                after.append(n)
        middle = [self.current] if 1 <= self.current <= len(machine) else []
        self.window = before[::-1] + middle + after
        for number in self.window:
            try:
                tx = cache.get(machine, number)
            except RecordingError as err:
                self._errors[number] = str(err)
                continue
            self._ends[number] = tx.end_ns
            entries = [LogEntry(number, line, True) for line in tx.pre_log]
            entries += [LogEntry(number, line, False) for line in tx.log]
            if entries:
                self._entries[number] = entries

    # ------------------------------------------------------------------ toggles

    def action_level(self, level: int) -> None:
        """Show lines up to `level` (1..5)."""
        self.level = max(1, min(level, 5))
        self._layout()

    def action_flip(self, what: str) -> None:
        """Flip `timestamps`, `tracebacks` or `wrap`."""
        setattr(self, what, not getattr(self, what))
        self._layout()

    def action_scroll_by(self, delta: int) -> None:
        """Scroll by `delta` lines."""
        self.scroll_to(y=self.scroll_y + delta, animate=False, immediate=True)

    def action_scroll_page(self, delta: int) -> None:
        """Scroll by a page."""
        self.action_scroll_by(delta * max(self.scrollable_content_region.height - 1, 1))

    # ------------------------------------------------------------------ layout

    def _gutter(self, number: int, first: bool) -> Text:
        width = len(str(self.timeline.total if self.timeline is not None else number)) + 1
        text = Text(f"#{number}".rjust(width) if first else " " * width,
                    style="bold" if number == self.current else "dim")
        if self.timestamps:
            at = when(self._ends.get(number), None, "wall") if first else ""
            text.append(f" {at:<15}", style="dim")
        text.append(" │ ", style="dim")
        return text

    def _entry_text(self, entry: LogEntry) -> list[Text]:
        raw = entry.line.text.split("\n")
        if not self.tracebacks and len(raw) > 1:
            shown = raw[:1]
        else:
            shown = raw
        out = []
        for i, part in enumerate(shown):
            text = line_text(printable(part)) if i == 0 else Text("    " + printable(part),
                                                                   style="dim")
            if i == 0 and len(raw) > 1 and not self.tracebacks:
                text.append(f" (+{len(raw) - 1} lines, x shows)", style="dim italic")
            out.append(text)
        return out

    def _layout(self) -> None:
        lines: list[tuple[Text, int]] = []
        width = max(self.scrollable_content_region.width, 20)
        current_at = None
        for number in self.window:
            first = True
            if number in self._errors:
                lines.append((self._gutter(number, True) + Text(
                    f"unreadable record: {printable(self._errors[number])}", style="red"),
                    number))
                continue
            for entry in self._entries.get(number, ()):
                if entry.line.level > self.level:
                    continue
                for text in self._entry_text(entry):
                    gutter = self._gutter(number, first)
                    if number == self.current and current_at is None:
                        current_at = len(lines)
                    first = False
                    if self.wrap:
                        room = max(width - len(gutter), 10)
                        for k, part in enumerate(text.wrap(self.app.console, room)):
                            lines.append(((gutter if k == 0 else Text(
                                " " * len(gutter))) + part, number))
                    else:
                        lines.append((gutter + text, number))
        if not lines:
            where = f" around #{self.current}" if self.current is not None else ""
            lines.append((Text(f"no log lines at level ≤ {self.level}{where} "
                               "(recorded with AMNODE_LOG=N, or m.log_level)", style="dim"), 0))
        self.lines = lines
        self.virtual_size = Size(width, len(lines))
        self.border_title = Text(self._title())
        if current_at is None and self.current is not None:
            # the nearest earlier transition with lines
            current_at = max((i for i, (_, n) in enumerate(lines) if n and n <= self.current),
                             default=None)
        if current_at is not None:
            page = max(self.scrollable_content_region.height, 1)
            self.scroll_to(y=max(current_at - page // 3, 0), animate=False, immediate=True)
        self.refresh()

    def _title(self) -> str:
        flags = [name for name, on in (("times", self.timestamps), ("traces", self.tracebacks),
                                       ("wrap", self.wrap)) if on]
        span = f" #{self.window[0]}..#{self.window[-1]}" if self.window else ""
        return f"Log ≤{self.level} {LEVELS[self.level]}{span}" + \
            (f" [{' '.join(flags)}]" if flags else "")

    def on_resize(self) -> None:
        """Wrapping depends on the width: lay out again."""
        self._layout()

    def render_line(self, y: int) -> Strip:
        """Line `y` of the pane."""
        width = self.scrollable_content_region.width
        base = self.rich_style
        i = int(self.scroll_y) + y
        if i >= len(self.lines):
            return Strip.blank(width, base)
        text, number = self.lines[i]
        text = text.copy()
        if number and number == self.current:
            text.stylize(_CURRENT)
        text.no_wrap = True
        text.overflow = "crop"
        text.truncate(width, pad=True)
        segments = printable_segments(text.render(self.app.console))
        strip = Strip([Segment(s.text, base + s.style if s.style else base, s.control)
                       for s in segments if s.text != "\n"], width)
        return strip.crop_extend(0, width, base)


def line_text(text: str) -> Text:
    """A log line with its `[prefix]` coloured (`[error]` red, `[state]` green...)."""
    out = Text()
    if text.startswith("[") and "]" in text:
        end = text.index("]") + 1
        prefix = text[1:end - 1].split(":")[0]
        out.append(text[:end], style=_PREFIX_STYLE.get(prefix, "yellow"))
        out.append(text[end:], style="dim" if prefix == "exter" else "")
    else:
        out.append(text)
    return out


__all__ = ["LEVELS", "WINDOW", "LogEntry", "LogPane", "line_text"]
