"""The node client: connects to a supervisor, leases one worker and talks to it directly.

`start(addrs)` walks the supervisors as a ring (`SupervisorRing`: a random start, or the first
with `rotation="ordered"`) and stops at the first that answers (`SuperReady`); an address that
fails is blacklisted for `timeouts.blacklist` seconds; when none answers, it says so
(`ErrSupervisor`) and walks the ring again with backoff. The client moves on to the next
supervisor whenever it loses its supervisor (after `timeouts.super_reconnect`), and when the
supervisor refuses a worker or does not answer `ProvideWorker` in time; its worker link is kept
meanwhile (the lease lives on, see docs/node.md).

`req_worker()` asks the supervisor for a worker (`WorkerRequested` -> remote `ProvideWorker`),
gets a `ProvideWorker` payload back (a lease with the worker's address, or a refusal with a
reason), connects to the worker (`WorkerReady`) and returns the worker's mirror.
Payloads from the worker arrive on `client.mach` as `ServerPayload` (args `name`, `data`,
`source`, `payload`). `work(args)` does the common request/response in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Sequence
from typing import Any

import amnode.machine as am
from amnode.machine.schema import SchemaLike
from amnode.rpc import Client as RpcClient
from amnode.rpc import NetworkMachine, Payload
from amnode.rpc.retry import CONN_RETRY
from amnode.states import node as ss

from . import debug
from .args import ARG, LeaseRefused, ProvideWorkerArgs, ReturnWorkerArgs, WorkerGone, WorkerLease
from .config import DEFAULT_TIMEOUT, NodeTimeouts, adopt, resolve_handler_timeout
from .errors import (
    NodeError,
    SupervisorUnavailableError,
    WorkerRequestTimeout,
    WorkerUnavailableError,
)
from .links import pipe, pipe_err
from .naming import client_name, super_client_id, worker_client_id
from .rotation import Clock, SupervisorRing
from .worker import check_worker_schema

log = logging.getLogger("amnode.node")

TAG_CLIENT = "node-client"

#: payload names the supervisor sends
PAYLOAD_PROVIDE_WORKER = ss.PROVIDE_WORKER
PAYLOAD_WORKER_GONE = "WorkerGone"

_LINK_STATES = ("Connecting", "Connected", "Disconnecting", "Disconnected", "Ready")


def client_names(schema: SchemaLike, names: Sequence[str] | None = None) -> list[str]:
    """The client's state order: the node client states first, then the user's."""
    if names is not None:
        return list(names)
    return [*ss.CLIENT_STATES, *(n for n in schema if n not in ss.CLIENT_STATES)]


class Client:
    """A node client (Go NewClient): `await c.start([addr])`, `await c.req_worker()`.

    `schema` (default `ssnode.ClientSchema`) may extend the node client schema with the user's
    states; `handlers` are bound after the node's own.
    """

    def __init__(self, id: str, kind: str, worker_schema: SchemaLike, *,
                 schema: SchemaLike | None = None, names: Sequence[str] | None = None,
                 handlers: object | None = None, timeouts: NodeTimeouts | None = None,
                 parent: am.Machine | str | None = None, tags: Sequence[str] = (),
                 name: str | None = None, log_level: am.LogLevel | int | None = None,
                 handler_timeout: float | None = DEFAULT_TIMEOUT, rotation: str = "random",
                 clock: Clock = time.monotonic, rng: random.Random | None = None) -> None:
        if not id or not kind:
            raise ValueError("a client needs an id and a worker kind")
        debug.enable_flight_recorder()
        check_worker_schema(worker_schema, "the client's worker schema")
        schema = dict(schema) if schema is not None else dict(ss.ClientSchema)
        missing = ss.missing_states(schema, ss.CLIENT_STATES)
        if missing:
            raise am.SchemaError(f"client schema lacks the node client states "
                                 f"{', '.join(missing)}; extend ssnode.ClientSchema")
        self.kind = kind
        self.worker_schema = dict(worker_schema)
        self.timeouts = (timeouts or NodeTimeouts()).resolve()
        self.name = name or client_name(kind, id)
        self.log_level = log_level
        # the id the worker admits is a capability: unguessable for other local processes
        self._worker_link_id = worker_client_id(self.name, secrets.token_hex(8))
        #: the id the worker sees in the handshake (the only one its lease admits)
        self.worker_rpc_id = "rc-" + self._worker_link_id
        self.mach = am.Machine(schema, id="nc-" + self.name, parent=parent,
                               tags=[TAG_CLIENT, f"kind:{kind}", *tags], log_level=log_level,
                               handler_timeout=resolve_handler_timeout(handler_timeout))
        self.mach.verify_states(client_names(schema, names))
        #: the aRPC client to the supervisor (its mirror: `supervisor`)
        self.super_rpc: RpcClient | None = None
        #: the aRPC client to the leased worker (its mirror: `worker`)
        self.worker_rpc: RpcClient | None = None
        #: the current lease (None without a worker)
        self.lease: WorkerLease | None = None
        self.addrs: list[str] = []
        #: "random" (start anywhere in the ring) or "ordered" (start at the first address)
        self.rotation = rotation
        self._clock = clock
        self._rng = rng
        #: the supervisor ring (set by `start`)
        self.ring: SupervisorRing | None = None
        self._lost: asyncio.Event | None = None
        self._req_seq = 0
        self._pending: tuple[int, asyncio.Future[Any]] | None = None
        self._req_lock: asyncio.Lock | None = None
        self._work_lock: asyncio.Lock | None = None
        self._work: tuple[asyncio.Future[Payload], str | None] | None = None
        self._stopping = False
        self.mach.bind_handlers(_ClientHandlers(self), id="node-client")
        if handlers is not None:
            self.mach.bind_handlers(handlers)

    # --- public API ---

    @property
    def supervisor(self) -> NetworkMachine | None:
        """The supervisor's mirror (None before the first connection)."""
        return self.super_rpc.netmach if self.super_rpc is not None else None

    @property
    def worker(self) -> NetworkMachine | None:
        """The leased worker's mirror, while `WorkerReady`."""
        rpc = self.worker_rpc
        if rpc is None or not self.mach.is_active(ss.WORKER_READY):
            return None
        return rpc.netmach

    async def start(self, addrs: Sequence[str]) -> None:
        """Connect to the first supervisor of `addrs` that answers (`SuperReady` on `mach`)."""
        if isinstance(addrs, str) or not addrs or not all(
                isinstance(a, str) and a for a in addrs):
            raise ValueError("start() needs a non-empty list of supervisor addresses")
        self._stopping = False
        self.addrs = list(addrs)
        self.ring = SupervisorRing(self.addrs, self.rotation, self.timeouts.blacklist,
                                   self._clock, self._rng)
        if self.mach.add(ss.START, {"addrs": list(addrs)}) == am.CANCELED:
            raise NodeError(f"{self.mach.id}: Start canceled")
        await asyncio.sleep(0)

    async def req_worker(self, timeout: float | None = None) -> NetworkMachine:
        """Lease a worker and connect to it; returns its mirror once `WorkerReady`.

        Asks again (with backoff) while the supervisor has no idle worker. Raises
        `WorkerUnavailableError` on a final refusal (e.g. `max_client_workers`) and
        `WorkerRequestTimeout` when `timeout` (default `timeouts.req_worker`) runs out.
        """
        current = self.worker
        if current is not None:
            return current
        if self._req_lock is None:
            self._req_lock = asyncio.Lock()
        async with self._req_lock:
            return await self._req_worker(timeout)

    async def work(self, args: dict[str, Any] | None = None, *, timeout: float | None = None,
                   name: str | None = None) -> Payload:
        """Lease a worker if needed, add `WorkRequested` with `args` there, and return the
        worker's next payload (named `name`, if given). One request at a time per client."""
        if self._work_lock is None:
            self._work_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        budget = timeout if timeout is not None else self.timeouts.req_worker
        deadline = loop.time() + budget
        async with self._work_lock:
            worker = await self.req_worker(max(0.0, deadline - loop.time()))
            fut: asyncio.Future[Payload] = loop.create_future()
            self._work = (fut, name)
            try:
                before = worker.tick(ss.WORK_REQUESTED)
                res = await worker.add(ss.WORK_REQUESTED, args)
                if res == am.CANCELED:
                    raise NodeError(f"worker {worker.remote_id} did not accept WorkRequested")
                if worker.tick(ss.WORK_REQUESTED) == before:
                    # the reply carries the worker's clock: WorkRequested was still active
                    raise NodeError(
                        f"worker {worker.remote_id} still shows WorkRequested from the previous "
                        "job, so this one never started: a worker must leave WorkRequested "
                        "once a job is done (e.g. by adding WorkReady)")
                try:
                    async with asyncio.timeout_at(deadline):
                        return await fut
                except TimeoutError:
                    raise WorkerRequestTimeout(
                        f"no payload from worker {worker.remote_id} within {budget}s") from None
            finally:
                self._work = None

    async def return_worker(self, recycle: bool = False) -> bool:
        """Give the leased worker back (`ReturnWorker`): the link to it closes, the supervisor
        resets it to `Idle` (or replaces it by a fresh process with `recycle`). False if the
        current supervisor does not hold the lease (it then expires by itself)."""
        lease = self.lease
        if lease is None:
            return False
        self._drop_worker("returned to the supervisor")
        sup = self.supervisor
        if sup is None or not self.mach.is_active(ss.SUPER_READY):
            return False
        try:
            res = await asyncio.wait_for(sup.add(ss.RETURN_WORKER, {ARG: ReturnWorkerArgs(
                self.worker_rpc_id, recycle)}), self.timeouts.delivery)
        except Exception as err:
            self.mach.log("ReturnWorker failed: %s", err)
            return False
        return res == am.EXECUTED

    def move_on(self, why: str, blacklist: bool = False) -> bool:
        """Leave the current supervisor for the next one of the ring (when another one is
        available); with `blacklist`, skip this one for `timeouts.blacklist` seconds."""
        ring = self.ring
        rpc = self.super_rpc
        lost = self._lost
        if ring is None or rpc is None or lost is None:
            return False
        if blacklist:
            ring.blacklist(rpc.addr)
        if not ring.available(but=rpc.addr):
            return False
        self.mach.log("moving on from supervisor %s: %s", rpc.addr, why)
        lost.set()
        return True

    async def stop(self, dispose: bool = True) -> None:
        """Return the worker, leave the supervisor, stop, dispose."""
        if self.lease is not None and not self._stopping:
            with contextlib.suppress(Exception):
                await self.return_worker()
        self._stopping = True
        self._fail_waiters(NodeError(f"{self.mach.id} stopped"))
        for rpc in (self.worker_rpc, self.super_rpc):
            if rpc is not None and not rpc.mach.is_disposed:
                with contextlib.suppress(Exception):
                    await rpc.stop(dispose=True)
        if not self.mach.is_disposed:
            self.mach.remove(ss.START)
            if dispose:
                self.mach.dispose()

    def __repr__(self) -> str:
        return f"Client({self.mach.id} {self.mach})"

    # --- internals ---

    def _fail_waiters(self, err: BaseException) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending[1].done():
            pending[1].set_exception(err)
        work = self._work
        if work is not None and not work[0].done():
            work[0].set_exception(err)

    def _resolve(self, request: int, outcome: Any) -> None:
        pending = self._pending
        if pending is not None and pending[0] == request and not pending[1].done():
            pending[1].set_result(outcome)

    def _pipe_link(self, rpc: RpcClient, prefix: str) -> None:
        """An aRPC client's connection states -> `<prefix>Connecting` ... `<prefix>Ready`."""
        for state in _LINK_STATES:
            pipe(rpc.mach, self.mach, state, prefix + state)

    async def _req_worker(self, timeout: float | None) -> NetworkMachine:
        loop = asyncio.get_running_loop()
        mach = self.mach
        budget = timeout if timeout is not None else self.timeouts.req_worker
        deadline = loop.time() + budget

        def left() -> float:
            return max(0.0, deadline - loop.time())

        if not mach.is_active(ss.START):
            raise NodeError(f"{mach.id}: not started")
        try:
            await mach.when(ss.SUPER_READY, timeout=left())
        except TimeoutError:
            raise WorkerRequestTimeout(f"{mach.id}: no supervisor connection within "
                                       f"{budget}s") from None
        backoff = self.timeouts.req_retry.backoff()
        reason = ""
        while True:
            self._req_seq += 1
            req = self._req_seq
            fut: asyncio.Future[Any] = loop.create_future()
            self._pending = (req, fut)
            if mach.is_active(ss.WORKER_REQUESTED):
                mach.remove(ss.WORKER_REQUESTED)
            if mach.add(ss.WORKER_REQUESTED, {"request": req}) == am.CANCELED:
                outcome: Any = LeaseRefused("not connected to a supervisor", True, req)
            else:
                try:
                    outcome = await asyncio.wait_for(asyncio.shield(fut),
                                                     min(left(), self.timeouts.provide))
                except TimeoutError:
                    mach.remove(ss.WORKER_REQUESTED)
                    if left() > 0 and self.move_on("no answer to ProvideWorker", True):
                        reason = "a supervisor did not answer"
                        with contextlib.suppress(TimeoutError):
                            await self._next_supervisor(left())
                        continue
                    raise WorkerRequestTimeout(
                        f"{mach.id}: no worker within {budget}s"
                        + (f" (last refusal: {reason})" if reason else ""), reason) from None
                finally:
                    self._pending = None
            if isinstance(outcome, WorkerLease):
                break
            if isinstance(outcome, BaseException):
                mach.remove(ss.WORKER_REQUESTED)
                raise outcome
            assert isinstance(outcome, LeaseRefused)
            mach.remove(ss.WORKER_REQUESTED)
            reason = outcome.reason
            if not outcome.retry:
                raise WorkerUnavailableError(f"{mach.id}: the supervisor refused: {reason}",
                                             reason)
            if self.move_on(f"refused: {reason}"):
                with contextlib.suppress(TimeoutError):
                    await self._next_supervisor(left())
                continue
            delay = backoff.next_delay() or 0.0
            if left() <= delay:
                raise WorkerRequestTimeout(
                    f"{mach.id}: no worker within {budget}s (last refusal: {reason})", reason)
            await asyncio.sleep(delay)
            with contextlib.suppress(TimeoutError):
                await mach.when(ss.SUPER_READY, timeout=left())
        try:
            await mach.when(ss.WORKER_READY, timeout=left())
        except TimeoutError:
            raise WorkerRequestTimeout(f"{mach.id}: the worker link was not ready within "
                                       f"{budget}s") from None
        worker = self.worker
        if worker is None:
            raise WorkerUnavailableError(f"{mach.id}: the worker link went away")
        return worker

    async def _next_supervisor(self, timeout: float) -> None:
        """Wait until the current link is replaced (or gone) and a supervisor is ready."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while self._lost is not None and self._lost.is_set() and loop.time() < until:
            await asyncio.sleep(0.01)
        await self.mach.when(ss.SUPER_READY, timeout=max(0.0, until - loop.time()))

    async def _connect_super(self) -> None:
        """Walk the supervisor ring until one answers, stay while it lasts, then move on to
        the next one (bound to `Start`; B14)."""
        ring = self.ring
        assert ring is not None
        backoff = self.timeouts.super_retry.backoff(self._clock)
        errors: list[str] = []
        while True:
            addr = ring.next()
            err = await self._try_super(addr)
            if err is None:
                backoff.reset()
                errors = []
                await self._stay()
                continue
            ring.blacklist(addr)
            errors.append(f"{addr} ({err})")
            if len(errors) < len(ring.addrs) and ring.available():
                continue
            self.mach.add_err_state(ss.ERR_SUPERVISOR, SupervisorUnavailableError(
                "no supervisor answered: " + ", ".join(errors)))
            errors = []
            delay = backoff.next_delay()
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def _stay(self) -> None:
        """Keep the current supervisor until it is lost or the client moves on; then close
        the link (the worker link stays)."""
        lost = self._lost = asyncio.Event()
        rpc = self.super_rpc
        try:
            await lost.wait()
        finally:
            self.super_rpc = None
            if rpc is not None and not rpc.mach.is_disposed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(rpc.stop(dispose=True), self.timeouts.connect)
                if not rpc.mach.is_disposed:
                    rpc.dispose()
            self._lost = None

    async def _try_super(self, addr: str) -> str | None:
        """One supervisor: None once connected, else why not."""
        t = self.timeouts
        rpc = RpcClient(addr, id=super_client_id(self.name), schema=ss.SupervisorSchema,
                        consumer=self.mach, parent=self.mach, conn_timeout=t.connect,
                        conn_retry=CONN_RETRY.with_(timeout=0.0), log_level=self.log_level)
        self.super_rpc = rpc
        adopt(rpc.mach, self.mach)
        self._pipe_link(rpc, "Super")
        await rpc.start()
        if rpc.netmach is not None:
            adopt(rpc.netmach, self.mach)
        if await _ready_or_gone(rpc, t.connect):
            # connected: reconnect briefly when lost, then move on; report its errors
            rpc.conn_retry = t.super_reconnect
            pipe_err(rpc.mach, self.mach, ss.ERR_SUPERVISOR)
            rpc.mach.bind_handlers(_SuperWatch(self), id="node-super")
            self.mach.log("connected to supervisor %s", addr)
            return None
        why = str(rpc.mach.err) if rpc.mach.err is not None else f"no answer in {t.connect}s"
        self.super_rpc = None
        with contextlib.suppress(Exception):
            await rpc.stop(dispose=True)
        return why

    async def _ask(self, request: int) -> None:
        """Remote `ProvideWorker` (bound to `WorkerRequested`); the answer is a payload."""
        nm = self.supervisor
        res: int = am.CANCELED
        if nm is not None:
            res = await nm.add(ss.PROVIDE_WORKER,
                               {ARG: ProvideWorkerArgs(self.worker_rpc_id, request)})
        if res != am.EXECUTED:
            self._resolve(request, LeaseRefused(
                "the supervisor did not accept ProvideWorker", True, request))

    async def _connect_worker(self, lease: WorkerLease) -> None:
        """Dial the leased worker (bound to `Start`); `WorkerReady` when its handshake is done."""
        t = self.timeouts
        old, self.worker_rpc = self.worker_rpc, None
        if old is not None and not old.mach.is_disposed:
            with contextlib.suppress(Exception):
                await old.stop(dispose=True)
        rpc = RpcClient(lease.public_addr, id=self._worker_link_id,
                        schema=self.worker_schema, consumer=self.mach, parent=self.mach,
                        conn_timeout=t.connect, conn_retry=CONN_RETRY.with_(
                            max_tries=10, first_delay=0.2, factor=2.0, max_delay=2.0,
                            timeout=t.connect * 6),
                        log_level=self.log_level)
        self.worker_rpc = rpc
        self._pipe_link(rpc, "Worker")
        pipe_err(rpc.mach, self.mach, ss.ERR_WORKER)
        rpc.mach.bind_handlers(_WorkerWatch(self, rpc), id="node-worker-link")
        adopt(rpc.mach, self.mach)
        await rpc.start()
        if rpc.netmach is not None:
            adopt(rpc.netmach, self.mach)
        if await _ready_or_gone(rpc, t.connect):
            self._resolve(lease.request, lease)
            return
        why = rpc.mach.err or "no answer"
        self.mach.add_err_state(ss.ERR_WORKER, NodeError(
            f"cannot connect to worker {lease.worker_id} at {lease.public_addr}: {why}"))
        self._resolve(lease.request, WorkerUnavailableError(
            f"cannot connect to the leased worker at {lease.public_addr}: {why}"))

    def _drop_worker(self, why: str) -> None:
        """The lease is over: close the worker link (`WorkerReady` ends)."""
        self.lease = None
        rpc, self.worker_rpc = self.worker_rpc, None
        err = WorkerUnavailableError(why)
        work = self._work
        if work is not None and not work[0].done():
            work[0].set_exception(err)
        if rpc is not None and not rpc.mach.is_disposed:
            rpc.dispose()
        for state in (ss.WORKER_READY, ss.WORKER_CONNECTED, ss.WORKER_CONNECTING):
            if self.mach.is_active(state):
                self.mach.remove(state)
        self.mach.add(ss.WORKER_DISCONNECTED)


class _SuperWatch:
    """Bound on the supervisor link once connected."""

    def __init__(self, client: Client) -> None:
        self.c = client

    def ConnRetryFailedState(self, e: am.Event) -> None:
        """The supervisor stayed away: blacklist it and move on to the next one."""
        c = self.c
        if c._stopping or not c.mach.is_active(ss.START):
            return
        rpc = c.super_rpc
        if rpc is None or rpc.mach is not e.machine:
            return
        c.mach.log("lost the supervisor %s, moving on", rpc.addr)
        if c.ring is not None:
            c.ring.blacklist(rpc.addr)
        if c._lost is not None:
            c._lost.set()


class _WorkerWatch:
    """Bound on the worker link: it gave up reconnecting."""

    def __init__(self, client: Client, rpc: RpcClient) -> None:
        self.c = client
        self.rpc = rpc

    def ConnRetryFailedState(self, e: am.Event) -> None:
        c = self.c
        if c.worker_rpc is self.rpc and not c._stopping:
            c.mach.add_err_state(ss.ERR_WORKER, NodeError("lost the worker link"))
            asyncio.get_running_loop().call_soon(c._drop_worker, "lost the worker link")


class _ClientHandlers:
    """The node client's own handlers (bound before the user's)."""

    def __init__(self, client: Client) -> None:
        self.c = client

    def StartEnter(self, e: am.Event) -> bool:
        """Needs a non-empty address list."""
        addrs = e.args.get("addrs")
        return isinstance(addrs, list) and bool(addrs)

    def StartState(self, e: am.Event) -> None:
        """Connect to a supervisor (in a task bound to `Start`)."""
        self.c.mach.fork(self.c._connect_super(), ss.START)

    def StartEnd(self, e: am.Event) -> None:
        """Stopped without `stop()`: close the links."""
        c = self.c
        if not c._stopping:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(c.stop(dispose=False))

    def WorkerRequestedEnter(self, e: am.Event) -> bool:
        """Needs the request number (from `req_worker`)."""
        return isinstance(e.args.get("request"), int)

    def WorkerRequestedState(self, e: am.Event) -> None:
        """Ask the supervisor (in a task bound to `WorkerRequested`)."""
        self.c.mach.fork(self.c._ask(e.args["request"]), ss.WORKER_REQUESTED)

    def ServerPayloadEnter(self, e: am.Event) -> bool:
        """A payload: `data` and `source` are added to the args for every handler."""
        p = e.args.get("payload")
        if not isinstance(p, Payload):
            return False
        e.args["data"] = p.data
        e.args["source"] = p.source
        return True

    def ServerPayloadState(self, e: am.Event) -> None:
        """Leases and refusals from the supervisor; worker payloads for `work()`."""
        c = self.c
        p: Payload = e.args["payload"]
        sup = c.supervisor
        if sup is not None and p.source and p.source == sup.remote_id:
            if p.name == PAYLOAD_PROVIDE_WORKER:
                self._lease(p.data)
            elif p.name == PAYLOAD_WORKER_GONE and isinstance(p.data, WorkerGone):
                lease = c.lease
                if lease is not None and lease.worker_id == p.data.worker_id:
                    why = f"worker {p.data.worker_id} is gone: {p.data.reason}"
                    c.mach.add_err_state(ss.ERR_WORKER, NodeError(why))
                    c._drop_worker(why)
        else:
            work = c._work
            worker = c.worker_rpc.netmach if c.worker_rpc is not None else None
            if (work is not None and not work[0].done() and worker is not None
                    and p.source == worker.remote_id and work[1] in (None, p.name)):
                work[0].set_result(p)

    def _lease(self, data: Any) -> None:
        c = self.c
        pending = c._pending
        if isinstance(data, LeaseRefused):
            if pending is not None and pending[0] == data.request:
                c._resolve(data.request, data)
            return
        if not isinstance(data, WorkerLease) or not data.public_addr:
            c.mach.add_err_state(ss.ERR_SUPERVISOR, NodeError(
                f"invalid ProvideWorker payload: {data!r}"))
            return
        current = pending is not None and pending[0] == data.request \
            and c.mach.is_active(ss.WORKER_REQUESTED)
        if not current and c.lease is not None:
            c.mach.log("ignored a lease for request %d: a worker is leased", data.request)
            return
        # a late lease (its request timed out) is taken too: the supervisor holds it for this
        # client anyway, and the next req_worker() finds the worker ready
        c.lease = data
        c.mach.fork(c._connect_worker(data), ss.START)


async def _ready_or_gone(rpc: RpcClient, timeout: float) -> bool:
    """Wait until the link is `Ready` or has stopped (`Start` gone), at most `timeout`;
    True when it is ready."""
    ready = asyncio.ensure_future(rpc.mach.when(ss.READY))
    gone = asyncio.ensure_future(rpc.mach.when_not(ss.START))
    try:
        await asyncio.wait({ready, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in (ready, gone):
            w.cancel()
    return not rpc.mach.is_disposed and rpc.mach.is_active(ss.READY)


__all__ = ["PAYLOAD_PROVIDE_WORKER", "PAYLOAD_WORKER_GONE", "TAG_CLIENT", "Client",
           "client_names"]

