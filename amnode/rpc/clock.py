"""Clock diffs: the server's versioned baseline per client and the client's copy of the clock.

Every update is a diff against the previous one the same connection carried and names the
version of that baseline (`base`); the client applies it only if its own version matches and the
checksum `(sum(tracked ticks) + queue tick + machine tick) & 0xFF` agrees, otherwise it resyncs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import ProtocolViolation
from .protocol import update_to_wire

#: (time in source order, queue tick, machine tick) of the source machine.
Snapshot = tuple[Sequence[int], int, int]


def checksum(ticks_sum: int, queue_tick: int, machine_tick: int) -> int:
    """The 8-bit clock checksum carried by every update."""
    return (ticks_sum + queue_tick + machine_tick) & 0xFF


def tracked_indexes(names: Sequence[str], allowed: Iterable[str] | None,
                    skipped: Iterable[str] | None) -> list[int]:
    """Source indexes of the states a client syncs: `allowed` (all if None) minus `skipped`."""
    allow = None if allowed is None else set(allowed)
    skip = set(skipped or ())
    return [i for i, n in enumerate(names)
            if (allow is None or n in allow) and n not in skip]


class ClockSync:
    """Server side: one client's index mapping, baseline and version."""

    __slots__ = ("all_tracked", "allowed", "base_mt", "base_qt", "base_time", "client_names",
                 "in_map", "last_send", "names", "out", "skipped", "sync_mutations",
                 "sync_schema", "tracked", "version")

    def __init__(self, names: Sequence[str], sync_schema: bool, allowed: Iterable[str] | None,
                 skipped: Iterable[str] | None, sync_mutations: bool = False) -> None:
        #: the source's state names this mapping was made for
        self.names = list(names)
        self.sync_schema = sync_schema
        self.sync_mutations = sync_mutations
        self.allowed = None if allowed is None else list(allowed)
        self.skipped = list(skipped or ())
        self.tracked = tracked_indexes(names, self.allowed, self.skipped)
        self.all_tracked = len(self.tracked) == len(names)
        if sync_schema:
            # source-bound: the client has every state, indexes are the source's
            self.out = list(self.tracked)
            self.in_map = list(range(len(names)))
            self.client_names = list(names)
        else:
            # client-bound: the client only has the tracked states, in their order
            self.out = list(range(len(self.tracked)))
            self.in_map = list(self.tracked)
            self.client_names = [names[i] for i in self.tracked]
        self.base_time: Sequence[int] = ()
        self.base_qt = 0
        self.base_mt = 0
        self.version = 0
        self.last_send = 0.0

    def client_time(self, time_: Sequence[int]) -> list[int]:
        """The source time as the client sees it (untracked zeroed, or filtered)."""
        if self.sync_schema:
            if self.all_tracked:
                return list(time_)
            out = [0] * len(time_)
            for i in self.tracked:
                out[i] = time_[i]
            return out
        return [time_[i] for i in self.tracked]

    def reset(self, snap: Snapshot) -> int:
        """Make `snap` the baseline (handshake, sync, schema change); returns the new version."""
        self.base_time, self.base_qt, self.base_mt = snap
        self.version = (self.version + 1) & 0xFFFFFFFF
        self.last_send = time.monotonic()
        return self.version

    def fits(self, snap: Snapshot) -> bool:
        """False if `snap` has another number of states than the baseline: the source's schema
        changed and the SchemaChange (a new baseline) has not been sent yet."""
        return len(snap[0]) == len(self.base_time)

    def changed(self, snap: Snapshot) -> bool:
        """True if `snap` differs from the baseline in a tracked tick or the queue/machine tick."""
        t, qt, mt = snap
        if qt != self.base_qt or mt != self.base_mt:
            return True
        if t is self.base_time:
            return False
        base = self.base_time
        if self.all_tracked:
            return list(t) != list(base)
        return any(t[i] != base[i] for i in self.tracked)

    def diff(self, snap: Snapshot, force: bool = False) -> list[Any] | None:
        """The update from the baseline to `snap`; advances both.

        None if nothing changed, unless `force` (an empty update still proves the version).
        """
        t, qt, mt = snap
        base = self.base_time
        pairs: list[int] = []
        if t is not base:
            if self.all_tracked:
                if len(t) != len(base):
                    raise ValueError("clock of another length than the baseline")
                for i, (a, b) in enumerate(zip(t, base, strict=False)):
                    if a != b:
                        pairs += (i, a - b)
                total = sum(t)
            else:
                out = self.out
                total = 0
                for k, i in enumerate(self.tracked):
                    a = t[i]
                    total += a
                    if a != base[i]:
                        pairs.append(out[k])
                        pairs.append(a - base[i])
        else:
            total = sum(t) if self.all_tracked else sum(t[i] for i in self.tracked)
        dq = qt - self.base_qt
        dm = mt - self.base_mt
        if not pairs and not dq and not dm and not force:
            return None
        update = update_to_wire(pairs, dq, checksum(total, qt, mt), self.version, dm)
        self.version = (self.version + 1) & 0xFFFFFFFF
        self.base_time, self.base_qt, self.base_mt = t, qt, mt
        return update

    def called_out(self, called: Iterable[int]) -> list[int]:
        """Source indexes of called states as client indexes (untracked ones dropped)."""
        if self.sync_schema:
            tracked = set(self.tracked) if not self.all_tracked else None
            return [i for i in called if tracked is None or i in tracked]
        pos = {i: k for k, i in enumerate(self.tracked)}
        return [pos[i] for i in called if i in pos]


class RemoteClock:
    """Client side: the clock as received, independent of what the mirror shows."""

    __slots__ = ("machine_tick", "queue_tick", "time", "version")

    def __init__(self) -> None:
        self.time: list[int] = []
        self.queue_tick = 1
        self.machine_tick = 0
        self.version = 0

    def set(self, time_: list[int], queue_tick: int, machine_tick: int, version: int) -> None:
        """Replace everything (handshake, sync, schema change)."""
        self.time = list(time_)
        self.queue_tick = queue_tick
        self.machine_tick = machine_tick
        self.version = version

    def apply(self, pairs: list[int], dq: int, check: int, base: int, dm: int) -> bool:
        """Apply a validated update; False (and nothing changed) on a version/checksum mismatch.

        An index outside the clock is hostile input and raises ProtocolViolation.
        """
        if base != self.version:
            return False
        new = self.time.copy()
        size = len(new)
        for j in range(0, len(pairs), 2):
            idx = pairs[j]
            if idx >= size:
                raise ProtocolViolation(f"update names state index {idx} of {size}")
            new[idx] += pairs[j + 1]
        qt = self.queue_tick + dq
        mt = self.machine_tick + dm
        if checksum(sum(new), qt, mt) != check:
            return False
        self.time = new
        self.queue_tick = qt
        self.machine_tick = mt
        self.version = (base + 1) & 0xFFFFFFFF
        return True


__all__ = ["ClockSync", "RemoteClock", "Snapshot", "checksum", "tracked_indexes"]
