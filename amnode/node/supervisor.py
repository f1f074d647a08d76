"""The node supervisor: a pool of one kind of worker processes, leased to clients one by one.

`Start` opens a public port (an aRPC `Mux`, one server per client connection) and a local one,
and normalises the pool: every missing worker gets a bootstrap (`ForkWorker`), is spawned
(`ForkingWorker`, its PID recorded at once), reports back (`WorkerConnected`), is dialed
(`WorkerForked`) and counts as ready once its mirror shows `Ready`. `PoolReady` needs `min`
ready workers; `WorkersAvailable` (an idle worker exists) and `Ready` follow every change.

A client adds `ProvideWorker` through the public port (the only state it may add there): the
supervisor leases an idle worker (`ServeClient` on the worker, which then accepts only that
client and shows `Reserved`) and answers with a `ProvideWorker` payload holding a `WorkerLease`
(the worker's public address) or a `LeaseRefused` (why; the pool grows if it can). When the
client's connection ends (`ClientDisconnected`), its leases are released.

Every exit of a worker is reported (`ErrWorker` with its stderr, unless the supervisor killed
it) and frees its slot (`WorkerKilled`), after which the pool is normalised again; a slot whose
workers crash at start waits with exponential backoff. The heartbeat health-checks every ready
worker with a deadline; a hung worker is killed (SIGTERM, then SIGKILL) and replaced.
`stop()` returns once every worker process is reaped.

The local port is the control port: peer supervisors of the same kind link there (see
`peers.py`: summaries, adoption of a lost peer's workers) and operators ask for the pool's
status (`ListWorkers`), kill a worker (`KillWorker`) or rotate the worker logs (`RotateLogs`,
see `logs.py`). Leases live and expire as `leases.py` says.

Every blocking step runs in a task bound to a state (`Start`, `Heartbeat`); handlers only
decide, and the results come back as mutations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import amnode.machine as am
from amnode.machine.schema import SchemaLike
from amnode.rpc import Client, Mux, NoAccessError
from amnode.rpc.retry import CONN_RETRY, legacy_policy
from amnode.states import node as ss
from amnode.states import rpc as ssrpc

from . import debug
from .access import Policy, RemoteGuard
from .args import (
    ARG,
    ClientConnArgs,
    ListWorkersArgs,
    PeerHello,
    PoolStatus,
    ProvideWorkerArgs,
    ReturnWorkerArgs,
    WorkerAddrArgs,
    WorkerGone,
    WorkerRef,
    get_args,
)
from .bootstrap import Bootstrap
from .config import DEFAULT_TIMEOUT, NodeTimeouts, PoolConfig, adopt, resolve_handler_timeout
from .errors import (
    BootstrapError,
    NodeError,
    PoolError,
    WorkerExitError,
    WorkerHealthError,
)
from .leases import CLIENT_POLICY, Leases
from .links import pipe
from .logs import WorkerLogs
from .naming import host_name, safe, supervisor_name
from .peers import PAYLOAD_LIST, Peers, entry_status
from .pool import Clock, Pool, PoolEntry, WorkerInfo
from .spawn import (
    ADOPT_ENV,
    GRACE_ENV,
    PARENT_ENV,
    SUPERVISOR_ENV,
    ProcessHandle,
    ProcessSpawner,
    Spawner,
    adopted_handle,
)
from .worker import check_worker_schema

log = logging.getLogger("amnode.node")

TAG_SUPERVISOR = "node-supervisor"

#: what peers and operators may do on the supervisor's control (local) port
PEER_POLICY: Policy = Policy("a peer or operator", allow=ss.SUPERVISOR_CONTROL_STATES)
#: the supervisor states shown in a `PoolStatus`
_STATUS_STATES = (ss.READY, ss.POOL_READY, ss.WORKERS_AVAILABLE, ss.POOL_NORMALIZED,
                  ss.NORMALIZING_POOL, ss.ERR_POOL, ss.ERR_NETWORK)

#: the supervisor's error states besides ErrWorker (Exception stays while one is active)
_OTHER_ERRORS = (ss.ERR_NETWORK, ss.ERR_HANDLER_TIMEOUT, ss.ERR_ON_CLIENT, ss.ERR_POOL)
#: longest client id accepted in ProvideWorker
_MAX_ID = 256


def describe_exit(code: int | None) -> str:
    """"code 3", "signal SIGKILL", or "a stop" (in-process)."""
    if code is None:
        return "a stop"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"


class Supervisor:
    """Supervises a pool of one kind of worker (Go NewSupervisor) and leases them to clients.

    `worker_cmd` is the worker program (run as `worker_cmd -a <bootstrap addr>`); a `spawner`
    replaces it, e.g. `InProcessSpawner` for workers in this process. Pool sizes come from
    `pool` or the `min`/`max`/`warm`/`max_client_workers` keywords, timeouts from `timeouts`.
    `peers` (control addresses) and a shared `secret` make it one of a redundant group;
    `log_dir` keeps every worker's stdout/stderr in rotated files.
    """

    def __init__(self, kind: str, worker_cmd: Sequence[str] | None = None,
                 worker_schema: SchemaLike | None = None, *, min: int | None = None,
                 max: int | None = None, warm: int | None = None,
                 max_client_workers: int | None = None, pool: PoolConfig | None = None,
                 timeouts: NodeTimeouts | None = None, spawner: Spawner | None = None,
                 host: str = "127.0.0.1", instance_num: int = 0, name: str | None = None,
                 parent: am.Machine | str | None = None, tags: Sequence[str] = (),
                 log_level: am.LogLevel | int | None = None,
                 handler_timeout: float | None = DEFAULT_TIMEOUT,
                 clock: Clock = time.monotonic, peers: Sequence[str] = (),
                 secret: str | None = None, log_dir: str | None = None,
                 log_max_bytes: int = 10 * 1024 * 1024, log_backups: int = 3) -> None:
        if not kind:
            raise ValueError("a supervisor needs a worker kind")
        debug.enable_flight_recorder()
        if worker_schema is None:
            raise am.SchemaError("a supervisor needs the worker schema")
        check_worker_schema(worker_schema)
        if spawner is None:
            if not worker_cmd or not worker_cmd[0]:
                raise ValueError("a supervisor needs worker_cmd (or a spawner)")
            spawner = ProcessSpawner(worker_cmd)
        self.kind = kind
        self.worker_cmd = list(worker_cmd or [])
        self.worker_schema = dict(worker_schema)
        self.spawner = spawner
        self.host = host
        self.instance_num = instance_num
        self.log_level = log_level
        self.timeouts = (timeouts or NodeTimeouts()).resolve()
        base = pool or PoolConfig()
        config = PoolConfig(
            min=base.min if min is None else min, max=base.max if max is None else max,
            warm=base.warm if warm is None else warm,
            max_client_workers=(base.max_client_workers if max_client_workers is None
                                else max_client_workers), max_jobs=base.max_jobs)
        if peers and not secret:
            raise ValueError("supervisors with peers need a shared group secret (secret=, or "
                             "AMNODE_NODE_SECRET for `amnode supervisor`)")
        t = self.timeouts
        self.pool = Pool(config, t.errors, t.crash_backoff, t.crash_window, clock)
        self.name = name or supervisor_name(kind, instance_num)
        self.guard = RemoteGuard()
        # in the ids of its links to workers: no other local process can present them
        self._secret = secrets.token_hex(6)
        #: tells this supervisor object from a restarted one with the same id (peers)
        self.incarnation = secrets.token_hex(4)
        self.mach = am.Machine(ss.SupervisorSchema, id="ns-" + self.name, parent=parent,
                               tags=[TAG_SUPERVISOR, f"kind:{kind}", f"instance:{instance_num}",
                                     f"host:{host_name()}", *tags], log_level=log_level,
                               handler_timeout=resolve_handler_timeout(handler_timeout))
        self.mach.verify_states(ss.SUPERVISOR_STATES)
        self.mach.set_groups({"PoolStatus": ss.POOL_STATUS_GROUP, "Errors": ss.ERRORS_GROUP,
                              "PoolNormalized": ss.POOL_NORMALIZED_GROUP})
        self.mach.bind_tracer(self.guard)
        #: the public port (one aRPC server per client connection)
        self.mux: Mux | None = None
        #: the control (local) port: peer supervisors and operators (one server per connection)
        self.local: Mux | None = None
        #: clients and their leases
        self.leases = Leases(self)
        #: peer supervisors of the same kind (redundancy)
        self.peers = Peers(self, list(peers), secret)
        #: worker stdout/stderr files (None without `log_dir`)
        self.logs = (WorkerLogs(log_dir, f"{safe(kind)}-{instance_num}", log_max_bytes,
                                log_backups) if log_dir else None)
        #: why the pool is not ready ("" when it is, or nothing failed yet)
        self.pool_error = ""
        #: the last worker error, with its stderr
        self.last_worker_error = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listening: asyncio.Future[None] | None = None
        self._wake: asyncio.Task[Any] | None = None
        self._wake_at: float | None = None
        self._normalizing = False
        self._renormalize = False
        self._status_pending = False
        self._stopping = False
        self._stopped = False
        self.mach.bind_handlers(_SupervisorHandlers(self), id="node-supervisor")

    # --- public API ---

    @property
    def public_addr(self) -> str:
        """The public port's `host:port` (clients connect here), once started."""
        return self.mux.addr if self.mux is not None else ""

    @property
    def local_addr(self) -> str:
        """The local port's `host:port`, once started."""
        return self.local.addr if self.local is not None else ""

    @property
    def config(self) -> PoolConfig:
        """The pool sizes."""
        return self.pool.config

    async def start(self, addr: str = "127.0.0.1:0", *, local_addr: str | None = None,
                    timeout: float | None = None) -> None:
        """Open both ports and start filling the pool; returns once both listen (wait for
        `PoolReady` or `Ready` on `mach` for the workers). Raises ConnectionError if a port
        cannot be opened."""
        if self._stopped or self.mach.is_disposed:
            raise NodeError(f"{self.mach.id}: stopped")
        if self.mach.is_active(ss.START):
            return
        self._listening = asyncio.get_running_loop().create_future()
        # the endpoints are made here, not in a handler (handlers only decide and fork)
        self.mux = Mux(None, addr, name="ns-pub-" + self.name, parent=self.mach,
                       new_server=self.leases.new_server, log_level=self.log_level)
        adopt(self.mux.mach, self.mach)
        pipe(self.mux.mach, self.mach, ss.READY, ss.PUBLIC_RPC_READY)
        self.local = Mux(None, local_addr or f"{self.host}:0", name="ns-loc-" + self.name,
                         parent=self.mach, new_server=self.peers.new_server,
                         log_level=self.log_level)
        adopt(self.local.mach, self.mach)
        pipe(self.local.mach, self.mach, ss.READY, ss.LOCAL_RPC_READY)
        debug.serve_supervisor(self)  # amdbg attach on either port
        res = self.mach.add(ss.START, {"public_addr": addr,
                                       "local_addr": local_addr or f"{self.host}:0"})
        if res == am.CANCELED:
            raise NodeError(f"{self.mach.id}: Start canceled (disposed or bad address)")
        limit = timeout if timeout is not None else self.timeouts.connect * 2
        try:
            await asyncio.wait_for(asyncio.shield(self._listening), limit)
        except TimeoutError:
            raise ConnectionError(f"{self.mach.id}: ports not open after {limit}s") from None

    async def stop(self, dispose: bool = True) -> None:
        """Kill every worker (SIGTERM, SIGKILL after `kill_grace`) and return once each one is
        reaped; close both ports and dispose the machine. Safe to call twice."""
        if self._stopped:
            return
        if not self._stopping and not self.mach.is_disposed:
            # tell the peers first: nobody should adopt workers that are being killed
            self._stopping = True
            await self.peers.push_now(self.timeouts.delivery)
        self._stopping = True
        self.peers.dispose()
        try:
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeouts.kill_grace + 5)
            entries = list(self.pool.entries.values())
            for entry in entries:
                entry.killing = entry.killing or "supervisor stopping"
                entry.deliberate = True
                # links first: a link that sees its worker exit would reconnect and fail
                self._drop_links(entry)
            await asyncio.gather(*(e.handle.terminate(self.timeouts.kill_grace)
                                   for e in entries if e.handle is not None),
                                 return_exceptions=True)
            for ep in (self.mux, self.local):
                if ep is not None:
                    with contextlib.suppress(Exception):
                        await ep.stop(dispose=True)
            if self.logs is not None:
                await self.logs.close()
        finally:
            # cancelled or failed half-way: nothing may outlive us (the child watcher reaps)
            for entry in list(self.pool.entries.values()):
                if entry.handle is not None and entry.handle.alive:
                    entry.handle.kill_now()
            self._stopped = True
            if not self.mach.is_disposed:
                self.mach.remove(ss.START)
                if dispose:
                    self.mach.dispose()

    def dispose(self, kill_workers: bool = True) -> None:
        """Kill every worker without waiting, close everything and dispose (prefer `stop`).
        With `kill_workers=False` the workers are left running, as if this process died: a
        peer adopts them or they exit after their grace (tests, a hand-over)."""
        self._stopping = self._stopped = True
        self.peers.dispose()
        for entry in list(self.pool.entries.values()):
            if kill_workers and entry.handle is not None and entry.handle.alive:
                entry.handle.kill_now()
            elif isinstance(entry.handle, ProcessHandle):
                entry.handle.disown()
            self._close_links(entry)
        for ep in (self.mux, self.local):
            if ep is not None and not ep.mach.is_disposed:
                for srv in list(ep.servers.values()):
                    srv.dispose()
                ep._listener.close()
                ep.mach.dispose()
        if not self.mach.is_disposed:
            self.mach.dispose()

    async def workers(self, state: str = "") -> list[WorkerInfo]:
        """Snapshots of the pool's workers: all (""), or `initing`, `ready`, `idle`, `busy`,
        `leased` (ready / idle / busy leave out workers with a recent error)."""
        now = self.pool.clock()
        return [e.info(now, e.handle.stderr_tail() if e.handle is not None else ())
                for e in self.pool.select(state)]

    def set_pool(self, min: int, max: int, warm: int, max_client_workers: int = 0,
                 max_jobs: int | None = None) -> bool:
        """New pool sizes (a `min` above `max` is lowered to it; `max_client_workers=0` means
        `max`; `max_jobs` stays unless given), then `check_pool()`."""
        self.pool.config = PoolConfig(
            min=min, max=max, warm=warm, max_client_workers=max_client_workers,
            max_jobs=self.pool.config.max_jobs if max_jobs is None else max_jobs)
        return self.check_pool()

    def check_pool(self) -> bool:
        """Normalise the pool now; True if it is ready."""
        if self.mach.is_active(ss.START):
            self._normalize()
        return self.mach.is_active(ss.POOL_READY)

    async def add_peers(self, addrs: Sequence[str]) -> None:
        """Link to more peer supervisors (their control addresses), e.g. once they listen."""
        if addrs and not self.peers.secret:
            raise ValueError("supervisors with peers need a shared group secret (secret=)")
        self.peers.addrs += [a for a in addrs if a not in self.peers.addrs]
        if self.mach.is_active(ss.LOCAL_RPC_READY):
            await self.peers.start()

    def rotate_logs(self) -> bool:
        """Rotate every worker log file now (`RotateLogs`); False without a log directory."""
        if self.logs is None or not self.mach.is_active(ss.START):
            return False
        return self.mach.add(ss.ROTATE_LOGS) != am.CANCELED

    def status(self, redacted: bool = True) -> PoolStatus:
        """The pool as a `PoolStatus` (what `amnode status` shows; lease holders without their
        secrets unless `redacted=False`, which only peers get)."""
        pool = self.pool
        cfg = pool.config
        now = pool.clock()
        mach = self.mach
        states = [] if mach.is_disposed else [x for x in _STATUS_STATES if mach.is_active(x)]
        return PoolStatus(
            mach.id, self.kind, self.instance_num, self.public_addr, self.local_addr,
            cfg.min, cfg.max, cfg.warm, pool.target(), pool.ready_count(), pool.leased_count(),
            states, [entry_status(e, now, redacted) for e in pool.entries.values()],
            [x.peer_id for x in self.peers.live_peers()], self.pool_error, self._stopping,
            incarnation=self.incarnation)

    def kill_worker(self, worker: str, reason: str = "requested") -> bool:
        """Kill one worker (by machine id or pool key); it is replaced. False if unknown."""
        entry = self.pool.by_id(worker)
        if entry is None:
            return False
        return self.mach.add(ss.KILL_WORKER, {ARG: WorkerRef(entry.key, reason)}) != am.CANCELED

    def __repr__(self) -> str:
        return f"Supervisor({self.mach.id} {self.public_addr} {len(self.pool.entries)} workers)"

    # --- tasks ---

    def _go(self, coro: Coroutine[Any, Any, Any], state: str = ss.START,
            entry: PoolEntry | None = None) -> asyncio.Task[Any]:
        """Run `coro` in a task bound to `state` (and cancelled with `entry`)."""
        task = self.mach.fork(coro, state)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if entry is not None:
            entry.tasks.add(task)
            task.add_done_callback(entry.tasks.discard)
        return task

    def _link_id(self, entry: PoolEntry) -> str:
        """The aRPC client id of the link to one worker (`rc-` + this is what its local port
        admits): the supervisor's name, the entry and the supervisor's secret (and, in a group
        of peers, the adoption token, so that an orphan admits it)."""
        token = self.peers.token
        base = f"{self.name}-{entry.key}-{self._secret}"
        return f"{base}-{token}" if token else base

    def _worker_env(self, entry: PoolEntry) -> dict[str, str]:
        env = {PARENT_ENV: self.mach.id, GRACE_ENV: str(self.timeouts.supervisor_grace),
               SUPERVISOR_ENV: "rc-" + self._link_id(entry)}
        if self.peers.token:
            env[ADOPT_ENV] = self.peers.token
        return env

    async def _listen(self) -> None:
        """Open both ports (bound to `Start`)."""
        fut = self._listening
        try:
            assert self.mux is not None and self.local is not None
            await asyncio.gather(self.mux.start(self.timeouts.connect),
                                 self.local.start(self.timeouts.connect))
        except ConnectionError as err:
            self.mach.add_err_state(ss.ERR_NETWORK, err)
            if fut is not None and not fut.done():
                fut.set_exception(err)
            return
        if fut is not None and not fut.done():
            fut.set_result(None)
        await self.peers.start()

    async def _rotate_logs(self) -> None:
        """Rotate every worker log file (bound to `Start`)."""
        if self.logs is not None:
            n = await self.logs.rotate()
            self.mach.log("rotated %d log files", n)

    async def _ticker(self) -> None:
        """The heartbeat, and a periodic normalisation while the pool is short (B16)."""
        while True:
            await asyncio.sleep(self.timeouts.heartbeat)
            self._normalize()  # cheap when nothing is to do; expired demand shrinks the pool
            self.mach.add(ss.HEARTBEAT)

    # --- pool normalisation ---

    def _normalize(self) -> None:
        """Fork what is missing, retire idle spares above the target, schedule the next try of
        slots in backoff, and refresh the pool's states. Never re-entered: a call made while
        one runs makes it go round once more."""
        if self._normalizing:
            self._renormalize = True
            return
        self._normalizing = True
        try:
            while True:
                self._renormalize = False
                self._normalize_once()
                if not self._renormalize:
                    break
        finally:
            self._normalizing = False

    def _normalize_once(self) -> None:
        mach = self.mach
        if self._stopping or mach.is_disposed or not mach.is_active(ss.START):
            return
        pool = self.pool
        plan = pool.plan()
        # the bookkeeping first (entries hold their slots), the mutations after
        forks = [pool.new_entry(slot) for slot in plan.fork]
        # while orphans of a lost peer are being adopted, nothing is retired yet: the adopted
        # ones are retired first, once they are in
        retire = [] if self.peers.adopting else [pool.entries[k] for k in plan.retire]
        for entry in retire:
            entry.deliberate = True
        for entry in retire:
            mach.add(ss.KILLING_WORKER, {ARG: WorkerRef(entry.key, "above the pool's target")})
        for entry in forks:
            mach.add(ss.FORK_WORKER, {ARG: WorkerRef(entry.key)})
        if plan.wake_at is not None:
            self._wake_up(plan.wake_at)
        self._update_status()

    def _wake_up(self, at: float) -> None:
        """Normalise again at clock time `at` (a slot leaves its backoff)."""
        if self._wake is not None and not self._wake.done() and self._wake_at is not None \
                and self._wake_at <= at:
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake_at = at

        async def wake() -> None:
            await asyncio.sleep(max(0.0, at - self.pool.clock()))
            self._wake_at = None
            self._normalize()

        self._wake = self._go(wake())

    def _status_soon(self) -> None:
        """`_update_status()` on the next loop iteration (once, however often asked): for
        handlers of other machines (worker mirrors and links), which must not drain ours."""
        if self._status_pending:
            return
        self._status_pending = True

        def run() -> None:
            self._status_pending = False
            self._update_status()

        try:
            asyncio.get_running_loop().call_soon(run)
        except RuntimeError:
            self._status_pending = False

    def _update_status(self) -> None:
        """PoolReady, WorkersAvailable and PoolNormalized/NormalizingPool from the pool (B7)."""
        mach = self.mach
        if self._stopping or mach.is_disposed or not mach.is_active(ss.START):
            return
        pool = self.pool
        ready = pool.ready_count()
        is_ready = ready >= pool.config.min
        if is_ready and not mach.is_active(ss.POOL_READY):
            mach.add(ss.POOL_READY)
        elif not is_ready and mach.is_active(ss.POOL_READY):
            mach.remove(ss.POOL_READY)
        available = is_ready and bool(pool.idle())
        if available and not mach.is_active(ss.WORKERS_AVAILABLE):
            mach.add(ss.WORKERS_AVAILABLE)
        elif not available and mach.is_active(ss.WORKERS_AVAILABLE):
            mach.remove(ss.WORKERS_AVAILABLE)
        normalized = pool.normalized()
        if normalized and not mach.is_active(ss.POOL_NORMALIZED):
            mach.add(ss.POOL_NORMALIZED)
        elif not normalized and not mach.is_active(ss.NORMALIZING_POOL):
            mach.add(ss.NORMALIZING_POOL)
        for entry in pool.entries.values():
            if entry.lease is not None:
                self.leases.watch(entry)
        self.peers.push_soon()

    def _pool_failed(self, why: str) -> None:
        """The pool is short and a worker failed: say why (`ErrPool`, `pool_error`)."""
        pool = self.pool
        cfg = pool.config
        ready = pool.ready_count()
        if ready >= cfg.min:
            return
        waits = [pool.slot_delay(s) for s in range(cfg.max) if pool.slot_delay(s) > 0]
        retry = f"; next try in {min(waits):.1f}s" if waits else ""
        reason = f"pool not ready ({ready}/{cfg.min} ready workers): {why}{retry}"
        self.pool_error = reason
        self.mach.add_err_state(ss.ERR_POOL, PoolError(reason), {"reason": reason})

    def _clear_error(self, state: str) -> None:
        """Remove an error state, and `Exception` unless another error state stays."""
        mach = self.mach
        others = [s for s in (ss.ERR_WORKER, *_OTHER_ERRORS)
                  if s != state and mach.is_active(s)]
        mach.remove([state] if others else [state, am.EXCEPTION])

    # --- one worker's life ---

    async def _spawn(self, entry: PoolEntry) -> None:
        """Open the bootstrap, then `ForkingWorker`."""
        boot = entry.bootstrap = Bootstrap(self, entry.key)
        try:
            await boot.start(self.timeouts.connect)
        except ConnectionError as err:
            srv = boot.server.mach
            self._fail(entry, BootstrapError(
                f"the bootstrap cannot listen: {err} ({srv.string_all()}; "
                f"{list(srv.err_internal)})"))
            return
        entry.boot_addr = boot.addr
        self.mach.add(ss.FORKING_WORKER, {ARG: WorkerRef(entry.key)})

    async def _exec(self, entry: PoolEntry) -> None:
        """Start the worker (PID recorded at once), watch its exit, await its report."""
        entry.spawning = True
        try:
            if self.logs is not None and isinstance(self.spawner, ProcessSpawner):
                handle: Any = await self.spawner.spawn(entry.boot_addr, self._worker_env(entry),
                                                       self.logs.for_slot(entry.slot))
            else:
                handle = await self.spawner.spawn(entry.boot_addr, self._worker_env(entry))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            entry.spawning = False
            self._fail(entry, WorkerExitError(f"cannot start the worker: {err}"))
            return
        entry.spawning = False
        entry.handle = handle
        entry.pid = handle.pid
        self.mach.log("worker %s started (pid %s)", entry.key, handle.pid)
        self._go(self._watch_exit(entry))
        if entry.killing or self._stopping:
            self._go(self._terminate(entry))
            return
        boot = entry.bootstrap
        if boot is None:
            return
        try:
            await boot.mach.when(ss.WORKER_ADDR, timeout=self.timeouts.bootstrap)
        except TimeoutError:
            self._fail(entry, BootstrapError(
                f"worker {entry.key} (pid {handle.pid}) did not report back within "
                f"{self.timeouts.bootstrap}s"))
        except am.DisposedError:
            pass

    async def _watch_exit(self, entry: PoolEntry) -> None:
        """Report the worker's exit, whatever the exit code (B17)."""
        handle = entry.handle
        code = await handle.wait()
        self._gone(entry, code)

    def _gone(self, entry: PoolEntry, code: int | None) -> None:
        """The worker exited: `ErrWorker` (unless killed on purpose), then `WorkerKilled`."""
        if entry.key not in self.pool.entries or entry.gone:
            return
        entry.gone = True
        mach = self.mach
        if mach.is_disposed or self._stopping:
            return
        how = describe_exit(code)
        if entry.killing:
            reason = f"killed ({entry.killing}), exited with {how}"
        else:
            reason = f"exited with {how}"
            stderr = entry.handle.stderr_tail() if entry.handle is not None else []
            err = WorkerExitError(
                f"worker {entry.id or entry.key} (pid {entry.pid}) {reason}", returncode=code,
                stderr=stderr)
            mach.add_err_state(ss.ERR_WORKER, err, {ARG: WorkerRef(entry.key, "exited")})
        mach.add(ss.WORKER_KILLED, {ARG: WorkerRef(entry.key, reason)})

    def _fail(self, entry: PoolEntry, err: BaseException) -> None:
        """A worker failed (before or after reporting): `ErrWorker`, then kill it (or free its
        slot at once when nothing runs)."""
        mach = self.mach
        if entry.key not in self.pool.entries or entry.gone or mach.is_disposed \
                or self._stopping:
            return
        reason = str(err).split("\n", 1)[0]
        mach.add_err_state(ss.ERR_WORKER, err, {ARG: WorkerRef(entry.key, reason)})
        if not entry.killing:
            mach.add(ss.KILLING_WORKER, {ARG: WorkerRef(entry.key, reason)})

    async def _terminate(self, entry: PoolEntry) -> None:
        """Close the links (a link watching its worker exit would reconnect and fail), then
        SIGTERM, SIGKILL after the grace; the exit watcher then adds `WorkerKilled`."""
        self._drop_links(entry)
        if entry.handle is not None:
            await entry.handle.terminate(self.timeouts.kill_grace)

    def _link_client(self, entry: PoolEntry, timeout: float, retries: bool = True) -> Client:
        """The aRPC client of a link to one worker (it reconnects a few times when lost)."""
        t = self.timeouts
        rpc = Client(entry.local_addr, id=self._link_id(entry), schema=self.worker_schema,
                     consumer=self.mach, parent=self.mach, conn_timeout=timeout,
                     conn_retry=self._link_retry() if retries else CONN_RETRY.with_(timeout=0.0),
                     call_timeout=t.healthcheck, call_retries=1, call_retry_delay=0.1,
                     call_retry_timeout=t.connect, log_level=self.log_level)
        adopt(rpc.mach, self.mach)
        return rpc

    def _link_retry(self) -> Any:
        return legacy_policy(CONN_RETRY, tries=3, delay=0.2, backoff=1.0,
                             timeout=self.timeouts.connect * 2, zero_timeout_is_none=True)

    def _bind_link(self, entry: PoolEntry, rpc: Client) -> None:
        rpc.mach.bind_handlers(_LinkWatch(self, entry), id="node-link")
        if rpc.netmach is not None:
            adopt(rpc.netmach, self.mach)
            if not rpc.netmach.handlers():
                rpc.netmach.bind_handlers(_MirrorWatch(self), id="node-mirror")

    async def _adopt_link(self, entry: PoolEntry, deadline: float,
                          give_up: Callable[[], bool]) -> bool:
        """Dial an orphan's local port until it admits us (it does once no supervisor holds
        it), `give_up()` says so or `deadline` (loop time) passes; True once adopted."""
        loop = asyncio.get_running_loop()
        while not self._stopping and not give_up() and entry.key in self.pool.entries:
            left = deadline - loop.time()
            if left <= 0:
                break
            rpc = self._link_client(entry, min(self.timeouts.connect, left), retries=False)
            await rpc.start()
            until = loop.time() + min(self.timeouts.connect, left)
            m = rpc.mach
            # until the handshake is done, or the dial / the handshake failed (refused)
            while (loop.time() < until and not m.is_active(ss.READY)
                   and m.any_active(ssrpc.CONNECTING, ssrpc.CONNECTED)):
                await asyncio.sleep(0.02)
            if rpc.mach.is_active(ss.READY) and not give_up() \
                    and entry.key in self.pool.entries:
                handle = adopted_handle(entry.pid, entry.id)
                if handle is None:
                    rpc.dispose()
                    return False
                rpc.conn_retry = self._link_retry()
                entry.rpc = rpc
                entry.handle = handle
                self._bind_link(entry, rpc)
                self.mach.log("adopted %s (pid %s)", entry.id, entry.pid)
                self._go(self._watch_exit(entry), entry=entry)
                self.mach.add(ss.WORKER_FORKED, {ARG: WorkerRef(entry.key, "adopted")})
                return True
            rpc.dispose()
            await asyncio.sleep(0.1)
        return False

    def _forget(self, entry: PoolEntry, reason: str) -> None:
        """Drop a worker without killing it (another supervisor holds it, or an adoption
        failed); a child process is still reaped, and never killed at exit."""
        if entry.key not in self.pool.entries:
            return
        entry.gone = entry.deliberate = True
        self.leases._cancel(entry.key)
        self.pool.remove(entry.key)
        if isinstance(entry.handle, ProcessHandle):
            entry.handle.disown()
        self._close_links(entry)
        self.mach.log("dropped %s: %s", entry.id or entry.key, reason)
        self._update_status()
        self._normalize()

    async def _link(self, entry: PoolEntry) -> None:
        """Dial the worker's local port; `WorkerForked` once the link is ready."""
        t = self.timeouts
        rpc = self._link_client(entry, t.connect)
        entry.rpc = rpc
        rpc.mach.bind_handlers(_LinkWatch(self, entry), id="node-link")
        await rpc.start()
        if rpc.netmach is not None:
            adopt(rpc.netmach, self.mach)
            rpc.netmach.bind_handlers(_MirrorWatch(self), id="node-mirror")
        ready = asyncio.ensure_future(rpc.mach.when(ss.READY))
        gone = asyncio.ensure_future(rpc.mach.when_not(ss.START))
        try:
            await asyncio.wait({ready, gone}, timeout=t.connect,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in (ready, gone):
                w.cancel()
        if rpc.mach.is_disposed or not rpc.mach.is_active(ss.READY):
            self._fail(entry, NodeError(
                f"cannot connect to worker {entry.id} at {entry.local_addr}"))
            return
        self.mach.add(ss.WORKER_FORKED, {ARG: WorkerRef(entry.key)})

    def _close_links(self, entry: PoolEntry) -> None:
        """Cancel the worker's tasks, dispose its aRPC client and bootstrap (no goodbye)."""
        for task in list(entry.tasks):
            task.cancel()
        self._drop_links(entry)

    def _drop_links(self, entry: PoolEntry) -> None:
        """Dispose the worker's aRPC client and bootstrap; its tasks (the exit watch) go on."""
        rpc, entry.rpc = entry.rpc, None
        if rpc is not None and not rpc.mach.is_disposed:
            rpc.dispose()
        boot, entry.bootstrap = entry.bootstrap, None
        if boot is not None:
            boot.dispose()

    async def _heartbeat(self, entries: list[PoolEntry]) -> None:
        """Health-check every ready worker in parallel, each with its deadline (bound to
        `Heartbeat`); a worker that fails every try is killed."""
        try:
            results = await asyncio.gather(*(self._check(e) for e in entries))
            for entry, ok in zip(entries, results, strict=True):
                if not ok:
                    self._fail(entry, WorkerHealthError(
                        f"worker {entry.id} failed its health checks (hung?)"))
        finally:
            self.mach.remove(ss.HEARTBEAT)
            self._update_status()

    async def _check(self, entry: PoolEntry) -> bool:
        """One worker's health check: its `Healthcheck` tick must grow within the deadline."""
        backoff = self.timeouts.healthcheck_retry.backoff(self.pool.clock)
        while True:
            mirror = entry.mirror
            if entry.key not in self.pool.entries or entry.killing or mirror is None:
                return True
            before = mirror.tick(ss.HEALTHCHECK)
            try:
                res = await asyncio.wait_for(mirror.add(ss.HEALTHCHECK),
                                             self.timeouts.healthcheck)
            except Exception:
                res = None
            if res == am.EXECUTED and mirror.tick(ss.HEALTHCHECK) > before:
                return True
            delay = backoff.next_delay()
            if delay is None:
                return False
            await asyncio.sleep(delay)

class _LinkWatch:
    """Bound on the supervisor's aRPC client to one worker."""

    def __init__(self, sup: Supervisor, entry: PoolEntry) -> None:
        self.s = sup
        self.entry = entry

    def ReadyState(self, e: am.Event) -> None:
        self.s._status_soon()

    def ReadyEnd(self, e: am.Event) -> None:
        self.s._status_soon()

    def ConnRetryFailedState(self, e: am.Event) -> None:
        s, entry = self.s, self.entry
        if entry.rpc is not e.machine and entry.rpc is not None \
                and entry.rpc.mach is not e.machine:
            return
        err = NodeError(f"lost the link to worker {entry.id} at {entry.local_addr}")
        asyncio.get_running_loop().call_soon(s._fail, entry, err)

    def ExceptionState(self, e: am.Event) -> None:
        """The worker admits another supervisor now (a peer adopted it): give it up."""
        exc = e.args.get(am.ARG_EXCEPTION)
        if exc is not None and isinstance(exc.err, NoAccessError):
            asyncio.get_running_loop().call_soon(
                self.s._forget, self.entry, f"taken over by another supervisor ({exc.err})")


class _MirrorWatch:
    """Bound on each worker's mirror: every change of a worker refreshes the pool's states."""

    def __init__(self, sup: Supervisor) -> None:
        self.s = sup

    def AnyState(self, e: am.Event) -> None:
        self.s._status_soon()


class _SupervisorHandlers:
    """The supervisor machine's handlers (node.md §3)."""

    def __init__(self, sup: Supervisor) -> None:
        self.s = sup

    def _entry(self, e: am.Event) -> PoolEntry | None:
        args = get_args(e, WorkerRef)
        return self.s.pool.by_id(args.key) if args is not None and args.key else None

    def AnyEnter(self, e: am.Event) -> bool:
        """Remote peers may only add the states meant for them (access control)."""
        return self.s.guard.check(e)

    # --- lifecycle ---

    def StartEnter(self, e: am.Event) -> bool:
        """Needs the public address and the endpoints made by `start()`."""
        s = self.s
        addr = e.args.get("public_addr")
        return (isinstance(addr, str) and bool(addr) and not s._stopped
                and s.mux is not None and s.local is not None)

    def StartState(self, e: am.Event) -> None:
        """Open both ports (in a task), start the heartbeat."""
        s = self.s
        s._go(s._listen())
        s._go(s._ticker())

    def StartEnd(self, e: am.Event) -> None:
        """Removed without `stop()`: stop properly."""
        s = self.s
        if not s._stopping:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(s.stop(dispose=False))

    # --- pool ---

    def NormalizingPoolState(self, e: am.Event) -> None:
        """Fork what is missing (B9: in-flight forks count, `max` is never exceeded)."""
        self.s._normalize()

    def PoolReadyEnter(self, e: am.Event) -> bool:
        """At least `min` ready workers."""
        pool = self.s.pool
        return pool.ready_count() >= pool.config.min

    def PoolReadyState(self, e: am.Event) -> None:
        """A ready pool clears `ErrPool`; the supervisor may become `Ready`."""
        s = self.s
        s.pool_error = ""
        if s.mach.is_active(ss.ERR_POOL):
            s._clear_error(ss.ERR_POOL)
        self._ready()

    def LocalRpcReadyState(self, e: am.Event) -> None:
        """The local port listens; the supervisor may become `Ready`."""
        self._ready()

    def PublicRpcReadyState(self, e: am.Event) -> None:
        """The public port listens; the supervisor may become `Ready`."""
        self._ready()

    def _ready(self) -> None:
        """`Ready` once both ports listen and the pool is ready (B6); it goes with any of
        them (Require)."""
        mach = self.s.mach
        if mach.is_active([ss.LOCAL_RPC_READY, ss.PUBLIC_RPC_READY, ss.POOL_READY]):
            mach.add(ss.READY)

    def HeartbeatState(self, e: am.Event) -> None:
        """Health-check the ready workers (in a task bound to `Heartbeat`)."""
        s = self.s
        entries = [x for x in s.pool.entries.values() if x.is_ready()]
        if not entries:
            s.mach.remove(ss.HEARTBEAT)
            return
        s._go(s._heartbeat(entries), ss.HEARTBEAT)

    # --- a worker's life ---

    def ForkWorkerEnter(self, e: am.Event) -> bool:
        """With a pool entry (from normalisation), or below `max` (a manual fork)."""
        s = self.s
        args = get_args(e, WorkerRef)
        if args is None:
            return len(s.pool.entries) < s.pool.config.max and not s._stopping
        entry = s.pool.entries.get(args.key)
        return entry is not None and not entry.forking and not entry.killing

    def ForkWorkerState(self, e: am.Event) -> None:
        """Open a bootstrap for the worker (in a task), then `ForkingWorker`."""
        s = self.s
        entry = self._entry(e)
        if entry is None:
            used = {x.slot for x in s.pool.entries.values()}
            slot = next(i for i in range(s.pool.config.max) if i not in used)
            entry = s.pool.new_entry(slot)
        entry.forking = True
        s._go(s._spawn(entry), entry=entry)
        s.mach.remove(ss.FORK_WORKER)

    def ForkingWorkerEnter(self, e: am.Event) -> bool:
        """The entry's bootstrap listens and nothing was spawned yet."""
        entry = self._entry(e)
        return (entry is not None and bool(entry.boot_addr) and entry.handle is None
                and not entry.killing)

    def ForkingWorkerState(self, e: am.Event) -> None:
        """Spawn the worker (in a task)."""
        s = self.s
        entry = self._entry(e)
        assert entry is not None
        s._go(s._exec(entry), entry=entry)
        s.mach.remove(ss.FORKING_WORKER)

    def WorkerConnectedEnter(self, e: am.Event) -> bool:
        """A report from the bootstrap of a live entry."""
        args = get_args(e, WorkerAddrArgs)
        if args is None:
            return False
        entry = self.s.pool.entries.get(args.key)
        return entry is not None and entry.rpc is None and not entry.killing

    def WorkerConnectedState(self, e: am.Event) -> None:
        """Dial the worker's local port (in a task)."""
        s = self.s
        args = get_args(e, WorkerAddrArgs)
        assert args is not None
        entry = s.pool.entries[args.key]
        entry.id = args.id
        entry.local_addr = args.local_addr
        entry.public_addr = args.public_addr
        if entry.pid is not None and args.pid and args.pid != entry.pid:
            s.mach.log("worker %s reports pid %d, spawned pid %d", args.id, args.pid, entry.pid)
        s._go(s._link(entry), entry=entry)
        s.mach.remove(ss.WORKER_CONNECTED)

    def WorkerForkedEnter(self, e: am.Event) -> bool:
        """The link to the worker is up."""
        entry = self._entry(e)
        return entry is not None and entry.linked and not entry.killing

    def WorkerForkedState(self, e: am.Event) -> None:
        """The worker joins the pool; its bootstrap goes."""
        s = self.s
        entry = self._entry(e)
        assert entry is not None
        entry.was_ready = True
        entry.ready_at = s.pool.clock()
        boot, entry.bootstrap = entry.bootstrap, None
        if boot is not None:
            s._go(boot.stop())
        s.mach.add(ss.WORKER_READY, {ARG: WorkerRef(entry.key)})
        s._update_status()
        s._normalize()
        s.mach.remove(ss.WORKER_FORKED)

    def WorkerReadyState(self, e: am.Event) -> None:
        """An event: self-removing."""
        self.s.mach.remove(ss.WORKER_READY)

    def KillWorkerEnter(self, e: am.Event) -> bool:
        """A known worker."""
        return self._entry(e) is not None

    def KillWorkerState(self, e: am.Event) -> None:
        """Kill (and replace) one worker on request."""
        s = self.s
        entry = self._entry(e)
        args = get_args(e, WorkerRef)
        assert entry is not None and args is not None
        entry.deliberate = True
        s.mach.add(ss.KILLING_WORKER, {ARG: WorkerRef(entry.key, args.reason or "requested")})
        s.mach.remove(ss.KILL_WORKER)

    def KillingWorkerEnter(self, e: am.Event) -> bool:
        """A known worker not being killed already."""
        entry = self._entry(e)
        return entry is not None and not entry.killing and not entry.gone

    def KillingWorkerState(self, e: am.Event) -> None:
        """SIGTERM, then SIGKILL after the grace (in a task); `WorkerKilled` follows its exit."""
        s = self.s
        entry = self._entry(e)
        args = get_args(e, WorkerRef)
        assert entry is not None and args is not None
        entry.killing = args.reason or "killed"
        s.mach.log("killing %s (pid %s): %s", entry.id or entry.key, entry.pid, entry.killing)
        if entry.handle is not None:
            s._go(s._terminate(entry))
        elif not entry.spawning:
            entry.gone = True
            s.mach.add(ss.WORKER_KILLED, {ARG: WorkerRef(entry.key, entry.killing)})
        s._update_status()
        s.mach.remove(ss.KILLING_WORKER)

    def WorkerKilledEnter(self, e: am.Event) -> bool:
        """A known worker."""
        return self._entry(e) is not None

    def WorkerKilledState(self, e: am.Event) -> None:
        """Free the slot (B11, B12), tell the lease holder, normalise again."""
        s = self.s
        args = get_args(e, WorkerRef)
        assert args is not None
        entry = s.pool.remove(args.key)
        assert entry is not None
        s._close_links(entry)
        if entry.lease is not None:
            origin = s.leases.conns.get(entry.lease[0])
            if origin is not None:
                s._go(s.leases.send(origin, "WorkerGone", WorkerGone(entry.id, args.reason)))
        s.mach.log("worker %s gone: %s", entry.id or entry.key, args.reason)
        if not entry.deliberate:
            s._pool_failed(entry.last_error or f"worker {entry.id or entry.key} {args.reason}")
        s._update_status()
        s._normalize()
        s.mach.remove(ss.WORKER_KILLED)

    # --- errors ---

    def ErrWorkerState(self, e: am.Event) -> None:
        """Count the error against the worker (kill it over budget); an event."""
        s = self.s
        exc = e.args.get(am.ARG_EXCEPTION)
        err = exc.err if exc is not None else None
        args = get_args(e, WorkerRef)
        s.last_worker_error = str(err) if err is not None else ""
        s.mach.log("worker error: %s", err)
        log.warning("%s: %s", s.mach.id, err)
        entry = s.pool.entries.get(args.key) if args is not None else None
        if entry is not None and err is not None:
            entry.last_error = str(err)
        if entry is not None and args is not None and args.reason != "exited" \
                and not entry.killing and not entry.gone:
            count = entry.errors.add()
            if entry.errors.over_budget:
                s.mach.add(ss.KILLING_WORKER, {ARG: WorkerRef(
                    entry.key, f"{count} errors within {s.pool.error_policy.ttl:.0f}s")})
        s._clear_error(ss.ERR_WORKER)

    # --- clients ---

    def ClientConnectedState(self, e: am.Event) -> None:
        """An event: self-removing."""
        self.s.mach.remove(ss.CLIENT_CONNECTED)

    def ClientDisconnectedState(self, e: am.Event) -> None:
        """The connection's leases now live only while their clients are connected to their
        workers (B8: keyed by the connection); see `Leases.watch`."""
        s = self.s
        args = get_args(e, ClientConnArgs)
        if args is not None:
            s.leases.conns.pop(args.conn_id, None)
            s.leases.detach(args.conn_id)
        s.mach.remove(ss.CLIENT_DISCONNECTED)

    def ReturnWorkerEnter(self, e: am.Event) -> bool:
        """From a client connection, for a lease held here."""
        s = self.s
        args = get_args(e, ReturnWorkerArgs)
        if s.guard.origin(e.mutation) is None or args is None \
                or not isinstance(args.worker_client_id, str) \
                or not isinstance(args.recycle, bool):
            return False
        return s.leases.find(args.worker_client_id) is not None

    def ReturnWorkerState(self, e: am.Event) -> None:
        """End the lease now (reset to `Idle`, or recycle)."""
        s = self.s
        args = get_args(e, ReturnWorkerArgs)
        assert args is not None
        s.leases.give_back(args)
        s.mach.remove(ss.RETURN_WORKER)

    def ListWorkersEnter(self, e: am.Event) -> bool:
        """From a remote peer (local code calls `workers()` / `status()`)."""
        args = e.args.get(ARG) if e.args else None
        return self.s.guard.origin(e.mutation) is not None and (
            args is None or (isinstance(args, ListWorkersArgs)
                             and isinstance(args.request, int)))

    def ListWorkersState(self, e: am.Event) -> None:
        """Answer with a `ListWorkers` payload (a `PoolStatus`, without client secrets)."""
        s = self.s
        origin = s.guard.origin(e.mutation)
        assert origin is not None
        args = get_args(e, ListWorkersArgs)
        status = s.status(redacted=True)
        status.request = args.request if args is not None else 0
        s._go(s.leases.send(origin, PAYLOAD_LIST, status))
        s.mach.remove(ss.LIST_WORKERS)

    def RotateLogsEnter(self, e: am.Event) -> bool:
        """Only with a log directory."""
        return self.s.logs is not None

    def RotateLogsState(self, e: am.Event) -> None:
        """Rotate every worker log file (in a task)."""
        s = self.s
        s._go(s._rotate_logs())
        s.mach.remove(ss.ROTATE_LOGS)

    def SuperConnectedEnter(self, e: am.Event) -> bool:
        """A peer of the group, on the control port, with a valid proof."""
        s = self.s
        why = s.peers.check_hello(s.guard.origin(e.mutation), get_args(e, PeerHello))
        if why:
            s.peers.refusals.append(why)
            s.mach.log("[access] peer refused: %s", why)
            log.warning("%s: peer refused: %s", s.mach.id, why)
            return False
        return True

    def SuperConnectedState(self, e: am.Event) -> None:
        """It gets our summary from now on; an event."""
        s = self.s
        origin = s.guard.origin(e.mutation)
        args = get_args(e, PeerHello)
        assert origin is not None and args is not None
        s.peers.connected(origin, args)
        s.mach.remove(ss.SUPER_CONNECTED)

    def SuperDisconnectedState(self, e: am.Event) -> None:
        """An event: self-removing."""
        self.s.mach.remove(ss.SUPER_DISCONNECTED)

    def AdoptWorkerState(self, e: am.Event) -> None:
        """An event (the adoption runs in a task of `Peers`): self-removing."""
        self.s.mach.remove(ss.ADOPT_WORKER)

    def ProvideWorkerEnter(self, e: am.Event) -> bool:
        """From a client connection, with a valid client id."""
        s = self.s
        origin = s.guard.origin(e.mutation)
        args = get_args(e, ProvideWorkerArgs)
        if origin is None or origin.server is None:
            s.mach.log("ProvideWorker refused: not from a client connection")
            return False
        if (args is None or not isinstance(args.worker_client_id, str)
                or not 0 < len(args.worker_client_id) <= _MAX_ID
                or not isinstance(args.request, int)):
            s.mach.log("ProvideWorker refused: invalid args")
            return False
        return True

    def ProvideWorkerState(self, e: am.Event) -> None:
        """Lease a worker, or refuse with a reason (B1-B4)."""
        s = self.s
        origin = s.guard.origin(e.mutation)
        args = get_args(e, ProvideWorkerArgs)
        assert origin is not None and args is not None
        s.leases.provide(origin, args)
        s.mach.remove(ss.PROVIDE_WORKER)

    def HealthcheckState(self, e: am.Event) -> None:
        """Alive: self-removing."""
        self.s.mach.remove(ss.HEALTHCHECK)


__all__ = ["CLIENT_POLICY", "PEER_POLICY", "TAG_SUPERVISOR", "Supervisor", "describe_exit"]
