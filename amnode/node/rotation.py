"""The client's supervisor list as a ring, with a per-address blacklist.

A client walks its supervisor addresses as a ring: from a random start (the default, so that
clients spread over the supervisors) or from the first (`order="ordered"`). An address that
failed (no connection, its supervisor lost, no answer to `ProvideWorker`) is blacklisted for
`ttl` seconds of an injectable clock and skipped while another address is not; when every
address is blacklisted, the one whose blacklisting ends first is tried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

Clock = Callable[[], float]

#: `SupervisorRing(order=...)`
ORDERS = ("random", "ordered")


class SupervisorRing:
    """Supervisor addresses in ring order, with a blacklist (see the module docstring)."""

    def __init__(self, addrs: Sequence[str], order: str = "random", ttl: float = 10.0,
                 clock: Clock = time.monotonic, rng: random.Random | None = None) -> None:
        if not addrs:
            raise ValueError("a supervisor ring needs at least one address")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        self.addrs = list(addrs)
        self.order = order
        #: seconds an address stays blacklisted after a failure
        self.ttl = ttl
        self.clock = clock
        self._next = (rng or random).randrange(len(self.addrs)) if order == "random" else 0
        self._until: dict[str, float] = {}

    def blacklist(self, addr: str, ttl: float | None = None) -> None:
        """Skip `addr` for `ttl` seconds (default: the ring's)."""
        self._until[addr] = self.clock() + (self.ttl if ttl is None else ttl)

    def blacklisted(self, addr: str) -> bool:
        """`addr` is skipped now (its blacklisting has not expired)."""
        until = self._until.get(addr)
        if until is None:
            return False
        if until <= self.clock():
            del self._until[addr]
            return False
        return True

    def available(self, but: str | None = None) -> list[str]:
        """Addresses not blacklisted now (without `but`)."""
        return [a for a in self.addrs if a != but and not self.blacklisted(a)]

    def next(self) -> str:
        """The next address to try: the next one in ring order that is not blacklisted, or,
        when all are, the one whose blacklisting ends first."""
        n = len(self.addrs)
        for i in range(n):
            idx = (self._next + i) % n
            addr = self.addrs[idx]
            if not self.blacklisted(addr):
                self._next = (idx + 1) % n
                return addr
        addr = min(self.addrs, key=lambda a: self._until.get(a, 0.0))
        self._next = (self.addrs.index(addr) + 1) % n
        return addr

    def __repr__(self) -> str:
        black = [a for a in self.addrs if self.blacklisted(a)]
        return f"SupervisorRing({self.addrs} order={self.order} blacklisted={black})"


__all__ = ["ORDERS", "Clock", "SupervisorRing"]
