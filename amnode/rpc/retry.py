"""One retry policy for every place that retries: aRPC calls and reconnects, node fallbacks,
healthcheck tries and crash-loop backoff.

A `RetryPolicy` is an immutable description (first delay, growth factor, cap, number of tries,
total time budget, jitter); a `Backoff` is one run of it with its own attempt counter and start
time, read from an injectable clock so tests can drive it without sleeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from .errors import RpcConfigError

T = TypeVar("T")

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, how soon and for how long to retry.

    The n-th retry (0-based) waits `min(first_delay * factor**n, max_delay)` seconds (no cap when
    `max_delay` is None), scaled by a
    random factor in `[1 - jitter, 1 + jitter]`. Retrying stops after `max_tries` retries
    (0 = unlimited) or once `timeout` seconds have passed since the first attempt (None = never).
    """

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float | None = 10.0
    max_tries: int = 50
    timeout: float | None = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.first_delay < 0 or (self.max_delay is not None and self.max_delay < 0):
            raise RpcConfigError("RetryPolicy: delays must not be negative")
        if self.factor < 1:
            raise RpcConfigError("RetryPolicy: factor must be at least 1")
        if self.max_tries < 0:
            raise RpcConfigError("RetryPolicy: max_tries must not be negative (0 = unlimited)")
        if not 0 <= self.jitter < 1:
            raise RpcConfigError("RetryPolicy: jitter must be in [0, 1)")
        if self.timeout is not None and self.timeout < 0:
            raise RpcConfigError("RetryPolicy: timeout must not be negative (None = no limit)")

    def with_(self, **changes: float | int | None) -> RetryPolicy:
        """A copy with some fields changed, e.g. `policy.with_(max_tries=3)`."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def scaled(self, k: float) -> RetryPolicy:
        """Every duration multiplied by `k` (a debug multiplier, applied once)."""
        return replace(self, first_delay=self.first_delay * k,
                       max_delay=None if self.max_delay is None else self.max_delay * k,
                       timeout=None if self.timeout is None else self.timeout * k)

    def base_delay(self, n: int) -> float:
        """The delay before retry `n` (0-based), without jitter."""
        if self.first_delay == 0:
            return 0.0
        # cap the exponent so a long run never overflows a float
        d = self.first_delay * self.factor ** min(n, 1000)
        return d if self.max_delay is None else min(d, self.max_delay)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The jittered delays of every allowed retry (ignores `timeout`; see `Backoff`)."""
        n = 0
        while not self.max_tries or n < self.max_tries:
            yield _jittered(self.base_delay(n), self.jitter, rng)
            n += 1

    def backoff(self, clock: Clock = time.monotonic,
                rng: random.Random | None = None) -> Backoff:
        """A fresh run of this policy, started now by `clock`."""
        return Backoff(self, clock, rng)

    async def run(self, fn: Callable[[], Awaitable[T]], *,
                  retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
                  clock: Clock = time.monotonic,
                  sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> T:
        """Await `fn()` until it returns; retry on `retry_on`, re-raise the last error when the
        policy is exhausted."""
        b = self.backoff(clock)
        while True:
            try:
                return await fn()
            except retry_on:
                delay = b.next_delay()
                if delay is None:
                    raise
                await sleep(delay)


def _jittered(delay: float, jitter: float, rng: random.Random | None) -> float:
    if not jitter or not delay:
        return delay
    r = (rng or random).uniform(1 - jitter, 1 + jitter)
    return delay * r


class Backoff:
    """One run of a `RetryPolicy`: `next_delay()` until it says stop, `reset()` after a success."""

    __slots__ = ("_clock", "_rng", "policy", "started", "tries")

    def __init__(self, policy: RetryPolicy, clock: Clock = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng
        #: retries handed out since the start (or the last `reset`)
        self.tries = 0
        self.started = clock()

    @property
    def elapsed(self) -> float:
        """Seconds since the start (or the last `reset`)."""
        return self._clock() - self.started

    @property
    def exhausted(self) -> bool:
        """No retry is left: out of tries or past the time budget."""
        p = self.policy
        if p.max_tries and self.tries >= p.max_tries:
            return True
        return p.timeout is not None and self.elapsed >= p.timeout

    def peek(self) -> float:
        """The next delay without jitter and without using a try."""
        return self.policy.base_delay(self.tries)

    def next_delay(self) -> float | None:
        """The delay before the next retry, or None when the policy is exhausted. A delay never
        reaches past the time budget: it is shortened to end with it."""
        if self.exhausted:
            return None
        delay = _jittered(self.policy.base_delay(self.tries), self.policy.jitter, self._rng)
        self.tries += 1
        if self.policy.timeout is not None:
            delay = max(0.0, min(delay, self.policy.timeout - self.elapsed))
        return delay

    def reset(self) -> None:
        """Start over (after a success): the next delay is the first one again."""
        self.tries = 0
        self.started = self._clock()

    def __repr__(self) -> str:
        return f"Backoff(tries={self.tries}, elapsed={self.elapsed:.3f}, policy={self.policy})"


#: aRPC client defaults (the Go reference's values, see docs/arpc-protocol.md)
CALL_RETRY = RetryPolicy(first_delay=0.1, factor=2.0, max_delay=10.0, max_tries=15, timeout=60.0)
CONN_RETRY = RetryPolicy(first_delay=1.0, factor=2.0, max_delay=10.0, max_tries=50,
                         timeout=300.0)


def legacy_policy(base: RetryPolicy, *, tries: int | None = None, delay: float | None = None,
                  backoff: float | None = None, timeout: float | None = None,
                  zero_timeout_is_none: bool = False) -> RetryPolicy:
    """`base` with the old `Client` keywords applied (`call_retries`, `call_retry_delay`, ...).

    `tries` is the number of retries (0 = none, unlike `max_tries`, where 0 means unlimited),
    `backoff` the cap of a doubling delay (0 = a constant delay, factor 1) and `timeout` the
    time budget (0 = no retries, or no limit with `zero_timeout_is_none`, as `conn_retry_timeout`
    always meant).
    """
    changes: dict[str, float | int | None] = {}
    if delay is not None:
        changes["first_delay"] = delay
    if backoff is not None:
        changes.update({"factor": 1.0, "max_delay": None} if not backoff
                       else {"factor": 2.0, "max_delay": backoff})
    if timeout is not None:
        changes["timeout"] = None if zero_timeout_is_none and not timeout else timeout
    if tries is not None:
        if tries <= 0:
            changes["timeout"] = 0.0  # an exhausted budget: no retry at all
        else:
            changes["max_tries"] = tries
    return base.with_(**changes) if changes else base


__all__ = ["CALL_RETRY", "CONN_RETRY", "Backoff", "Clock", "RetryPolicy", "legacy_policy"]
