"""A live subscriber's bounded buffer between the recorder's writer thread and a connection.

The recorder's writer thread `put()`s sealed batches of records (bytes); the connection that
streams them (on its event loop) `take()`s them when its socket can take more. The buffer is
bounded: a batch that does not fit is refused (the recorder then drops its transitions and
counts them, `count_dropped`), and a subscriber whose buffer holds more than twice its limit
even after that is closed. So a debugger that stops reading costs a process at most about
`2 * limit` bytes and never slows a machine: machines only ever append to the recorder's
buffer, which the writer thread keeps empty.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

#: bytes a subscriber may hold before the recorder drops transitions for it (4 MiB)
SUBSCRIBER_LIMIT = 4 * 1024 * 1024


class Subscription:
    """One live subscriber's queue of sealed record bytes (see the module docstring).

    `wake` is called (from the writer thread) when data arrives while the consumer is idle;
    it must be thread-safe and cheap, e.g. `loop.call_soon_threadsafe(pump)`.
    """

    def __init__(self, wake: Callable[[], None], limit: int = SUBSCRIBER_LIMIT) -> None:
        self.limit = limit
        self.wake = wake
        #: transitions dropped because the subscriber had no room (cumulative)
        self.dropped = 0
        #: bytes put and taken so far
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed = False
        self.close_reason = ""
        #: records already sent in the subscriber's history: skipped once (the recorder's)
        self.skip: set[int] | None = None
        self._skip_refs: list[bytes] | None = None
        self._chunks: deque[bytes] = deque()
        self._pending = 0
        self._lock = threading.Lock()
        self._woken = False

    @property
    def pending(self) -> int:
        """Bytes waiting to be taken."""
        return self._pending

    def put(self, data: bytes, *, force: bool = False) -> bool:
        """Queue `data`; False when it does not fit (`force`: unless over twice the limit,
        which closes the subscription)."""
        if self.closed:
            return False
        with self._lock:
            size = self._pending + len(data)
            if size > self.limit and not force:
                return False
            if size > 2 * self.limit and self._pending:
                fits = False
            else:
                fits = True
                self._chunks.append(data)
                self._pending = size
                self.bytes_in += len(data)
                wake = not self._woken
                self._woken = True
        if not fits:
            self.close("the subscriber stopped reading")
            return False
        if wake:
            self._wake()
        return True

    def count_dropped(self, n: int) -> None:
        """Note `n` transitions dropped for lack of room."""
        with self._lock:
            self.dropped += n

    def take(self, max_bytes: int) -> bytes:
        """Up to about `max_bytes` of queued data (whole batches, at least one), b"" if none.
        The next `put()` wakes the consumer again once this returned b""."""
        with self._lock:
            out: list[bytes] = []
            size = 0
            chunks = self._chunks
            while chunks and (not out or size + len(chunks[0]) <= max_bytes):
                data = chunks.popleft()
                out.append(data)
                size += len(data)
            self._pending -= size
            self.bytes_out += size
            if not out:
                self._woken = False
        return b"".join(out)

    def close(self, reason: str = "closed") -> None:
        """No more data will be put; the consumer is woken to notice."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._wake()

    def _wake(self) -> None:
        try:
            self.wake()
        except RuntimeError:  # the consumer's loop is closed: it is gone
            self.closed = True


__all__ = ["SUBSCRIBER_LIMIT", "Subscription"]
