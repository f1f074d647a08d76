"""aRPC client: connects to a Server and keeps `netmach`, a live mirror of its source (Go Client).

The client's own machine (`client.mach`, see docs/arpc-protocol.md "Endpoint machines") drives
the lifecycle: `Start` -> `Connecting` -> `Connected` -> `Handshaking` -> `HandshakeDone` ->
`Ready` (auto). A connection
lost without `stop()` (including a server that stops or restarts) becomes `Disconnected` ->
`RetryingConn`, which reconnects as its `conn_retry` policy says. Mutations have a real timeout
and are retried (`call_retry`) with the same mutation id, so the server never executes one twice
(see docs/arpc-protocol.md "Timeouts, retries and mutation ids" for what that covers).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable
from time import time as _wall_time
from typing import Any

import amnode.machine as am
from amnode.machine.schema import SchemaLike
from amnode.states import CLIENT_STATES, ClientSchema
from amnode.states import rpc as ss

from .addr import parse_addr
from .clock import RemoteClock
from .connection import Connection
from .errors import (
    ConnectionLostError,
    NoAccessError,
    NotConnectedError,
    ProtocolViolation,
    RpcError,
    RpcTimeoutError,
)
from .frames import Codec
from .limits import CLIENT_LIMITS, Limits, client_frame_limit
from .netmach import PREFIX_NETMACH, TAG_NETMACH, NetworkMachine
from .protocol import (
    CLIENT_CALLS,
    CLIENT_NOTIFIES,
    Hello,
    Method,
    Payload,
    Welcome,
    mut_update_from_wire,
    mutation_resp_from_wire,
    mutation_to_wire,
    sync_resp_from_wire,
    update_from_wire,
)
from .retry import CALL_RETRY, CONN_RETRY, Backoff, RetryPolicy, legacy_policy
from .typed_args import ArgsRegistry

log = logging.getLogger("amnode.rpc")

TAG_RPC_CLIENT = "rpc-client"
PREFIX_CLIENT = "rc-"

_CANCELED = am.CANCELED
#: a deadline this close to the loop's clock counts as reached (the timer may fire a hair early)
_CLOCK_SLACK = 1e-6


_RESULTS = (am.Result.EXECUTED, am.Result.CANCELED)

#: `_Call.fail` value of a call's first attempts: a failure starts the retry loop
_START_RETRY: Callable[[], None] = lambda: None  # noqa: E731 (a marker, never called)


class _Call:
    """One mutation call across its attempts (same mutation id each time)."""

    __slots__ = ("attempt", "body", "fail", "fut", "method", "replied")

    def __init__(self, method: int, body: list[Any], fut: asyncio.Future[int]) -> None:
        self.method = method
        self.body = body
        self.fut = fut
        self.attempt = 0
        #: the last attempt that got its reply (or lost its connection): its deadline is off
        self.replied = 0
        #: what to do when the current attempt times out or loses its connection
        #: (`_START_RETRY`: start the retry loop; None: nothing)
        self.fail: Callable[[], None] | None = _START_RETRY

    def settled(self, attempt: int) -> bool:
        """True once `attempt` can no longer time out: answered, superseded, or call done."""
        return attempt != self.attempt or self.replied >= attempt or self.fut.done()


class _Attempt:
    """The reply callback of one attempt of a call: one small object, no closures."""

    __slots__ = ("call", "client", "n")

    def __init__(self, client: Client, call: _Call, n: int) -> None:
        self.client = client
        self.call = call
        self.n = n

    def __call__(self, err: RpcError | None, body: Any) -> None:
        call = self.call
        if call.replied < self.n:
            call.replied = self.n
        if err is None:
            self.client._on_mutation_reply(call, body)
        elif isinstance(err, ConnectionLostError):
            self.client._failed(call, self.n)
        elif isinstance(err, NoAccessError):
            # the server refused this mutation (`mutable_states`): the caller's error
            if not call.fut.done():
                call.fut.set_exception(err)
        elif not call.fut.done():
            self.client._add_err(err)
            call.fut.set_result(_CANCELED)


class Client:
    """Connects to `addr` and mirrors the server's source in `client.netmach`.

    `call_timeout` bounds one attempt of a mutation call and `call_retry` says how the call is
    retried after a timeout or a lost connection; `conn_timeout` bounds one dial and
    `conn_retry` how a lost connection is re-dialed. The older keywords (`call_retries`,
    `call_retry_delay`, `call_retry_backoff`, `call_retry_timeout` and their `conn_*` twins)
    still work and are applied on top of the policies (see `retry.legacy_policy`).
    """

    def __init__(self, addr: str, id: str | None = None, schema: SchemaLike | None = None,
                 consumer: am.Machine | None = None, *, no_schema: bool = False,
                 allowed_states: list[str] | None = None, skipped_states: list[str] | None = None,
                 sync_mutations: bool = False, parent: am.Machine | str | None = None,
                 registry: ArgsRegistry | None = None, max_frame: int | None = None,
                 limits: Limits = CLIENT_LIMITS, ping_interval: float = 5.0,
                 call_timeout: float = 3.0,
                 call_retry: RetryPolicy = CALL_RETRY, conn_timeout: float = 3.0,
                 conn_retry: RetryPolicy = CONN_RETRY, reconnect: bool = True,
                 log_level: am.LogLevel | int | None = None,
                 call_retries: int | None = None, call_retry_delay: float | None = None,
                 call_retry_backoff: float | None = None,
                 call_retry_timeout: float | None = None, conn_retries: int | None = None,
                 conn_retry_delay: float | None = None, conn_retry_backoff: float | None = None,
                 conn_retry_timeout: float | None = None) -> None:
        self.addr = addr
        self.id = id or secrets.token_hex(3)[:5]
        #: optional machine with `ServerPayload`, receiving the server's payloads
        self.consumer = consumer
        self.no_schema = no_schema
        self.allowed_states = allowed_states
        self.skipped_states = skipped_states
        self.sync_mutations = sync_mutations
        self.ping_interval = ping_interval
        #: seconds a call waits for its reply before it is retried
        self.call_timeout = call_timeout
        #: how a mutation call is retried (same mutation id) after a timeout or lost connection
        self.call_retry = legacy_policy(call_retry, tries=call_retries, delay=call_retry_delay,
                                        backoff=call_retry_backoff, timeout=call_retry_timeout)
        #: seconds one dial may take
        self.conn_timeout = conn_timeout
        #: how a lost connection is re-dialed (`RetryingConn`); exhausted: `ConnRetryFailed`
        self.conn_retry = legacy_policy(conn_retry, tries=conn_retries, delay=conn_retry_delay,
                                        backoff=conn_retry_backoff, timeout=conn_retry_timeout,
                                        zero_timeout_is_none=True)
        #: reconnect when the connection is lost without `stop()`
        self.reconnect = reconnect
        #: per-connection bounds on what the server sends (frame sizes, decoded values, ...)
        self.limits = limits.with_(max_frame=max_frame)
        lim = self.limits
        self.codec = Codec(registry, lim.max_frame, max_objects=lim.max_objects,
                           max_typed_depth=lim.max_typed_depth)
        #: requests and notifications sent (handshake included)
        self.call_count = 0
        #: the clock as received from the server (the mirror shows it once `HandshakeDone`)
        self.clock = RemoteClock()
        self._schema = None if no_schema or schema is None else dict(schema)
        self._parent = parent
        self._log_level = log_level
        self._conn: Connection | None = None
        self._nonce = secrets.randbits(31) | 1
        #: the session secret of the last Welcome, presented in the next Hello
        self._session = ""
        self._mid = 0
        self._live = False
        self._retrying = 0
        #: the reconnect run since the last `Connected` (None: the next loss starts a new one)
        self._conn_backoff: Backoff | None = None
        self._stopping = False
        self._sync_task: asyncio.Task[list[int] | None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: (deadline, call, attempt) of the attempts sent, in deadline order; one timer serves
        #: them all (see `_expire`)
        self._deadlines: deque[tuple[float, _Call, int]] = deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
        #: the mirror; created by `Start`, usable once `Ready`
        self.netmach: NetworkMachine | None = None

        self.mach = am.Machine(ClientSchema, id=PREFIX_CLIENT + self.id, parent=parent,
                               tags=[TAG_RPC_CLIENT, "addr:" + addr], log_level=log_level)
        self.mach.verify_states(CLIENT_STATES)
        self.mach.bind_handlers(_ClientHandlers(self), id="rpc-client")

    # --- public API ---

    @property
    def conn(self) -> Connection | None:
        """The current connection (None while disconnected)."""
        return self._conn

    async def start(self) -> None:
        """Start connecting; wait for `client.mach.when("Ready")` to use the mirror."""
        self._stopping = False
        self._conn_backoff = None
        self.mach.add([ss.START, ss.CONNECTING])
        await asyncio.sleep(0)

    async def stop(self, dispose: bool = False, timeout: float = 2.0) -> None:
        """Disconnect gracefully (Bye), stop reconnecting, optionally dispose both machines."""
        self._stopping = True
        mach = self.mach
        if not mach.is_disposed:
            if self._conn is not None and not self._conn.closed:
                mach.add(ss.DISCONNECTING)
                try:
                    await mach.when(ss.DISCONNECTED, timeout=timeout)
                except TimeoutError:
                    pass
            mach.remove(ss.START)
        if dispose:
            self.dispose()
        await asyncio.sleep(0)

    def dispose(self) -> None:
        """Dispose the client machine and the mirror (the connection is closed)."""
        self._stopping = True
        if self._conn is not None:
            self._conn.close("client disposed")
            self._conn = None
        for task in list(self._tasks):
            task.cancel()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._deadlines.clear()
        if self.netmach is not None:
            self.netmach.dispose()
        self.mach.dispose()

    async def sync(self) -> list[int] | None:
        """Fetch the full clock and reset the server's baseline; None when not connected."""
        conn = self._conn
        if conn is None or conn.closed or not self.mach.is_active(ss.HANDSHAKE_DONE):
            return None
        self.mach.add(ss.METRIC_SYNC)
        try:
            return await self._call_raw(conn, Method.SYNC, None, self._apply_sync)
        except RpcError as err:
            self._add_err(err)
            return None

    async def args(self) -> list[str]:
        """Names of the typed args registered on the server."""
        conn = self._conn
        if conn is None or conn.closed:
            raise NotConnectedError("not connected")
        res = await self._call_raw(conn, Method.ARGS, None)
        return [a for a in res if isinstance(a, str)] if isinstance(res, list) else []

    # --- calls ---

    def _call_raw(self, conn: Connection, method: int, body: Any,
                  apply: Callable[[Any], Any] | None = None,
                  timeout: float | None = None) -> asyncio.Future[Any]:
        """One request with a timeout; `apply(body)` runs inline, in wire order."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        timer: list[asyncio.TimerHandle | None] = [None]

        def on_reply(err: RpcError | None, resp: Any) -> None:
            if timer[0] is not None:
                timer[0].cancel()
            if err is not None:
                if not fut.done():
                    fut.set_exception(err)
                return
            # applied even when the caller timed out: e.g. a late Sync still resets the clock
            try:
                result = apply(resp) if apply is not None else resp
            except ProtocolViolation as exc:
                if not fut.done():
                    fut.set_exception(exc)
                raise
            if not fut.done():
                fut.set_result(result)

        conn.call(method, body, on_reply)
        self.call_count += 1
        limit = self.call_timeout if timeout is None else timeout

        def on_timeout() -> None:
            if not fut.done():
                fut.set_exception(RpcTimeoutError(f"{Method(method).name} timed out ({limit}s)"))

        timer[0] = loop.call_later(limit, on_timeout)
        return fut

    # --- MutationSender: what the mirror sends through ---

    def _ready_conn(self, method: int) -> Connection | None:
        """The connection to send a mutation on; None (logged) while not `Ready`."""
        conn = self._conn
        if conn is None or conn.closed or not self.mach.is_active(ss.READY):
            self.mach.log("%s canceled: not connected", Method(method).name)
            return None
        return conn

    def send_mutation(self, method: Method, states: list[int], args: dict[str, Any] | None,
                      event: am.Event | am.MutSource | None) -> asyncio.Future[int] | None:
        """Send Add/Remove/Set now (states as source indexes); a future with the source's
        Result after retries if needed, or None when not `Ready` (nothing sent)."""
        conn = self._ready_conn(method)
        if conn is None:
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._mid += 1
        body = mutation_to_wire(states, self._mid, args, self._event(event))
        self._attempt(_Call(method, body, fut), conn)
        return fut

    def _event(self, event: am.Event | am.MutSource | None) -> list[Any] | None:
        if isinstance(event, am.MutSource):
            return [event.mach_id, event.tx_id, event.mach_time]
        ev = event if event is not None else am.current_event.get()
        if ev is None:
            return None
        return [ev.machine.id, ev.transition.id, sum(ev.transition.time_before)]

    def _attempt(self, call: _Call, conn: Connection) -> None:
        """Send one attempt of `call`; a timeout or lost connection calls `call.fail`."""
        call.attempt += 1
        n = call.attempt
        conn.call(call.method, call.body, _Attempt(self, call, n))
        self.call_count += 1
        self._add_deadline(call, n)

    def _failed(self, call: _Call, attempt: int) -> None:
        """Attempt `attempt` of `call` timed out or lost its connection: retry (if it is the
        current one and the call is not done)."""
        if attempt != call.attempt or call.fut.done():
            return
        fail = call.fail
        if fail is _START_RETRY:
            self._start_retry(call)
        elif fail is not None:
            fail()

    # --- call deadlines: one timer for every attempt in flight ---

    def _add_deadline(self, call: _Call, attempt: int) -> None:
        """Attempt `attempt` of `call` times out `call_timeout` seconds from now.

        The queue is in deadline order (appended in order while `call_timeout` is unchanged);
        settled entries leave from its head as new ones come, so it holds about the attempts in
        flight. Its single timer is armed for the head only.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.call_timeout
        dq = self._deadlines
        entry = (deadline, call, attempt)
        if dq and deadline < dq[-1][0]:
            # `call_timeout` was shortened meanwhile: keep the queue ordered
            items = sorted([*dq, entry], key=lambda e: e[0])
            dq.clear()
            dq.extend(items)
        else:
            dq.append(entry)
        while dq and dq[0][1].settled(dq[0][2]):
            dq.popleft()
        timer = self._deadline_timer
        if dq and (timer is None or dq[0][0] < timer.when()):
            if timer is not None:
                timer.cancel()
            self._deadline_timer = loop.call_at(dq[0][0], self._expire)

    def _expire(self) -> None:
        """The deadline timer: every unsettled attempt past its deadline times out; the timer
        is armed again for the next deadline."""
        self._deadline_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + _CLOCK_SLACK
        dq = self._deadlines
        while dq:
            deadline, call, attempt = dq[0]
            settled = call.settled(attempt)
            if not settled and deadline > now:
                break
            dq.popleft()
            if not settled:
                self._timed_out(call, attempt)
        if dq and self._deadline_timer is None and not self.mach.is_disposed:
            self._deadline_timer = loop.call_at(dq[0][0], self._expire)

    def _timed_out(self, call: _Call, attempt: int) -> None:
        """No reply within `call_timeout`. The reply callback stays registered: a late reply
        is still applied in wire order."""
        self.mach.add_err_state(ss.ERR_NETWORK_TIMEOUT, RpcTimeoutError(
            f"{Method(call.method).name} got no reply in {self.call_timeout}s"))
        self._failed(call, attempt)

    def _on_mutation_reply(self, call: _Call, body: Any) -> None:
        """Apply the reply's clock diff before the caller resumes; resync on a mismatch."""
        res, update, muts = mutation_resp_from_wire(body)
        if res < 2:
            res = _RESULTS[res]
        ok = True
        if muts is not None:
            ok = self._apply_mut_updates(muts)
        elif update is not None:
            ok = self._apply_update(update_from_wire(update))
        fut = call.fut
        if ok:
            if not fut.done():
                fut.set_result(res)
            return
        sync = self._request_sync()
        if fut.done():
            return

        def resolve(_: Any) -> None:
            if not fut.done():
                fut.set_result(res)

        sync.add_done_callback(resolve)

    def _start_retry(self, call: _Call) -> None:
        call.fail = None
        task = asyncio.get_running_loop().create_task(self._retry(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, call: _Call) -> None:
        """Resend `call` (same mutation id) with backoff, waiting for `Ready` in between."""
        mach = self.mach
        loop = asyncio.get_running_loop()
        self._retrying += 1
        if self._retrying == 1 and mach.is_active(ss.START):
            mach.add(ss.RETRYING_CALL, {"method": Method(call.method).name,
                                        "started_at": _wall_time()})
        policy = self.call_retry
        backoff = policy.backoff()
        try:
            while (delay := backoff.next_delay()) is not None:
                await asyncio.sleep(delay)
                if call.fut.done():
                    return
                remaining = (None if policy.timeout is None
                             else policy.timeout - backoff.elapsed)
                if (self._stopping or (remaining is not None and remaining <= 0)
                        or not mach.is_active(ss.START)):
                    break
                if not mach.is_active(ss.READY):
                    try:
                        await mach.when(ss.READY, timeout=remaining)
                    except (TimeoutError, am.DisposedError):
                        break
                conn = self._conn
                if call.fut.done():
                    return
                if conn is None or conn.closed:
                    continue
                failed: asyncio.Future[None] = loop.create_future()
                call.fail = lambda f=failed: f.done() or f.set_result(None)
                self._attempt(call, conn)
                waits: set[asyncio.Future[Any]] = {failed, call.fut}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                call.fail = None
                if call.fut.done():
                    return
            if not call.fut.done():
                call.fut.set_result(_CANCELED)
                if not mach.is_disposed and mach.is_active(ss.START):
                    mach.add(ss.CALL_RETRY_FAILED, {"method": Method(call.method).name})
        finally:
            call.fail = None
            self._retrying -= 1
            if self._retrying == 0 and not mach.is_disposed:
                mach.remove(ss.RETRYING_CALL)

    def notify_mutation(self, method: Method, states: list[int], args: dict[str, Any] | None,
                        event: am.Event | am.MutSource | None) -> bool:
        """Send AddNS/RemoveNS/SetNS now (no reply); False when not `Ready` (nothing sent)."""
        conn = self._ready_conn(method)
        if conn is None:
            return False
        conn.notify(method, mutation_to_wire(states, 0, args, self._event(event)))
        self.call_count += 1
        return True

    # --- clocks ---

    def _apply_update(self, update: tuple[list[int], int, int, int, int],
                      mtype: am.MutationType = am.MutationType.SET,
                      called: list[int] | None = None) -> bool:
        clock = self.clock
        if not clock.apply(*update):
            log.info("%s: clock diff mismatch (base %d, local %d), resyncing", self.mach.id,
                     update[3], clock.version)
            return False
        if self._live and self.netmach is not None:
            self.netmach.apply_remote_time(clock.time, clock.queue_tick, clock.machine_tick, mtype,
                                     called)
        return True

    def _apply_mut_updates(self, muts: Any) -> bool:
        if type(muts) is not list:
            raise ProtocolViolation("mutation updates: expected a list")
        for item in muts:
            mtype, called, update = mut_update_from_wire(item)
            if not self._apply_update(update, am.MutationType(mtype), called):
                return False
        return True

    def _request_sync(self) -> asyncio.Future[Any]:
        task = self._sync_task
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self.sync())
            self._sync_task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return task

    def _apply_sync(self, body: Any) -> list[int]:
        time_, qt, mt, base = sync_resp_from_wire(body)
        if len(time_) != len(self.clock.time):
            raise ProtocolViolation("sync: wrong clock length")
        self.clock.set(time_, qt, mt, base)
        if self._live and self.netmach is not None:
            self.netmach.apply_remote_time(time_, qt, mt)
        return list(time_)

    def _on_welcome(self, body: Any) -> Welcome:
        """Adopt names, schema and clock from a Hello response or a SchemaChange."""
        w = Welcome.from_wire(body)
        nm = self.netmach
        assert nm is not None
        sync_schema = not self.no_schema
        if sync_schema and w.count != len(w.names):
            raise ProtocolViolation("welcome: state count differs from the names")
        schema: dict[str, am.State] | None = None
        if sync_schema:
            if w.schema is not None:
                schema = w.schema
                self._schema = dict(w.schema)
            elif nm.has_schema:
                schema = nm.schema
                if set(schema) - {am.EXCEPTION} != set(w.names) - {am.EXCEPTION}:
                    raise ProtocolViolation("welcome: schema missing")
            else:
                raise ProtocolViolation("welcome: schema missing")
        partial = bool(self.allowed_states is not None or self.skipped_states)
        nm.set_remote_states(w.names, schema, infer=partial and schema is not None,
                             mutable=w.mutable)
        if w.session:
            self._session = w.session
        nm.remote_id = w.source_id
        nm.tags = [t for t in nm.tags if not t.startswith("src-id:")] + ["src-id:" + w.source_id]
        self.clock.set(w.time, w.queue_tick, w.machine_tick, w.base)
        if self._conn is not None:
            self._conn.peer_heartbeat = min(w.heartbeat, self.limits.max_heartbeat)
        return w

    def _schema_hash(self) -> str:
        nm = self.netmach
        if self.no_schema or nm is None or not nm.has_schema:
            return ""
        schema = nm.schema
        return am.schema_hash(schema, sorted(schema))

    # --- connection ---

    def _new_connection(self) -> Connection:
        lim = self.limits
        return Connection(self.codec, name=self.mach.id, handler=self,
                          requests=CLIENT_CALLS, notifies=CLIENT_NOTIFIES,
                          ping_out=Method.PING, ping_in=Method.SERVER_PING,
                          ping_interval=self.ping_interval,
                          frame_limit=client_frame_limit(lim), frame_timeout=lim.frame_timeout,
                          check_above=lim.max_control_frame)

    # --- ConnHandler: the connection's frames, in wire order ---

    def on_request(self, conn: Connection, seq: int, method: int, body: Any) -> None:
        """A request from the server: a payload for the consumer."""
        if method == Method.SEND_PAYLOAD:
            payload = Payload.from_wire(body)
            self.mach.log("payload %s from %s", payload.name, payload.source)
            res = self.mach.add(ss.SERVER_PAYLOAD, {"name": payload.name, "payload": payload})
            if res == _CANCELED:
                conn.reply_error(seq, RpcError(f"payload {payload.name} not delivered"))
                return
            conn.reply(seq, None)

    def on_notify(self, conn: Connection, method: int, body: Any) -> None:
        """A notification from the server: clock pushes, schema changes, Bye, announcements."""
        if method == Method.SET_CLOCK:
            if not self._apply_update(update_from_wire(body)):
                self._request_sync()
        elif method == Method.SET_CLOCK_MANY:
            if not self._apply_mut_updates(body):
                self._request_sync()
        elif method == Method.SCHEMA_CHANGE:
            self._on_welcome(body)
            if self._live and self.netmach is not None:
                c = self.clock
                self.netmach.apply_remote_time(c.time, c.queue_tick, c.machine_tick)
        elif method == Method.SERVER_BYE:
            reason = body if isinstance(body, str) else ""
            self.mach.log("server said bye: %s", reason)
            conn.close(f"server said bye: {reason}")
        elif method == Method.SENDING_PAYLOAD:
            payload = Payload.from_wire(body)
            self.mach.add(ss.SERVER_DELIVERING, {"name": payload.name, "payload": payload})

    def on_closed(self, conn: Connection, reason: str, error: BaseException | None) -> None:
        """The connection closed: `Disconnected` (which may reconnect), errors recorded."""
        if conn is not self._conn:
            return
        self._conn = None
        mach = self.mach
        if mach.is_disposed:
            return
        mach.log("disconnected: %s", reason)
        if isinstance(error, RpcTimeoutError):
            mach.add_err_state(ss.ERR_NETWORK_TIMEOUT, error)
        elif isinstance(error, ProtocolViolation):
            mach.add_err_state(ss.ERR_RPC, error)
        if not mach.is_active(ss.DISCONNECTING):
            mach.add(ss.DISCONNECTED)

    async def _connect(self) -> None:
        mach = self.mach
        loop = asyncio.get_running_loop()
        try:
            host, port = parse_addr(self.addr)
            async with asyncio.timeout(self.conn_timeout):
                _, conn = await loop.create_connection(self._new_connection, host, port)
        except (OSError, TimeoutError, ValueError) as err:
            mach.add(ss.DISCONNECTED)
            mach.add_err_state(ss.ERR_NETWORK, err)
            return
        if not mach.is_active(ss.CONNECTING) or self._stopping:
            conn.close("connecting canceled")
            return
        self._conn = conn
        mach.add(ss.CONNECTED, {"addr": self.addr})

    async def _handshake(self) -> None:
        mach = self.mach
        conn = self._conn
        if conn is None or conn.closed:
            return
        hello = Hello(id=mach.id, sync_schema=not self.no_schema, schema_hash=self._schema_hash(),
                      sync_mutations=self.sync_mutations, allowed=self.allowed_states,
                      skipped=self.skipped_states, heartbeat=self.ping_interval,
                      nonce=self._nonce, session=self._session)
        try:
            welcome: Welcome = await self._call_raw(conn, Method.HELLO, hello.to_wire(),
                                                    self._on_welcome)
            await self._call_raw(conn, Method.HANDSHAKE, None)
        except ProtocolViolation:
            return  # the connection closes itself and reports ErrRpc
        except RpcError as err:
            log.warning("%s: handshake with %s failed: %s", mach.id, self.addr, err)
            self._add_err(err)
            conn.close(f"handshake failed: {err}")
            return
        if conn is self._conn and not conn.closed:
            mach.add(ss.HANDSHAKE_DONE, {"id": welcome.source_id})

    def _add_err(self, err: BaseException) -> None:
        mach = self.mach
        if mach.is_disposed:
            return
        if isinstance(err, RpcTimeoutError):
            mach.add_err_state(ss.ERR_NETWORK_TIMEOUT, err)
        elif isinstance(err, (ConnectionLostError, NotConnectedError)):
            mach.add_err_state(ss.ERR_NETWORK, err)
        else:
            mach.add_err_state(ss.ERR_RPC, err)

    async def _reconnect(self) -> None:
        """The RetryingConn loop: dial as `conn_retry` says until Connected, or give up."""
        mach = self.mach
        backoff = self._conn_backoff
        if backoff is None:
            backoff = self._conn_backoff = self.conn_retry.backoff()
        while (delay := backoff.next_delay()) is not None:
            await asyncio.sleep(delay)
            if self._stopping:
                return
            mach.add(ss.CONNECTING)
            try:
                await mach.when_not(ss.CONNECTING, timeout=self.conn_timeout * 2)
            except TimeoutError:
                pass
            if mach.is_active(ss.CONNECTED):
                return
            mach.remove(am.EXCEPTION)
        mach.remove(ss.RETRYING_CONN)
        mach.add(ss.CONN_RETRY_FAILED)

    def __repr__(self) -> str:
        return f"Client({self.mach.id} -> {self.addr})"


class _ClientHandlers:
    """State handlers of the client machine (docs/arpc-protocol.md "Endpoint machines")."""

    def __init__(self, client: Client) -> None:
        self.c = client

    def StartState(self, e: am.Event) -> None:
        """Create the mirror (with the local schema, if any) on the first start."""
        c = self.c
        if c.netmach is None or c.netmach.is_disposed:
            c.netmach = NetworkMachine(
                c, None if c.no_schema else c._schema, PREFIX_NETMACH + c.id,
                parent=c._parent if c._parent is not None else c.mach,
                tags=[TAG_NETMACH, "src-id:"], log_level=c._log_level)

    def StartEnd(self, e: am.Event) -> None:
        """Stopping: say goodbye and close the connection."""
        c = self.c
        conn = c._conn
        if conn is not None and not conn.closed:
            c._stopping = True
            try:
                conn.notify(Method.BYE, None)
            except RpcError:
                pass
            conn.close("client stopped")

    def ConnectingEnter(self, e: am.Event) -> bool:
        """Dialing needs an address."""
        return bool(self.c.addr)

    def ConnectingState(self, e: am.Event) -> None:
        """Dial in a task bound to `Connecting`."""
        self.c.mach.fork(self.c._connect(), ss.CONNECTING)

    def ConnectedState(self, e: am.Event) -> None:
        """A new connection resets the reconnect budget."""
        self.c._conn_backoff = None

    def HandshakingState(self, e: am.Event) -> None:
        """Hello + Handshake in a task bound to `Connected`."""
        self.c.mach.fork(self.c._handshake(), ss.CONNECTED)

    def HandshakeDoneEnter(self, e: am.Event) -> bool:
        """Requires the source id from the handshake."""
        return bool(e.args.get("id"))

    def HandshakeDoneState(self, e: am.Event) -> None:
        """Show the received clock on the mirror (one transition) and go live."""
        c = self.c
        c._live = True
        nm = c.netmach
        if nm is not None:
            clock = c.clock
            nm.apply_remote_time(clock.time, clock.queue_tick, clock.machine_tick)
            c.mach.log("connected to %s (t%d q%d)", nm.remote_id, sum(clock.time),
                       clock.queue_tick)

    def HandshakeDoneEnd(self, e: am.Event) -> None:
        """The mirror keeps its last clock but stops following."""
        self.c._live = False

    def DisconnectingState(self, e: am.Event) -> None:
        """Graceful close: Bye, close, `Disconnected`."""
        c = self.c
        conn, c._conn = c._conn, None
        if conn is not None and not conn.closed:
            try:
                conn.notify(Method.BYE, None)
            except RpcError:
                pass
            conn.close("client disconnecting")
        c.mach.add(ss.DISCONNECTED)

    def DisconnectedState(self, e: am.Event) -> None:
        """Forget the connection; reconnect unless the client asked to stop."""
        c = self.c
        conn, c._conn = c._conn, None
        if conn is not None and not conn.closed:
            conn.close("disconnected")
        before = e.transition.states_before
        was = ss.CONNECTED in before or ss.CONNECTING in before
        if (was and c.reconnect and not c._stopping and ss.DISCONNECTING not in before
                and c.mach.is_active(ss.START)):
            c.mach.add(ss.RETRYING_CONN)

    def RetryingConnState(self, e: am.Event) -> None:
        """Run the reconnect loop bound to `RetryingConn`."""
        self.c.mach.fork(self.c._reconnect(), ss.RETRYING_CONN)

    def RetryingCallEnter(self, e: am.Event) -> bool:
        """Only while connected or reconnecting."""
        return self.c.mach.any_active(ss.CONNECTED, ss.RETRYING_CONN, ss.CONNECTING,
                                      ss.DISCONNECTED)

    def CallRetryFailedState(self, e: am.Event) -> None:
        """An event: self-removing."""
        self.c.mach.remove(ss.CALL_RETRY_FAILED)

    def ExceptionState(self, e: am.Event) -> None:
        """Client errors are events: visible as ticks, removed at once."""
        # client errors are events: visible as ticks, never blocking
        c = self.c
        c.mach.log("error: %s", c.mach.err)
        c.mach.remove(am.EXCEPTION)

    def ServerPayloadEnter(self, e: am.Event) -> bool:
        """Deliver only with a consumer and a valid payload."""
        c = self.c
        if c.consumer is None:
            return False
        if not isinstance(e.args.get("payload"), Payload):
            c.mach.add_err_state(ss.ERR_DELIVERY, ValueError("invalid payload"),
                                 {"name": e.args.get("name", "")})
            return False
        return True

    def ServerPayloadState(self, e: am.Event) -> None:
        """Forward the payload to the consumer's `ServerPayload`."""
        c = self.c
        assert c.consumer is not None
        # the consumer may belong to another thread (runs at once when it is ours)
        c.consumer.threadsafe.add(ss.SERVER_PAYLOAD,
                                  {"name": e.args["name"], "payload": e.args["payload"]})

    def HealthcheckState(self, e: am.Event) -> None:
        """Self-removing; makes sure some Connected-group state is active."""
        mach = self.c.mach
        mach.remove(am.HEALTHCHECK)
        if not mach.any_active(ss.CONNECTING, ss.CONNECTED, ss.DISCONNECTING, ss.DISCONNECTED):
            mach.add(ss.DISCONNECTED)


__all__ = ["PREFIX_CLIENT", "TAG_RPC_CLIENT", "Client"]
