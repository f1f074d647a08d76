"""Pool bookkeeping of a supervisor, without sockets or processes (unit-testable with a fake
clock): worker entries, their error log, the ready/idle/busy views, leases, and the arithmetic
of normalisation (which slots to fork now, when to try again, which spare workers to retire).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from amnode.rpc import NetworkMachine
from amnode.rpc.retry import Backoff, RetryPolicy
from amnode.states import node as ss

from .config import ErrorPolicy, PoolConfig

Clock = Callable[[], float]

#: `Supervisor.workers(state)` filters
FILTERS = ("", "initing", "rpc", "ready", "idle", "busy", "leased")


class ErrorLog:
    """Times of one worker's errors; counts them within a window of an injected clock."""

    __slots__ = ("_clock", "_times", "policy")

    def __init__(self, policy: ErrorPolicy, clock: Clock) -> None:
        self.policy = policy
        self._clock = clock
        self._times: deque[float] = deque()

    def add(self) -> int:
        """Record one error now; returns the count within the TTL."""
        self._times.append(self._clock())
        return self.count()

    def count(self) -> int:
        """Errors within the TTL (older ones are forgotten)."""
        limit = self._clock() - self.policy.ttl
        times = self._times
        while times and times[0] < limit:
            times.popleft()
        return len(times)

    def recent(self) -> bool:
        """An error within the `recent` window."""
        return bool(self._times) and self._times[-1] >= self._clock() - self.policy.recent

    @property
    def over_budget(self) -> bool:
        """More errors within the TTL than the policy allows: the worker should be killed."""
        return self.count() > self.policy.kill_after


@dataclass(frozen=True)
class WorkerInfo:
    """A snapshot of one pool entry, as `Supervisor.workers()` returns it."""

    #: the pool's key of this entry (stable from fork to exit)
    key: str
    #: the worker machine's id ("" until it reported back)
    id: str
    #: OS process id (None for an in-process worker, or before the spawn)
    pid: int | None
    #: initing | rpc | idle | busy | leased | killing
    state: str
    slot: int
    boot_addr: str
    local_addr: str
    public_addr: str
    #: aRPC id of the client holding the lease ("" if not leased)
    leased_to: str
    #: errors within the error policy's TTL
    errors: int
    #: seconds since the spawn
    uptime: float
    #: last lines of the worker's stderr
    stderr: tuple[str, ...] = ()
    #: jobs started (`WorkRequested` activations)
    jobs: int = 0
    #: taken over from a lost peer supervisor
    adopted: bool = False


@dataclass
class PoolEntry:
    """One worker of the pool, from fork to exit (mutable, owned by the supervisor's handlers)."""

    key: str
    slot: int
    started: float
    errors: ErrorLog
    pid: int | None = None
    id: str = ""
    boot_addr: str = ""
    local_addr: str = ""
    public_addr: str = ""
    #: the supervisor's aRPC client to the worker's local server, once connected
    rpc: Any = None
    #: the process (or in-process) handle from the spawner
    handle: Any = None
    #: the bootstrap machine wrapper while the worker reports back
    bootstrap: Any = None
    #: (public connection id, aRPC client id) of the lease holder
    lease: tuple[str, str] | None = None
    #: a lease being confirmed with the worker (ServeClient in flight)
    leasing: bool = False
    #: the supervisor decided to kill it (why)
    killing: str = ""
    #: killed on purpose (pool shrink, operator): its exit is no crash
    deliberate: bool = False
    #: it became ready at least once
    was_ready: bool = False
    #: when it became ready first (clock)
    ready_at: float | None = None
    #: ForkWorker ran (its bootstrap is being opened)
    forking: bool = False
    #: the spawner is starting the process right now
    spawning: bool = False
    #: its exit was reported (`WorkerKilled` is on its way)
    gone: bool = False
    #: its last error (with the stderr of an exit)
    last_error: str = ""
    #: taken over from a lost peer supervisor (not our child: no pipes, no exit code)
    adopted: bool = False
    #: the lease holder was seen connected to the worker
    client_seen: bool = False
    #: when the current lease was granted (clock)
    lease_at: float | None = None
    #: tasks working for this entry (cancelled when it goes)
    tasks: set[Any] = field(default_factory=set)

    @property
    def mirror(self) -> NetworkMachine | None:
        """The worker's aRPC mirror (None until connected)."""
        rpc = self.rpc
        return None if rpc is None else rpc.netmach

    def jobs(self) -> int:
        """Jobs the worker started (`WorkRequested` activations seen on its mirror)."""
        m = self.mirror
        return 0 if m is None else (m.tick(ss.WORK_REQUESTED) + 1) // 2

    @property
    def linked(self) -> bool:
        """The supervisor's link to the worker is up (handshake done)."""
        rpc = self.rpc
        return rpc is not None and rpc.mach.is_active(ss.READY)

    def is_ready(self) -> bool:
        """Linked, `Ready` on the worker, no recent error, not being killed."""
        m = self.mirror
        return (not self.killing and self.linked and m is not None
                and m.is_active(ss.READY) and not self.errors.recent())

    def is_idle(self) -> bool:
        """Ready, `Idle`, not leased and no lease in flight."""
        m = self.mirror
        return (self.lease is None and not self.leasing and self.is_ready() and m is not None
                and m.is_active(ss.IDLE))

    def state(self) -> str:
        """initing | rpc | idle | busy | leased | killing."""
        if self.killing:
            return "killing"
        if self.lease is not None or self.leasing:
            return "leased"
        if self.rpc is None:
            return "initing"
        if not self.is_ready():
            return "rpc"
        return "idle" if self.is_idle() else "busy"

    def matches(self, filter_: str) -> bool:
        """Go's `Workers(state)` filters: ready / idle / busy exclude recent errors."""
        if filter_ in ("", "rpc"):
            return True
        if filter_ == "initing":
            return self.rpc is None and not self.killing
        if filter_ == "ready":
            return self.is_ready()
        if filter_ == "idle":
            return self.is_idle()
        if filter_ == "busy":
            return self.is_ready() and not self.is_idle()
        if filter_ == "leased":
            return self.lease is not None
        raise ValueError(f"unknown worker filter {filter_!r} (one of {', '.join(FILTERS)})")

    def info(self, now: float, stderr: Iterable[str] = ()) -> WorkerInfo:
        """A frozen snapshot."""
        return WorkerInfo(self.key, self.id, self.pid, self.state(), self.slot, self.boot_addr,
                          self.local_addr, self.public_addr,
                          self.lease[1] if self.lease else "", self.errors.count(),
                          max(0.0, now - self.started), tuple(stderr), self.jobs(),
                          self.adopted)


@dataclass
class Plan:
    """What normalisation should do now."""

    #: free slots to fork into now
    fork: list[int] = field(default_factory=list)
    #: entries to retire (idle spares above the target)
    retire: list[str] = field(default_factory=list)
    #: when a slot in backoff becomes free to fork (clock time), None if none waits
    wake_at: float | None = None
    #: workers the pool should have
    target: int = 0


class Pool:
    """Entries by key, slots with crash-loop backoff, and the normalisation arithmetic."""

    def __init__(self, config: PoolConfig, errors: ErrorPolicy, crash_backoff: RetryPolicy,
                 crash_window: float, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.error_policy = errors
        self.crash_backoff = crash_backoff
        self.crash_window = crash_window
        self.clock = clock
        self.entries: dict[str, PoolEntry] = {}
        self._backoff: dict[int, Backoff] = {}
        self._retry_at: dict[int, float] = {}
        self._seq = 0
        #: clients refused for lack of an idle worker, until when they count as demand
        self._demand: dict[str, float] = {}

    # --- entries ---

    def new_entry(self, slot: int, key: str | None = None) -> PoolEntry:
        """Create (and hold a slot for) a worker about to be forked."""
        self._seq += 1
        key = key or f"w{self._seq}"
        entry = PoolEntry(key, slot, self.clock(), ErrorLog(self.error_policy, self.clock))
        self.entries[key] = entry
        return entry

    def remove(self, key: str) -> PoolEntry | None:
        """Forget an entry and free its slot; a crash (an exit the supervisor did not ask for,
        before the worker lived `crash_window` seconds) delays the next fork into that slot."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        slot = entry.slot
        lived = self.clock() - entry.started
        if slot < 0:
            pass  # an adopted worker holds no slot of ours
        elif entry.deliberate:
            self._retry_at.pop(slot, None)
        elif not entry.was_ready or lived < self.crash_window:
            backoff = self._backoff.get(slot)
            if backoff is None:
                backoff = self._backoff[slot] = self.crash_backoff.backoff(self.clock)
            delay = backoff.next_delay()
            self._retry_at[slot] = self.clock() + (delay if delay is not None else 0.0)
        else:
            self._backoff.pop(slot, None)
            self._retry_at.pop(slot, None)
        return entry

    def by_id(self, worker_id: str) -> PoolEntry | None:
        """The entry of a worker machine id (or of a key)."""
        if worker_id in self.entries:
            return self.entries[worker_id]
        for e in self.entries.values():
            if e.id == worker_id:
                return e
        return None

    def select(self, filter_: str = "") -> list[PoolEntry]:
        """Entries matching a `workers()` filter, in fork order."""
        return [e for e in self.entries.values() if e.matches(filter_)]

    def ready_count(self) -> int:
        """Ready workers (what `PoolReady` needs `min` of)."""
        return sum(1 for e in self.entries.values() if e.is_ready())

    def idle(self) -> list[PoolEntry]:
        """Workers a client could lease now."""
        return [e for e in self.entries.values() if e.is_idle()]

    def leases_of(self, conn_id: str) -> list[PoolEntry]:
        """Entries leased (or being leased) to one public connection."""
        return [e for e in self.entries.values()
                if e.lease is not None and e.lease[0] == conn_id]

    def leased_count(self) -> int:
        """Entries with a lease (or one in flight)."""
        return sum(1 for e in self.entries.values() if e.lease is not None or e.leasing)

    def want(self, client: str, until: float) -> None:
        """A client found no idle worker: count it as demand (the pool grows for it, up to
        `max`) until it gets a lease or the clock reaches `until`."""
        self._demand[client] = until

    def served(self, client: str) -> None:
        """A client got its lease: no longer demand."""
        self._demand.pop(client, None)

    def demand(self) -> int:
        """Clients still waiting for a worker."""
        now = self.clock()
        for client in [c for c, t in self._demand.items() if t <= now]:
            del self._demand[client]
        return len(self._demand)

    def target(self) -> int:
        """How many workers the pool wants now (leases and waiting clients count)."""
        return self.config.target(self.leased_count() + self.demand())

    def slot_delay(self, slot: int) -> float:
        """Seconds until `slot` may be forked into again (0 = now)."""
        return max(0.0, self._retry_at.get(slot, 0.0) - self.clock())

    def backoff_tries(self, slot: int) -> int:
        """Crashes counted for a slot since its last healthy worker."""
        b = self._backoff.get(slot)
        return b.tries if b is not None else 0

    # --- normalisation ---

    def plan(self) -> Plan:
        """Forks, retirements and the next wake-up that bring the pool to its target, never
        above `max` (entries being killed still hold their slot)."""
        cfg = self.config
        entries = self.entries
        live = [e for e in entries.values() if not e.killing]
        target = self.target()
        plan = Plan(target=target)
        missing = min(target - len(live), cfg.max - len(entries))
        if missing > 0:
            # the lowest free slots, always: a slot in backoff is waited for, never replaced by
            # another free slot (that would turn a crash loop into a fork storm over all slots)
            used = {e.slot for e in entries.values()}
            free = [s for s in range(cfg.max) if s not in used][:missing]
            now = self.clock()
            for slot in free:
                at = self._retry_at.get(slot, 0.0)
                if at <= now:
                    plan.fork.append(slot)
                else:
                    plan.wake_at = at if plan.wake_at is None else min(plan.wake_at, at)
        extra = len(live) - target
        if extra > 0:
            # adopted workers first (not our children), then the newest
            spares = sorted((e for e in live if e.is_idle()),
                            key=lambda e: (not e.adopted, -e.started))
            plan.retire = [e.key for e in spares[:extra]]
        return plan

    def normalized(self) -> bool:
        """Exactly the target, every one of them ready."""
        live = [e for e in self.entries.values() if not e.killing]
        target = self.target()
        return (len(live) == target and len(live) == len(self.entries)
                and all(e.is_ready() or e.lease is not None for e in live))


__all__ = ["FILTERS", "ErrorLog", "Plan", "Pool", "PoolEntry", "WorkerInfo"]
