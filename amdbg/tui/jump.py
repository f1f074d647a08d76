"""Where the cursor goes by content or by time. UI-independent.

`j` / `J`: the next or previous transition that touches a state (called it or changed its
tick), skipping transitions the filters hide; may run in a worker thread. `nearest`: a
machine's transition closest in wall time to a moment (switching machines keeps the time).

A transition can touch a state without changing its tick (a canceled call, or a call of an
active state), so the search reads the transitions one by one; it is iterative, reads at most
`JUMP_MAX_SCAN` of them (hidden ones are skipped without decoding but count too) and says when
it stopped there. Backwards it reads chunks forwards (the reader's clock cache makes forward
reads O(1) each; a backward step would replay up to a full clock every time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from amnode.telemetry import RecordedMachine

from ..filters import involves

#: transitions one `j` / `J` search looks at, at most (about 1 s of decoding)
JUMP_MAX_SCAN = 100_000
#: transitions read forwards at a time when searching backwards
_BACK_CHUNK = 256


class Touching(NamedTuple):
    """The result of `find_touching`: the transition found (or None) and whether the search
    covered everything up to the machine's end (start) rather than stopping early."""

    number: int | None
    complete: bool


def _all(n: int) -> bool:
    return True


def find_touching(m: RecordedMachine, state: str, start: int, direction: int, *,
                  visible: Callable[[int], bool] = _all,
                  stop: Callable[[], bool] | None = None,
                  max_scan: int = JUMP_MAX_SCAN) -> Touching:
    """The nearest visible transition after (`direction` 1) or before (-1) `start` touching
    `state`, among at most `max_scan` transitions; `stop()` returning True ends it early."""
    total = len(m)
    if direction > 0:
        lo, hi = max(start + 1, 1), min(total, start + max_scan)
        for n in range(lo, hi + 1):
            if stop is not None and stop():
                return Touching(None, False)
            if visible(n) and involves(m.transition(n), state):
                return Touching(n, True)
        return Touching(None, hi >= total)
    lo, hi = max(1, start - max_scan), min(start - 1, total)
    end = hi
    while end >= lo:
        first = max(lo, end - _BACK_CHUNK + 1)
        found = None
        for n in range(first, end + 1):  # forwards: sequential reads are cheap
            if stop is not None and stop():
                return Touching(None, False)
            if visible(n) and involves(m.transition(n), state):
                found = n
        if found is not None:
            return Touching(found, True)
        end = first - 1
    return Touching(None, lo <= 1)


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


__all__ = ["JUMP_MAX_SCAN", "Touching", "find_touching", "nearest"]
