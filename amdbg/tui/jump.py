"""Where the cursor goes by content or by time. UI-independent.

`j` / `J`: the next or previous transition that touches a state (called it or changed its
tick), skipping transitions the filters hide; may run in a worker thread. `nearest`: a
machine's transition closest in wall time to a moment (switching machines keeps the time).

A state's tick never decreases, so the next tick change is found by bisection over the clock
index (a few decodes); only the transitions before it are read one by one, for calls that
changed nothing (canceled or already active).
"""

from __future__ import annotations

from collections.abc import Callable

from amnode.telemetry import RecordedMachine

from ..filters import involves


def _tick(m: RecordedMachine, n: int, state: str) -> int:
    return m.clock_at(n).get(state, 0)


def next_tick_change(m: RecordedMachine, state: str, start: int) -> int | None:
    """The first transition after `start` whose tick of `state` differs, or None."""
    total = len(m)
    if start >= total:
        return None
    base = _tick(m, start, state) if start >= 1 else -1
    lo, hi = start + 1, total + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _tick(m, mid, state) != base:
            hi = mid
        else:
            lo = mid + 1
    return lo if lo <= total else None


def find_touching(m: RecordedMachine, state: str, start: int, direction: int, *,
                  visible: Callable[[int], bool] = lambda n: True,
                  stop: Callable[[], bool] | None = None) -> int | None:
    """The nearest transition before/after `start` (direction -1/+1) touching `state`."""
    total = len(m)
    if direction > 0:
        bound = next_tick_change(m, state, start)
        end = bound if bound is not None else total
        for n in range(start + 1, end + 1):
            if stop is not None and stop():
                return None
            if visible(n) and involves(m.transition(n), state):
                return n
        # the tick change itself is hidden by a filter: keep looking after it
        if bound is not None and bound < total:
            return find_touching(m, state, bound, 1, visible=visible, stop=stop)
        return None
    for n in range(start - 1, 0, -1):
        if stop is not None and stop():
            return None
        if visible(n) and involves(m.transition(n), state):
            return n
    return None


def nearest(machine: RecordedMachine, wall_ns: int) -> int:
    """The machine's transition whose end time is nearest to `wall_ns` (ties: the earlier);
    the machine must have transitions."""
    before = machine.number_at(wall_ns)
    if before == 0:
        return 1
    if before >= len(machine):
        return len(machine)
    times = machine.end_times
    return before if wall_ns - times[before - 1] <= times[before] - wall_ns else before + 1


__all__ = ["find_touching", "nearest", "next_tick_change"]
