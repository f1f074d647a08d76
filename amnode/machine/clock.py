"""Machine time: one tick counter per state; a state is active iff its tick is odd (Go Time)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def is_active_tick(tick: int) -> bool:
    """True for an odd tick (Go IsActiveTick)."""
    return tick & 1 == 1


class Time(list[int]):
    """Ticks in state order, with the comparisons of Go's `am.Time`.

    `after`/`before` use vector-clock semantics: with `or_equal=False` every tick must be >= (<=)
    and at least one strictly greater (smaller). Go requires *every* tick to differ, which makes
    the strict form false whenever one state did not change (docs/machine.md §6, row 12).
    """

    __slots__ = ()

    def sum(self, indexes: Iterable[int] | None = None) -> int:
        """Sum of all ticks, or of the ticks at `indexes` (Go Time.Sum)."""
        if indexes is None:
            return sum(self)
        return sum(self[i] for i in indexes)

    def is_active(self, index: int) -> bool:
        """True if the state at `index` is active in this time."""
        return index < len(self) and self[index] & 1 == 1

    def active_indexes(self) -> list[int]:
        """Indexes of active states (Go Time.ActiveStates)."""
        return [i for i, t in enumerate(self) if t & 1]

    def after(self, other: Sequence[int], or_equal: bool = False) -> bool:
        """True if this time happened after `other` (compares the common prefix)."""
        greater = False
        for a, b in zip(self, other, strict=False):
            if a < b:
                return False
            if a > b:
                greater = True
        return or_equal or greater

    def before(self, other: Sequence[int], or_equal: bool = False) -> bool:
        """True if this time happened before `other` (compares the common prefix)."""
        smaller = False
        for a, b in zip(self, other, strict=False):
            if a > b:
                return False
            if a < b:
                smaller = True
        return or_equal or smaller

    def diff_since(self, before: Sequence[int]) -> Time:
        """Per-state tick increments since `before` (Go Time.DiffSince)."""
        return Time(a - (before[i] if i < len(before) else 0) for i, a in enumerate(self))

    def non_zero(self) -> list[int]:
        """Indexes of non-zero ticks (Go Time.NonZeroStates)."""
        return [i for i, t in enumerate(self) if t]


def next_active(tick: int) -> int:
    """The next tick at which a state with `tick` is active (Go NextActive)."""
    return tick + 2 if tick & 1 else tick + 1


def next_inactive(tick: int) -> int:
    """The next tick at which a state with `tick` is inactive (Go NextInactive)."""
    return tick + 1 if tick & 1 else tick + 2
