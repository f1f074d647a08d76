"""The transition list (timeline) of the selected machine: one row per visible transition,
rendered only when on screen; the title carries the position `n / N` and the filters. A step
repaints the two rows and the title line that changed (`LineRepaint`), not the whole list."""

from __future__ import annotations

from rich.text import Text

from amnode.telemetry import RecordedMachine, RecordingError, TransitionRecord

from ...describe import UNVERIFIED, flag_names
from ...escape import printable
from ..cache import TxCache
from ..frame import MARK_REMOVED
from ..messages import TransitionChosen
from ..timefmt import when
from ..timeline import Timeline
from .rows import RowList, cursor_style

_TYPE_STYLE = {"add": "green", "remove": "red", "set": "yellow"}


class TransitionList(RowList):
    """Rows: number, time, mutation type, called states, result, flags, changes."""

    header_lines = 1
    cache_rows = True
    repaint_changed = True

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.machine: RecordedMachine | None = None
        self.timeline: Timeline | None = None
        #: the app's cache of decoded transitions (shared with the other panes), from `load`
        self.cache: TxCache | None = None
        self.base_ns: int | None = None
        self.time_mode = "offset"
        self.current: int | None = None
        #: the recording spans more than one UTC date: wall-clock rows show the date
        self.many_days = False

    # ------------------------------------------------------------------ model

    def load(self, machine: RecordedMachine | None, timeline: Timeline | None, cache: TxCache,
             base_ns: int | None) -> None:
        """Show `machine`'s transitions through `timeline`."""
        self.machine, self.timeline, self.cache, self.base_ns = machine, timeline, cache, base_ns
        self.current = None
        self.cursor = 0
        self.reset()
        self.update_title()

    def set_current(self, number: int | None) -> None:
        """Move the cursor to transition `number` (it may be hidden by filters: then the
        next visible row is marked and the title says so)."""
        self.current = number
        if self.timeline is not None and number is not None and len(self.timeline):
            self.show_row(min(self.timeline.row(number), len(self.timeline) - 1))
        else:
            self.repaint()
        self.update_title()

    def update_title(self) -> None:
        """`Transitions 3 / 12` (+ `shown of total`, filters and their counts)."""
        tl = self.timeline
        if tl is None or self.machine is None:
            self.set_border("Transitions", "")
            return
        n = self.current
        title = "Transitions "
        if n is None:
            title += f"- / {tl.total}"
        elif tl.hidden and tl.ready:
            if tl.visible(n):
                title += f"{tl.row(n) + 1} / {len(tl)} shown · #{n} of {tl.total}"
            else:
                title += f"#{n} (hidden) · {len(tl)} of {tl.total} shown"
        else:
            title += f"{n} / {tl.total}"
        # the border lines only: a step changes two rows and the title, not the whole list
        self.set_border(title, self.filter_summary())

    def filter_summary(self) -> str:
        """`hiding: canceled 2, health 1` or the counts of each kind."""
        tl = self.timeline
        if tl is None:
            return ""
        if tl.pending:
            return f"filtering... {tl.progress:.0%}"
        counts = tl.counts
        if counts is None:
            return f"counting... {tl.progress:.0%}" if tl.total else ""
        if tl.hidden:
            return "hiding " + ", ".join(f"{k} {counts[k]}" for k in counts if k in tl.hidden)
        return "f filters: " + " · ".join(f"{k} {v}" for k, v in counts.items())

    def set_time_mode(self, mode: str) -> None:
        """Show times as offsets, wall clock, or not at all."""
        self.time_mode = mode
        self.forget_rows()

    # ------------------------------------------------------------------ RowList

    def row_count(self) -> int:
        return len(self.timeline) if self.timeline is not None else 0

    def _num_width(self) -> int:
        return len(str(self.timeline.total)) if self.timeline is not None else 1

    def _time_width(self) -> int:
        if self.time_mode == "wall":
            return 21 if self.many_days else 15
        return {"offset": 11, "off": 0}[self.time_mode]

    def render_header(self, line: int, width: int) -> Text:
        nw, tw = self._num_width(), self._time_width()
        text = Text(f"  {'#':>{nw}} ", style="bold")
        if tw:
            title = "time UTC" if self.time_mode == "wall" else "time"
            text.append(f"{title:<{tw}} ", style="bold")
        text.append(f"{'type':<6} {'called':<26} {'result':<9} {'flags':<11} changes",
                    style="bold")
        return text

    def render_row(self, row: int, width: int, selected: bool) -> Text:
        assert self.timeline is not None and self.machine is not None and self.cache is not None
        number = self.timeline.number(row)
        try:
            text = self._row_text(self.cache.get(self.machine, number))
        except RecordingError as err:
            text = Text(f"  {number:>{self._num_width()}} unreadable record: "
                        f"{printable(str(err))}", style="red")
        if selected:
            text.stylize(cursor_style(self.has_focus))
        return text

    def _row_text(self, tx: TransitionRecord) -> Text:
        nw, tw = self._num_width(), self._time_width()
        mark = "▶" if tx.number == self.current else " "
        text = Text(f"{mark} ", style="bold yellow")
        text.append(f"{tx.number:>{nw}} ", style="bold" if tx.number == self.current else "")
        if tw:
            column = "date" if self.many_days else "time"
            text.append(f"{when(tx.end_ns, self.base_ns, self.time_mode, column=column):<{tw}} ",
                        style="dim")
        text.append(f"{tx.type:<6} ", style=_TYPE_STYLE.get(tx.type, ""))
        called = printable(" ".join(tx.called))
        if len(called) > 26:
            called = called[:25] + "…"
        text.append(f"{called:<26} ", style="bold" if tx.accepted else "")
        if tx.is_check:
            text.append(f"{'? check':<9} ", style="blue")
        elif tx.accepted:
            text.append(f"{'✓ ok':<9} ", style="green")
        else:
            text.append(f"{'✗ cancel':<9} ", style="bold red")
        flags = " ".join(f for f in flag_names(tx) if f != "check")
        start = len(text)
        text.append(f"{flags:<11} ", style="magenta")
        if tx.unverified:  # the last flag: make it stand out
            end = start + len(flags)
            text.stylize("bold yellow", end - len(UNVERIFIED), end)
        for name in tx.activated:
            text.append(f"+{printable(name)} ", style="green")
        for name in tx.deactivated:
            text.append(f"{MARK_REMOVED}{printable(name)} ", style="red")
        if not tx.accepted:
            text.stylize("dim", 2)
        return text

    def row_key(self, row: int) -> object:
        """A row shows its transition and whether it is the current one (▶)."""
        assert self.timeline is not None
        number = self.timeline.number(row)
        return number, number == self.current

    def row_picked(self, row: int) -> None:
        assert self.timeline is not None
        self.post_message(TransitionChosen(self.timeline.number(row)))

    def on_focus(self) -> None:
        """Redraw the cursor row in the focused colour."""
        self.refresh()

    def on_blur(self) -> None:
        """Redraw the cursor row in the unfocused colour."""
        self.refresh()


__all__ = ["TransitionList"]
