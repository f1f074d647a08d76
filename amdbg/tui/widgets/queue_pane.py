"""The queue pane (`u`): the machine's queued mutations — those that waited behind a running
transition or were prepended (auto states) — and which of them are pending at the cursor.

A filter box on top keeps the rows whose type, called states, args, source or flags contain
every word typed (case-insensitive; `pending` keeps those pending at the cursor). Rows show
the queue tick it runs at (`q9`, `q0` = prepended), when it was queued, what it calls and its
state at the current transition: `pending` (queued, not run yet), `done`, or `later` (queued
after it). Enter (or a click) on a row goes to the transition that ran it.
"""

from __future__ import annotations

from bisect import bisect_right

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input

from amnode.telemetry import QueuedRecord, RecordedMachine, RecordingError, TransitionRecord

from ...escape import printable
from ..messages import TransitionChosen
from ..timefmt import when
from .rows import RowList, cursor_style

#: machines with more queued records than this are not listed (decoding them all would stall)
QUEUED_MAX = 20_000
#: transitions searched after a queued record for the one that ran it
RUN_MAX_SCAN = 5_000

PENDING, DONE, LATER = "pending", "done", "later"
_STATUS_STYLE = {PENDING: "bold yellow", DONE: "green", LATER: "dim"}


def queue_status(q: QueuedRecord, tx: TransitionRecord | None) -> str:
    """Where a queued mutation stands after transition `tx`: pending, done or later."""
    if tx is None or q.wall_ns > tx.end_ns:
        return LATER
    if q.queue_tick and q.queue_tick > tx.queue_tick:
        return PENDING
    if not q.queue_tick and q.tx_id == tx.id:  # prepended during tx: runs right after it
        return PENDING
    return DONE


def queued_text(q: QueuedRecord) -> str:
    """What the filter matches: type, called states, args, source and flags."""
    parts = [q.type, *q.called, *(f"{k}={v}" for k, v in q.args.items())]
    if q.source is not None:
        parts.append(str(q.source))
    parts += [name for name, on in (("auto", q.is_auto), ("check", q.is_check),
                                    ("prepended", q.prepended)) if on]
    return " ".join(parts).lower()


class QueueList(RowList):
    """The rows of the queue pane."""

    BINDINGS = [Binding("enter", "run", "go to the transition that ran it", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: list[QueuedRecord] = []
        self.rows: list[int] = []
        self.tx: TransitionRecord | None = None
        self.base_ns: int | None = None
        self.time_mode = "offset"

    def row_count(self) -> int:
        return len(self.rows)

    def render_row(self, row: int, width: int, selected: bool) -> Text:
        q = self.records[self.rows[row]]
        status = queue_status(q, self.tx)
        text = Text(f"{status:<8}", style=_STATUS_STYLE[status])
        text.append(f"q{q.queue_tick:<5} ", style="cyan")
        at = when(q.wall_ns, self.base_ns, self.time_mode)
        if at:
            text.append(f"{at:<12} ", style="dim")
        text.append(f"{q.type:<6} ", style="bold")
        text.append(printable(" ".join(q.called)), style="bold")
        if q.args:
            text.append(" (" + printable(", ".join(f"{k}={v}" for k, v in q.args.items()))
                        + ")", style="dim")
        flags = [name for name, on in (("auto", q.is_auto), ("check", q.is_check),
                                       ("prepended", q.prepended)) if on]
        if flags:
            text.append("  " + " ".join(flags), style="magenta")
        if q.unverified:
            text.append("  unverified", style="bold yellow")
        if selected:
            text.stylize(cursor_style(self.has_focus))
        return text

    def action_run(self) -> None:
        """Ask the queue pane to go to the transition that ran the cursor row."""
        if self.rows:
            self.post_message(QueuePane.RunChosen(self.records[self.rows[self.cursor]]))

    def on_focus(self) -> None:
        """Redraw the cursor row in the focused colour."""
        self.refresh()

    def on_blur(self) -> None:
        """Redraw the cursor row in the unfocused colour."""
        self.refresh()


class QueuePane(Vertical):
    """A filter box and the list of the machine's queued mutations."""

    BINDINGS = [Binding("escape", "leave_filter", "back to the list", show=False)]

    class RunChosen(Message):
        """Internal: a queued record was chosen (the pane turns it into a transition)."""

        def __init__(self, record: QueuedRecord) -> None:
            super().__init__()
            self.record = record

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.machine: RecordedMachine | None = None
        self.records: list[QueuedRecord] = []
        self._texts: list[str] = []
        self.note = ""
        self.query_text = ""

    def compose(self) -> ComposeResult:
        """The filter box above the list."""
        yield Input(placeholder="filter: states, args, auto, prepended, pending…",
                    id="queue-filter")
        yield QueueList(id="queue-list")

    @property
    def list(self) -> QueueList:
        """The list of rows."""
        return self.query_one(QueueList)

    def show(self, machine: RecordedMachine, tx: TransitionRecord | None, base_ns: int | None,
             time_mode: str) -> None:
        """Show `machine`'s queued mutations as they stand after `tx`."""
        if machine is not self.machine or len(self.records) != min(machine.queued_count,
                                                                    QUEUED_MAX + 1):
            self.machine = machine
            self._load(machine)
        lst = self.list
        lst.tx, lst.base_ns, lst.time_mode = tx, base_ns, time_mode
        self._apply()
        if tx is not None and lst.rows:
            # the last record queued up to the cursor
            times = [self.records[i].wall_ns for i in lst.rows]
            lst.show_row(max(bisect_right(times, tx.end_ns) - 1, 0))

    def _load(self, machine: RecordedMachine) -> None:
        self.note = ""
        self.records, self._texts = [], []
        if machine.queued_count > QUEUED_MAX:
            self.note = f"{machine.queued_count:,} queued mutations: too many to list"
            return
        try:
            self.records = machine.queued()
            self._texts = [queued_text(q) for q in self.records]
        except RecordingError as err:
            self.records, self._texts = [], []
            self.note = f"unreadable queued record: {printable(str(err))}"

    def _apply(self) -> None:
        lst = self.list
        words = self.query_text.lower().split()
        rows = []
        for i, q in enumerate(self.records):
            text = self._texts[i]
            if "pending" in words and queue_status(q, lst.tx) != PENDING:
                continue
            if all(w in text for w in words if w != "pending"):
                rows.append(i)
        lst.records, lst.rows = self.records, rows
        lst.reset()
        pending = sum(1 for q in self.records if queue_status(q, lst.tx) == PENDING)
        title = f"Queue {len(rows)}"
        if len(rows) != len(self.records):
            title += f" / {len(self.records)}"
        title += f" · {pending} pending"
        if lst.tx is not None:
            title += f" after #{lst.tx.number}"
        if self.note:
            title = f"Queue: {self.note}"
        self.border_title = Text(title)

    def action_leave_filter(self) -> None:
        """Escape in the filter box: back to the list (the filter stays)."""
        self.list.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as you type."""
        event.stop()
        self.query_text = event.value
        self._apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter box moves to the list."""
        event.stop()
        self.list.focus()

    def on_queue_pane_run_chosen(self, event: RunChosen) -> None:
        """Turn a chosen queued record into the transition that ran it."""
        event.stop()
        number = ran_by(event.record, self.machine) if self.machine is not None else None
        if number is None:
            self.app.notify("the transition that ran this mutation is not in the recording "
                            f"(searched {RUN_MAX_SCAN:,} after it)", severity="warning")
            return
        self.post_message(TransitionChosen(number))


def ran_by(q: QueuedRecord, machine: RecordedMachine) -> int | None:
    """The number of the transition that ran queued mutation `q`, or None (bounded search):
    the first one after it was queued with `mq` equal to its queue tick (prepended ones: the
    first one after it that called its states)."""
    start = machine.number_at(q.wall_ns) + 1
    stop = min(len(machine), start + RUN_MAX_SCAN - 1)
    for n in range(start, stop + 1):
        try:
            tx = machine.transition(n)
        except RecordingError:
            continue
        if q.queue_tick and tx.mutation_queue_tick == q.queue_tick:
            return n
        if not q.queue_tick and tx.called == q.called and tx.type == q.type:
            return n
    return None


__all__ = ["DONE", "LATER", "PENDING", "QUEUED_MAX", "QueueList", "QueuePane",
           "queue_status", "queued_text", "ran_by"]
