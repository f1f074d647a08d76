"""Idempotent mutations: results of recent mutation ids, so a retried call never runs twice.

A client numbers its mutation calls (`mid`) per instance (`nonce`); a retry after a timeout or a
reconnect reuses the id. The server records each id when it starts executing; a repeat while it is
still running waits for the first execution, a repeat afterwards gets the stored result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

#: (client id, client nonce, mutation id)
MutationKey = tuple[str, int, int]

_RUNNING = -1


class MutationLog:
    """LRU of mutation results; shareable between the servers of a Mux."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._results: OrderedDict[MutationKey, int] = OrderedDict()
        self._waiters: dict[MutationKey, list[Callable[[int], None]]] = {}
        #: repeats answered from the log (for tests and metrics)
        self.replayed = 0

    def lookup(self, key: MutationKey, waiter: Callable[[int], None]) -> bool:
        """True if `key` was seen: `waiter(result)` is called now or when it finishes."""
        res = self._results.get(key)
        if res is None:
            return False
        self.replayed += 1
        self._results.move_to_end(key)
        if res == _RUNNING:
            self._waiters.setdefault(key, []).append(waiter)
        else:
            waiter(res)
        return True

    def begin(self, key: MutationKey) -> None:
        """Mark `key` as executing."""
        self._results[key] = _RUNNING
        if len(self._results) > self.capacity:
            old, _ = self._results.popitem(last=False)
            self._waiters.pop(old, None)

    def finish(self, key: MutationKey, result: int) -> None:
        """Store the result of `key` and answer the repeats that waited for it."""
        if key in self._results:
            self._results[key] = result
        for waiter in self._waiters.pop(key, ()):
            waiter(result)

    def __len__(self) -> int:
        return len(self._results)


__all__ = ["MutationKey", "MutationLog"]
