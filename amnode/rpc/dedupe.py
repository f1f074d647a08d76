"""Idempotent mutations: results of recent mutation ids per session, so a retried call never runs
twice.

The server issues each client a session secret in its Welcome; the client presents it again in
the Hello of every later connection (a reconnect) and numbers its mutation calls (`mid`). A
retry after a timeout or a reconnect reuses the id. The log records each (session, mid) when
it starts executing; a repeat while it still runs waits for the first execution, a repeat
afterwards gets the stored result. Entries are reachable only with the secret, which no other
peer sees, so no peer can answer (or poison) another's mutation ids.

What that covers is stated in docs/arpc-protocol.md ("Timeouts, retries and mutation ids"): the
log lives in the server process's memory, holds `capacity` ids per session and `max_sessions`
sessions (least recently used go first), and does not survive a restart.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable

#: (session secret, mutation id)
MutationKey = tuple[str, int]

_RUNNING = -1


class _Session:
    """One client session: its owner and the results of its recent mutation ids."""

    __slots__ = ("client_id", "nonce", "results", "waiters")

    def __init__(self, client_id: str, nonce: int) -> None:
        self.client_id = client_id
        self.nonce = nonce
        self.results: OrderedDict[int, int] = OrderedDict()
        self.waiters: dict[int, list[Callable[[int], None]]] = {}


class MutationLog:
    """Per-session LRUs of mutation results; shareable between the servers of a Mux."""

    def __init__(self, capacity: int = 4096, max_sessions: int = 1024) -> None:
        #: mutation ids remembered per session
        self.capacity = capacity
        #: sessions remembered (the least recently used is forgotten first)
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        #: repeats answered from the log (for tests and metrics)
        self.replayed = 0

    def session(self, client_id: str, nonce: int = 0, secret: str = "") -> str:
        """The session of a client's Hello: `secret` resumed if this log issued it to this
        client id and nonce, else a new session. Returns its secret (sent in the Welcome)."""
        known = self._sessions.get(secret) if secret else None
        if known is not None and known.client_id == client_id and known.nonce == nonce:
            self._sessions.move_to_end(secret)
            return secret
        secret = secrets.token_urlsafe(18)
        self._sessions[secret] = _Session(client_id, nonce)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return secret

    def _get(self, secret: str) -> _Session | None:
        s = self._sessions.get(secret)
        if s is not None:
            self._sessions.move_to_end(secret)
        return s

    def seen(self, key: MutationKey) -> bool:
        """True if `key` is remembered (a repeat); cheap, changes nothing."""
        s = self._sessions.get(key[0])
        return s is not None and key[1] in s.results

    def lookup(self, key: MutationKey, waiter: Callable[[int], None]) -> bool:
        """True if `key` was seen: `waiter(result)` is called now or when it finishes."""
        s = self._get(key[0])
        if s is None:
            return False
        mid = key[1]
        res = s.results.get(mid)
        if res is None:
            return False
        self.replayed += 1
        s.results.move_to_end(mid)
        if res == _RUNNING:
            s.waiters.setdefault(mid, []).append(waiter)
        else:
            waiter(res)
        return True

    def begin(self, key: MutationKey) -> None:
        """Mark `key` as executing (a session forgotten meanwhile is remembered again)."""
        secret, mid = key
        s = self._get(secret)
        if s is None:
            s = self._sessions[secret] = _Session("", 0)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        s.results[mid] = _RUNNING
        if len(s.results) > self.capacity:
            old, _ = s.results.popitem(last=False)
            s.waiters.pop(old, None)

    def record(self, key: MutationKey, result: int) -> None:
        """`begin` and `finish` at once, for a mutation executed synchronously (nothing can
        have waited for it)."""
        secret, mid = key
        s = self._sessions.get(secret)
        if s is None:
            self.begin(key)
            self.finish(key, result)
            return
        self._sessions.move_to_end(secret)
        results = s.results
        results[mid] = result
        if len(results) > self.capacity:
            old, _ = results.popitem(last=False)
            s.waiters.pop(old, None)

    def finish(self, key: MutationKey, result: int) -> None:
        """Store the result of `key` and answer the repeats that waited for it."""
        s = self._sessions.get(key[0])
        if s is None:
            return
        mid = key[1]
        if mid in s.results:
            s.results[mid] = result
        for waiter in s.waiters.pop(mid, ()):
            waiter(result)

    @property
    def sessions(self) -> int:
        """Sessions remembered."""
        return len(self._sessions)

    def __len__(self) -> int:
        """Mutation ids remembered, over all sessions."""
        return sum(len(s.results) for s in self._sessions.values())


__all__ = ["MutationKey", "MutationLog"]
