"""Full garbage collections off the key path: with a big recording open a full collection
costs 15-40 ms (tens of thousands of drawn strips and their caches), and Python ran one every
~13 key presses (a press allocates ~7,000 objects), in the middle of whichever key was being
handled. While the app runs, Python's own full collection becomes a rare safety net and the
app runs the deferred one when the user rests (like Textual's `PAUSE_GC_ON_SCROLL`). The young
generations are collected as before, so garbage that is not in a long-lived cycle goes as soon
as always; only the oldest generation waits.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

#: seconds without a key before the deferred full collection runs
IDLE = 0.5
#: how often the app looks whether one is due (seconds)
CHECK = 0.25
#: the oldest generation's threshold while the app runs: Python collects it itself only
#: after this many young (generation 1) collections, ~1,000 key presses
SAFETY_NET = 1000


class IdleCollector:
    """Raises the oldest generation's threshold while started; `tick` collects it when the
    user has rested `idle` seconds and Python would have collected it by now."""

    def __init__(self, last_key: Callable[[], float], *, idle: float = IDLE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.last_key, self.idle, self.clock = last_key, idle, clock
        #: the thresholds before `start` (None: not started)
        self.saved: tuple[int, int, int] | None = None
        #: the full collections run by `tick`
        self.collections = 0

    def start(self) -> None:
        """Defer Python's full collections to `tick` (a safety net stays)."""
        if self.saved is not None:
            return
        self.saved = gc.get_threshold()
        t0, t1, t2 = self.saved
        gc.set_threshold(t0, t1, max(t2, SAFETY_NET))

    def stop(self) -> None:
        """Give Python its own thresholds back (unless someone changed them meanwhile)."""
        if self.saved is None:
            return
        t0, t1, t2 = self.saved
        if gc.get_threshold() == (t0, t1, max(t2, SAFETY_NET)):
            gc.set_threshold(t0, t1, t2)
        self.saved = None

    def due(self) -> bool:
        """Python would have run a full collection by now (its own rule: `threshold2`
        generation-1 collections since the last full one)."""
        return self.saved is not None and gc.get_count()[2] >= max(self.saved[2], 1)

    def tick(self) -> bool:
        """Run the deferred full collection if one is due and no key came for `idle`
        seconds; True when it ran."""
        if not self.due() or self.clock() - self.last_key() < self.idle:
            return False
        gc.collect()
        self.collections += 1
        return True


__all__ = ["CHECK", "IDLE", "SAFETY_NET", "IdleCollector"]
