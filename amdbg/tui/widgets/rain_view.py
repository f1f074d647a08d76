"""The rain view (`r`): one row per visible transition, one character per state (see
`amdbg.tui.matrix` for the characters) — a pattern across many transitions at a glance.

A virtual list over the machine's timeline (the filters apply): only the rows on screen are
decoded, through the app's transition cache, so a million-transition machine scrolls as fast
as a small one. The cursor row is the current transition; moving it (↑ ↓ pgup pgdn, click)
selects that transition, and a click on a cell also selects the cell's state.
"""

from __future__ import annotations

from collections import OrderedDict

from rich.text import Text
from textual import events
from textual.strip import Strip
from textual.timer import Timer

from amnode.telemetry import RecordedMachine, RecordingError

from ...escape import printable
from .. import palette
from ..cache import TxCache
from ..matrix import (
    RAIN_ACTIVE_TOUCHED,
    RAIN_CANCELED_CALL,
    RAIN_DEACTIVATED,
    RAIN_NOTHING,
    RAIN_TOUCHED,
    rain_row,
)
from ..messages import StateChosen, TransitionChosen
from ..timefmt import when
from ..timeline import Timeline
from .rows import RowList, cursor_style

#: columns before the first state: the current-transition mark and a space
LEAD = 2
#: drawn rows kept
STRIP_CACHE = 512
#: pages prepared around the screen once the user rests between keys: the page below it
#: drawn, the page above it decoded (decoding is ~0.4 ms a row, drawing ~0.3 ms), so that a
#: page key finds its rows ready
PREFETCH_PAGES = 1
#: rows prepared per slice: a key that arrives meanwhile waits for at most one slice
PREFETCH_SLICE = 6
#: seconds between slices, and from the frame drawn after a key to the first slice
PREFETCH_DELAY = 0.005
_CHAR_STYLE = {RAIN_ACTIVE_TOUCHED: "bold yellow", RAIN_DEACTIVATED: "bold red",
               RAIN_CANCELED_CALL: "bold magenta", RAIN_TOUCHED: "green",
               RAIN_NOTHING: "bright_black"}
_SELECTED_COLUMN = "on #3a3a1a"


class RainView(RowList):
    """Rows: `▶ 1.2|.*1  #42 +0.123s` — state characters, transition number and time."""

    header_lines = 2

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.machine: RecordedMachine | None = None
        self.timeline: Timeline | None = None
        self.cache: TxCache | None = None
        self.cols: list[int] = []
        self.current: int | None = None
        self.selected: str | None = None
        self.base_ns: int | None = None
        self.time_mode = "offset"
        #: drawn rows by (number, current, cursor, focused, width, palette): a key redraws
        #: two rows, a scroll by one row draws one new row
        self._strips: OrderedDict[tuple[object, ...], Strip] = OrderedDict()
        self._prefetch_timer: Timer | None = None

    def load(self, machine: RecordedMachine, timeline: Timeline, cache: TxCache,
             base_ns: int | None) -> None:
        """Show `machine`'s transitions through `timeline`, decoding through `cache`."""
        self.machine, self.timeline, self.cache, self.base_ns = machine, timeline, cache, base_ns
        self.current = None
        self.cursor = 0
        self._strips.clear()
        self.reset()

    def show(self, number: int | None, cols: list[int], selected: str | None,
             time_mode: str) -> None:
        """Put the cursor on transition `number`; columns are the states `cols`."""
        if cols != self.cols or time_mode != self.time_mode or selected != self.selected:
            self.cols, self.time_mode = list(cols), time_mode
            self._strips.clear()
        self.selected = selected
        self.current = number
        tl = self.timeline
        if self.virtual_size.height != self.row_count() + self.header_lines:
            self.reset()
        if tl is not None and number is not None and len(tl):
            self.show_row(min(tl.row(number), len(tl) - 1))
        self.border_title = self._title()
        self.refresh()
        if self._prefetch_timer is not None:  # nothing before the frame of this key
            self._prefetch_timer.stop()
            self._prefetch_timer = None
        self.call_after_refresh(self._schedule_prefetch)

    def _schedule_prefetch(self) -> None:
        if self._prefetch_timer is not None:
            self._prefetch_timer.stop()
        self._prefetch_timer = self.set_timer(PREFETCH_DELAY, self._prefetch)

    def _prefetch(self) -> None:
        """Draw a slice of the rows of the page below the screen, decode those of the page
        above it; again later if more are left."""
        self._prefetch_timer = None
        tl, machine, cache = self.timeline, self.machine, self.cache
        if tl is None or machine is None or cache is None or not self.display:
            return
        top, page, count = int(self.scroll_y), self.page, len(tl)
        ahead = PREFETCH_PAGES * page
        done = 0
        for row in range(top + page, min(top + page + ahead, count)):
            key = self._key(row, tl.number(row))
            if key not in self._strips:
                # the line it will be on after a page down, drawn now (decoded on the way)
                self._keep(key, self._line(self.header_lines + row - top,
                                           self.scrollable_content_region.width))
                done += 1
                if done >= PREFETCH_SLICE:
                    self._schedule_prefetch()
                    return
        for row in range(max(top - ahead, 0), min(top, count)):
            number = tl.number(row)
            if (machine.key, number) in cache:
                continue
            try:
                cache.get(machine, number)
            except RecordingError:
                pass  # drawn as unreadable when it comes on screen
            done += 1
            if done >= PREFETCH_SLICE:
                self._schedule_prefetch()
                return

    def _title(self) -> Text:
        tl = self.timeline
        title = "Rain"
        if tl is not None:
            title += f" {self.current or '-'} / {tl.total}"
        if self.selected is not None and self.machine is not None:
            names = self.machine.state_names
            if self.selected in names:
                title += f" · col {names.index(self.selected)} = {printable(self.selected)}"
        return Text(title)

    # ------------------------------------------------------------------ RowList

    def row_count(self) -> int:
        return len(self.timeline) if self.timeline is not None else 0

    def _selected_index(self) -> int | None:
        if self.machine is None or self.selected is None:
            return None
        names = self.machine.state_names
        return names.index(self.selected) if self.selected in names else None

    def render_header(self, line: int, width: int) -> Text:
        """State indexes, written downwards: tens on line 0, units on line 1."""
        sel = self._selected_index()
        text = Text(" " * LEAD)
        for i in self.cols:
            digit = str(i // 10 % 10) if line == 0 else str(i % 10)
            if line == 0 and i < 10:
                digit = " "
            text.append(digit, style="bold " + (_SELECTED_COLUMN if i == sel else ""))
        if line == 1:
            text.append("  #", style="bold")
        return text

    def render_row(self, row: int, width: int, selected: bool) -> Text:
        assert self.timeline is not None and self.machine is not None and self.cache is not None
        number = self.timeline.number(row)
        mark = "▶ " if number == self.current else "  "
        text = Text(mark, style="bold yellow")
        try:
            tx = self.cache.get(self.machine, number)
        except RecordingError as err:
            text.append(f"#{number} unreadable record: {printable(str(err))}", style="red")
            return text
        sel = self._selected_index()
        for i, cell in zip(self.cols, rain_row(tx, self.cols), strict=True):
            style = _CHAR_STYLE.get(cell.char, "yellow" if cell.active else "")
            if cell.error:
                style += " on red"
            if cell.called:
                style += " underline"
            if i == sel:
                style += " " + _SELECTED_COLUMN
            text.append(cell.char, style=style)
        text.append(f"  #{number}", style="bold" if number == self.current else "")
        at = when(tx.end_ns, self.base_ns, self.time_mode)
        if at:
            text.append(f" {at}", style="dim")
        if not tx.accepted:
            text.stylize("dim", LEAD)
        if selected:
            text.stylize(cursor_style(self.has_focus))
        return text

    def _key(self, row: int, number: int) -> tuple[object, ...]:
        """What a drawn row depends on (its cache key)."""
        return (number, number == self.current, row == self.cursor, self.has_focus,
                self.scrollable_content_region.width, palette.current())

    def _keep(self, key: tuple[object, ...], strip: Strip) -> None:
        self._strips[key] = strip
        if len(self._strips) > STRIP_CACHE:
            self._strips.popitem(last=False)

    def render_line(self, y: int) -> Strip:
        """Line `y`: a row drawn once while it looks the same (cached strips)."""
        row = int(self.scroll_y) + y - self.header_lines
        if y < self.header_lines or self.timeline is None or row >= self.row_count():
            return super().render_line(y)
        key = self._key(row, self.timeline.number(row))
        strip = self._strips.get(key)
        if strip is None:
            strip = super().render_line(y)
            self._keep(key, strip)
        else:
            self._strips.move_to_end(key)
        return strip

    def action_cursor(self, delta: int) -> None:
        """Choose the transition `delta` rows away; the app moves the cursor row (one frame
        per key instead of two)."""
        self._choose(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        """Choose the transition a page away."""
        self._choose(self.cursor + delta * self.page)

    def _choose(self, row: int) -> None:
        count = self.row_count()
        if count:
            self.row_picked(max(0, min(row, count - 1)))

    def row_picked(self, row: int) -> None:
        assert self.timeline is not None
        self.post_message(TransitionChosen(self.timeline.number(row)))

    def on_click(self, event: events.Click) -> None:
        """A click on a cell selects its state, then its transition (the row)."""
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= self.header_lines and self.machine is not None:
            k = offset.x - LEAD
            if 0 <= k < len(self.cols) and self.cols[k] < len(self.machine.state_names):
                self.selected = self.machine.state_names[self.cols[k]]
                self.post_message(StateChosen(self.selected))
        super().on_click(event)

    def notify_style_update(self) -> None:
        """CSS (theme) changed: drawn rows may have another background."""
        super().notify_style_update()
        self._strips.clear()

    def on_focus(self) -> None:
        """Redraw the cursor row in the focused colour."""
        self.refresh()

    def on_blur(self) -> None:
        """Redraw the cursor row in the unfocused colour."""
        self.refresh()


__all__ = ["LEAD", "RainView"]
