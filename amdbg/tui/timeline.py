"""One machine's transitions as the transition list shows them: which the filters hide.

UI-independent and lazy. With no filter every transition is visible and nothing is scanned,
so a 1,000,000-transition machine opens at once. The filter counts need one pass over the
index summaries (`RecordedMachine.summary`, no decoding, ~1.3 µs each): `scan_chunk()` does
it a few thousand at a time between frames; filters chosen before it finishes apply when it
does.
Positions are 0-based rows of the visible list; transition numbers are 1-based.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable

from amnode.telemetry import RecordedMachine, TransitionSummary

from ..filters import summary_is_empty

#: filter name -> bit in the kinds index; the filters hide transitions of that kind
FILTERS: dict[str, int] = {"canceled": 1, "auto": 2, "empty": 4, "health": 8}
#: what each filter hides, for the filter dialog and the docs
FILTER_HELP: dict[str, str] = {
    "canceled": "canceled transitions (vetoed, rejected by relations, failed)",
    "auto": "transitions made by Auto states",
    "empty": "accepted transitions that changed no tick",
    "health": "Healthcheck / Heartbeat transitions",
}
#: machines with at most this many transitions are scanned at once; bigger ones a chunk at a
#: time between frames, on the event loop (`scan_chunk`)
SYNC_SCAN = 20_000


def kind_bits(s: TransitionSummary) -> int:
    """The filter bits of one transition, from its index summary."""
    return ((FILTERS["canceled"] if not s.accepted else 0) | (FILTERS["auto"] if s.is_auto else 0)
            | (FILTERS["empty"] if summary_is_empty(s) else 0)
            | (FILTERS["health"] if s.is_health else 0))


class Timeline:
    """Visible transitions of one machine under a set of hidden kinds."""

    def __init__(self, machine: RecordedMachine) -> None:
        self.machine = machine
        self.total = len(machine)
        self.hidden: frozenset[str] = frozenset()
        self._kinds: bytearray | None = None
        self._scanned = 0
        self._counts = dict.fromkeys(FILTERS, 0)
        self._visible: array | None = None  # None: every transition is visible

    # ------------------------------------------------------------------ the kinds index

    @property
    def ready(self) -> bool:
        """True once every transition's kind is known (counts and filters work)."""
        return self._kinds is not None and self._scanned >= self.total

    @property
    def progress(self) -> float:
        """Share of the index scanned, 0..1."""
        return 1.0 if self.total == 0 else self._scanned / self.total

    def scan(self, chunk: int = 50_000, stop: Callable[[], bool] | None = None) -> bool:
        """Read every summary into the kinds index; True when complete, False if stopped."""
        while not self.scan_chunk(chunk):
            if stop is not None and stop():
                return False
        return True

    def scan_chunk(self, chunk: int = 4_000) -> bool:
        """Read the next `chunk` summaries (a few ms); True once the index is complete.

        The app calls this between frames, so counting a million transitions never makes a
        key wait longer than one chunk (a worker thread would, by holding the GIL).
        """
        if self._kinds is None:
            self._kinds = bytearray(self.total)
        if self._scanned < self.total:
            kinds, summary = self._kinds, self.machine.summary
            counts = self._counts
            bits = list(FILTERS.items())
            end = min(self._scanned + chunk, self.total)
            for n in range(self._scanned + 1, end + 1):
                k = kind_bits(summary(n))
                kinds[n - 1] = k
                if k:
                    for name, bit in bits:
                        if k & bit:
                            counts[name] += 1
            self._scanned = end
            if end < self.total:
                return False
        self._apply()
        return True

    @property
    def counts(self) -> dict[str, int] | None:
        """How many transitions each filter hides (None until the scan is complete)."""
        return dict(self._counts) if self.ready else None

    def grow(self) -> int:
        """The machine has more transitions (a live or followed recording): take them in,
        counting and filtering them when the kinds index is complete. Returns how many."""
        total = len(self.machine)
        added = total - self.total
        if added <= 0:
            return 0
        complete = self.ready
        old = self.total
        self.total = total
        if self._kinds is None:
            return added
        self._kinds.extend(bytes(added))
        if not complete:
            return added  # the scan under way gets to them
        kinds, summary, counts = self._kinds, self.machine.summary, self._counts
        bits = list(FILTERS.items())
        mask = 0
        for name in self.hidden:
            mask |= FILTERS[name]
        visible = self._visible
        for n in range(old + 1, total + 1):
            k = kind_bits(summary(n))
            kinds[n - 1] = k
            for name, bit in bits:
                if k & bit:
                    counts[name] += 1
            if visible is not None and not k & mask:
                visible.append(n)
        self._scanned = total
        return added

    # ------------------------------------------------------------------ filters

    def set_hidden(self, hidden: frozenset[str] | set[str]) -> None:
        """Hide these kinds (names of FILTERS); applied when the index is ready."""
        unknown = set(hidden) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown filters: {', '.join(sorted(unknown))}")
        self.hidden = frozenset(hidden)
        self._apply()

    @property
    def pending(self) -> bool:
        """True when filters are chosen but wait for the scan."""
        return bool(self.hidden) and not self.ready

    def _apply(self) -> None:
        if not self.hidden or not self.ready:
            self._visible = None
            return
        mask = 0
        for name in self.hidden:
            mask |= FILTERS[name]
        assert self._kinds is not None
        self._visible = array("i", (i + 1 for i, k in enumerate(self._kinds) if not k & mask))

    # ------------------------------------------------------------------ positions

    def __len__(self) -> int:
        return self.total if self._visible is None else len(self._visible)

    def number(self, row: int) -> int:
        """The transition number shown in `row` (0-based)."""
        return row + 1 if self._visible is None else self._visible[row]

    def row(self, number: int) -> int:
        """The row showing `number`, or the row of the next visible one (maybe len(self))."""
        if self._visible is None:
            return number - 1
        return bisect_left(self._visible, number)

    def visible(self, number: int) -> bool:
        """True when transition `number` is shown."""
        if self._visible is None:
            return 1 <= number <= self.total
        i = bisect_left(self._visible, number)
        return i < len(self._visible) and self._visible[i] == number

    def next(self, number: int) -> int | None:
        """The first visible transition after `number`, or None."""
        if self._visible is None:
            return number + 1 if number < self.total else None
        i = bisect_left(self._visible, number + 1)
        return self._visible[i] if i < len(self._visible) else None

    def prev(self, number: int) -> int | None:
        """The last visible transition before `number`, or None."""
        if self._visible is None:
            return number - 1 if number > 1 else None
        i = bisect_left(self._visible, number)
        return self._visible[i - 1] if i > 0 else None

    def skip(self, number: int, rows: int) -> int | None:
        """The visible transition `rows` rows after (negative: before) `number`, clamped to
        the first and last; None when nothing is visible."""
        if not len(self):
            return None
        row = self.row(number)
        if rows < 0 and not self.visible(number):
            row -= 1  # `row` is the next visible one: going back starts before it
        return self.number(max(0, min(row + rows, len(self) - 1)))

    def first(self) -> int | None:
        """The first visible transition, or None."""
        return self.number(0) if len(self) else None

    def last(self) -> int | None:
        """The last visible transition, or None."""
        return self.number(len(self) - 1) if len(self) else None


__all__ = ["FILTERS", "FILTER_HELP", "SYNC_SCAN", "Timeline", "kind_bits"]
