"""Pool sizes (`PoolConfig`), timeouts (`NodeTimeouts`) and the worker error policy.

All durations are seconds. `NodeTimeouts.resolve()` applies the debug multiplier (env
`AMNODE_DEBUG`, x10) exactly once; Supervisor, Worker and Client call it on what they get.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

import amnode.machine as am
from amnode.rpc.retry import RetryPolicy

#: `AMNODE_DEBUG` multiplies every node timeout by this (slow stepping in a debugger)
DEBUG_MULTIPLIER = 10.0

#: the handler timeout of node machines (and of the aRPC machines they make). Node handlers
#: only decide and fork (well under a millisecond), but the machine measures wall time, and a
#: handler that overran is rolled back after it ran: a garbage collection of a big heap (0.4 s
#: measured in the test suite, more on a loaded host) or a descheduled process would undo a
#: finished handler and wedge a server. Blocking work never belongs in a handler; a hung worker
#: is caught by the supervisor's health checks.
HANDLER_TIMEOUT = 5.0


class _DefaultTimeout(float):
    """The node's default handler timeout, told apart from an explicit value."""


#: the default of every `handler_timeout=` of the node (AMNODE_HANDLER_TIMEOUT replaces it)
DEFAULT_TIMEOUT: float = _DefaultTimeout(HANDLER_TIMEOUT)


def resolve_handler_timeout(value: float | None) -> float | None:
    """The handler timeout to use: an explicit value as given; the default replaced by
    `AMNODE_HANDLER_TIMEOUT` when set (seconds, or `none`), like the machine's own default."""
    if not isinstance(value, _DefaultTimeout):
        return value
    raw = os.environ.get("AMNODE_HANDLER_TIMEOUT", "").strip()
    if raw.lower() == "none":
        return None
    try:
        env = float(raw)
    except ValueError:
        return HANDLER_TIMEOUT
    return env if 0 < env < float("inf") else HANDLER_TIMEOUT


@dataclass(frozen=True)
class PoolConfig:
    """How many workers a supervisor keeps.

    `min` ready workers make the pool ready (`PoolReady`); `warm` spare workers are kept on
    top of `min` or of the wanted ones (leased, or asked for by a client that found none idle),
    whichever is more; `max` caps the pool (every process, starting or running);
    `max_client_workers` caps the workers one client may lease at once (0 = `max`). A `min`
    above `max` is lowered to `max`.
    """

    min: int = 2
    max: int = 10
    warm: int = 5
    max_client_workers: int = 10
    #: a worker that did this many jobs (`WorkRequested`) is replaced by a fresh process when
    #: its lease ends, instead of being reset to `Idle` (0 = never)
    max_jobs: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"PoolConfig.{f.name} must not be negative")
        if self.max < 1:
            raise ValueError("PoolConfig.max must be at least 1")
        if self.min > self.max:
            object.__setattr__(self, "min", self.max)
        if self.max_client_workers == 0:
            object.__setattr__(self, "max_client_workers", self.max)

    def target(self, wanted: int = 0) -> int:
        """How many workers the pool should have when `wanted` are leased or waited for."""
        return min(self.max, max(self.min, wanted) + self.warm)


@dataclass(frozen=True)
class ErrorPolicy:
    """When the supervisor gives up on a worker: more than `kill_after` errors within `ttl`
    seconds kill it; an error in the last `recent` seconds hides it from the ready/idle lists."""

    ttl: float = 600.0
    recent: float = 60.0
    kill_after: int = 3


def _crash_backoff() -> RetryPolicy:
    return RetryPolicy(first_delay=0.5, factor=2.0, max_delay=30.0, max_tries=0, timeout=None)


def _healthcheck() -> RetryPolicy:
    return RetryPolicy(first_delay=0.5, factor=1.0, max_delay=0.5, max_tries=2, timeout=None,
                       jitter=0.0)


def _super_retry() -> RetryPolicy:
    return RetryPolicy(first_delay=0.5, factor=2.0, max_delay=5.0, max_tries=0, timeout=None)


def _super_reconnect() -> RetryPolicy:
    return RetryPolicy(first_delay=0.1, factor=2.0, max_delay=0.4, max_tries=2, timeout=None)


def _peer_retry() -> RetryPolicy:
    return RetryPolicy(first_delay=0.1, factor=2.0, max_delay=1.0, max_tries=0, timeout=None)


def _req_retry() -> RetryPolicy:
    return RetryPolicy(first_delay=0.1, factor=2.0, max_delay=1.0, max_tries=0, timeout=None)


@dataclass(frozen=True)
class NodeTimeouts:
    """Every timeout and retry policy of the node system, in one place."""

    #: one dial + aRPC handshake (supervisor -> worker, client -> supervisor or worker)
    connect: float = 5.0
    #: spawn -> the worker reported its addresses to its bootstrap
    bootstrap: float = 10.0
    #: a payload waits this long for the receiver's acknowledgement
    delivery: float = 5.0
    #: a supervisor getter (`workers()`) from another thread
    op: float = 1.0
    #: period of the supervisor's heartbeat (health checks of every ready worker)
    heartbeat: float = 5.0
    #: one health check try of one worker (its deadline)
    healthcheck: float = 2.0
    #: SIGTERM -> SIGKILL for a worker being killed
    kill_grace: float = 2.0
    #: a worker without a supervisor connection for this long exits by itself
    supervisor_grace: float = 5.0
    #: default budget of `Client.req_worker()`
    req_worker: float = 10.0
    #: a worker that dies within this many seconds of starting counts as a crash (backoff)
    crash_window: float = 10.0
    #: per-slot backoff between forks that crash at start
    crash_backoff: RetryPolicy = field(default_factory=_crash_backoff)
    #: health check tries of one worker (retries after the first)
    healthcheck_retry: RetryPolicy = field(default_factory=_healthcheck)
    #: the client walks its supervisor list again after this backoff
    super_retry: RetryPolicy = field(default_factory=_super_retry)
    #: `req_worker()` asks again after a refusal with this backoff (within its budget)
    req_retry: RetryPolicy = field(default_factory=_req_retry)
    #: errors per worker before it is killed
    errors: ErrorPolicy = field(default_factory=ErrorPolicy)
    #: a lease ends unless its client is connected to the worker within this long (after the
    #: lease, and after the client lost both its worker link and its supervisor connection)
    lease: float = 5.0
    #: the client waits this long for the answer to one `ProvideWorker`, then moves on
    provide: float = 5.0
    #: the client skips a supervisor address that failed for this long
    blacklist: float = 10.0
    #: a client re-dials its lost supervisor this way, then moves on to the next address
    super_reconnect: RetryPolicy = field(default_factory=_super_reconnect)
    #: a supervisor re-dials a lost peer with this backoff (forever)
    peer_retry: RetryPolicy = field(default_factory=_peer_retry)
    #: the n-th survivor (by instance number) waits n times this before adopting orphans
    adopt_stagger: float = 0.3
    #: the multiplier already applied (1.0 = none)
    multiplier: float = 1.0

    def scaled(self, k: float) -> NodeTimeouts:
        """Every duration multiplied by `k` (on top of any earlier scaling)."""
        if k == 1.0:
            return self
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, RetryPolicy):
                out[f.name] = v.scaled(k)
            elif isinstance(v, ErrorPolicy):
                out[f.name] = replace(v, ttl=v.ttl * k, recent=v.recent * k)
            else:
                out[f.name] = v * k
        return replace(self, **out)

    def resolve(self) -> NodeTimeouts:
        """These timeouts with the debug multiplier applied once (`AMNODE_DEBUG` set)."""
        if self.multiplier != 1.0 or not debug_enabled():
            return self
        return self.scaled(DEBUG_MULTIPLIER)


def adopt(machine: am.Machine, like: am.Machine) -> am.Machine:
    """Give an aRPC machine made by a node object the handler timeout of that object's machine
    (see `HANDLER_TIMEOUT`); timeouts turned off (`AMNODE_DEBUG`) stay off."""
    if machine.handler_timeout is not None:
        machine.handler_timeout = like.handler_timeout
    return machine


def debug_enabled() -> bool:
    """`AMNODE_DEBUG` is set (and not 0/false)."""
    return os.environ.get("AMNODE_DEBUG", "") not in ("", "0", "false")


__all__ = ["DEBUG_MULTIPLIER", "DEFAULT_TIMEOUT", "HANDLER_TIMEOUT", "ErrorPolicy", "NodeTimeouts",
           "PoolConfig", "adopt", "debug_enabled", "resolve_handler_timeout"]
