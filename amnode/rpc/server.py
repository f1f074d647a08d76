"""aRPC server: exposes one state-source machine to one client (Go rpc.Server).

The server's own machine (`server.mach`, see docs/arpc-protocol.md "Endpoint machines") drives
the lifecycle: `Start` -> `RpcStarting` (listen) -> `RpcAccepting` -> `RpcReady`; a connected
peer is `ClientConnected`, its `Hello` is `Handshaking`, its `Handshake` is `HandshakeDone` and
then `Ready` (auto).

Client mutations run inline, in arrival order, as soon as their frame is read, and the reply
carries the clock diff. Source changes made by anyone else are pushed as diffs, at most one per
`push_interval` (leading edge plus a trailing flush).

A source owned by another thread is never read from the server's thread: the source's one hub
tracer (shared by every server of that source) keeps its names, schema and clock up to date on
the source's thread (`SourceHub.view`), and mutations go through the source's `threadsafe`
proxy. Binding that tracer is scheduled there too; the server listens (or, given a connection,
reads from it) only once it is bound.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import amnode.machine as am
from amnode.states import SERVER_STATES, ServerSchema
from amnode.states import rpc as ss

from .clock import ClockSync, Snapshot
from .connection import Connection
from .dedupe import MutationKey, MutationLog
from .errors import (
    CanceledError,
    InvalidParamsError,
    NoAccessError,
    NotConnectedError,
    ProtocolVersionError,
    ProtocolViolation,
    RpcError,
    RpcTimeoutError,
    WrongDestinationError,
)
from .frames import Codec
from .limits import SERVER_LIMITS, Limits, server_frame_limit
from .listener import Listener, start_and_wait
from .protocol import (
    MUTATION_CALLS,
    MUTATION_NOTIFIES,
    PROTOCOL_VERSION,
    SERVER_CALLS,
    SERVER_NOTIFIES,
    Hello,
    Method,
    Payload,
    Welcome,
    mutation_from_wire,
)
from .source import SourceHub, SourceView, snapshot
from .typed_args import ArgsRegistry

log = logging.getLogger("amnode.rpc")

TAG_RPC_SERVER = "rpc-server"


class Server:
    """Exposes `source` to one client at a time; many servers may share one source.

    Implements `ConnHandler` for its connections. Connections waiting for their Hello are
    limited to `max_candidates` (besides the current one), to `hello_timeout` seconds and to
    frames of `max_hello_frame` bytes; every other bound a peer meets is in `limits`
    (docs/arpc-protocol.md "Limits"). With `mutable_states`, the client may mutate only these
    states: any other mutation is refused with `NoAccessError` (logged, nothing else happens).
    """

    def __init__(self, source: am.Machine, addr: str = "127.0.0.1:0",
                 push_interval: float = 0.25, *, name: str | None = None,
                 parent: am.Machine | str | None = None, allow_id: str | None = None,
                 registry: ArgsRegistry | None = None, max_frame: int | None = None,
                 ping_interval: float = 5.0, hello_timeout: float = 10.0,
                 delivery_timeout: float = 5.0, mutation_log: MutationLog | None = None,
                 conn: Connection | None = None, max_candidates: int = 4,
                 max_hello_frame: int | None = None, limits: Limits = SERVER_LIMITS,
                 mutable_states: Collection[str] | None = None,
                 log_level: am.LogLevel | int | None = None) -> None:
        if source.handlers() and not source.has(ss.ERR_ON_CLIENT):
            raise am.SchemaError(
                f"{source.id}: a state source with handlers must include StateSourceSchema "
                "(state ErrOnClient)")
        self.source = source
        #: seconds between clock pushes (throttle); 0 disables pushes
        self.push_interval = push_interval
        #: only a client machine with this id may connect (e.g. "rc-worker1")
        self.allow_id = allow_id
        self.ping_interval = ping_interval
        self.hello_timeout = hello_timeout
        #: connections that may wait for their Hello besides the current one; more are closed
        self.max_candidates = max_candidates
        #: per-connection bounds (frame sizes by message kind, decoded values, timeouts)
        self.limits = limits.with_(max_frame=max_frame, max_hello_frame=max_hello_frame)
        #: frame size limit of a connection until its valid Hello
        self.max_hello_frame = self.limits.max_hello_frame
        self.delivery_timeout = delivery_timeout
        #: the only states the client may mutate (None: all); see `NoAccessError`
        self.mutable_states: frozenset[str] | None = (
            None if mutable_states is None else frozenset(mutable_states))
        lim = self.limits
        self.codec = Codec(registry, lim.max_frame, max_objects=lim.max_objects,
                           max_typed_depth=lim.max_typed_depth)
        self.mutation_log = mutation_log if mutation_log is not None else MutationLog()
        #: frames pushed to the client (clock updates and schema changes)
        self.push_count = 0
        self._listener = Listener(addr)
        self._preset_conn = conn
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the connection of the (last handshaken or first) client
        self._conn: Connection | None = None
        #: connections accepted while another client is connected, until their Hello
        self._candidates: set[Connection] = set()
        self._client_id = ""
        #: the source of mutations the client sent without one (frozen, reused)
        self._client_source: am.MutSource | None = None
        #: the session secret of the handshaken client (keys its mutation ids)
        self._session = ""
        #: Hello deadlines of connections that have not sent a valid Hello yet
        self._hello_timers: dict[Connection, asyncio.TimerHandle] = {}
        self._push_timer: asyncio.TimerHandle | None = None
        self._same_thread = source.owner_thread_id == threading.get_ident()
        self._tasks: set[asyncio.Future[Any]] = set()
        if conn is not None:
            conn.handler = self
            conn.reader.max_frame = min(self.codec.max_frame, self.max_hello_frame)

        name = name or source.id
        self.mach = am.Machine(ServerSchema, id="rs-" + name, parent=parent,
                               tags=[TAG_RPC_SERVER], log_level=log_level)
        self.mach.verify_states(SERVER_STATES)
        self._handlers = _ServerHandlers(self)
        self.mach.bind_handlers(self._handlers, id="rpc-server")
        # never blocks: on another thread the bind is scheduled there and awaited by `_listen`
        self._sub = SourceHub.subscribe(source, self._on_source_woken, self._on_schema_change,
                                        self._on_source_dispose)

    # --- public API ---

    @property
    def side_protocols(self) -> dict[int, Callable[[], asyncio.Protocol]]:
        """Other protocols served on this port, by the first byte of a connection (see
        `Listener`); register them before `start()`."""
        return self._listener.side

    @property
    def addr(self) -> str:
        """`host:port`; the real port once listening (`:0` is resolved)."""
        return self._listener.addr

    @property
    def client_id(self) -> str:
        """Machine id of the handshaken client ("" if none)."""
        return self._client_id

    @property
    def listener(self) -> asyncio.AbstractServer | None:
        """The listening asyncio server (None for a mux-provided connection)."""
        return self._listener.server

    @property
    def conn(self) -> Connection | None:
        """The current client connection."""
        return self._conn

    async def start(self, timeout: float | None = 10.0) -> None:
        """Start listening; returns once `RpcReady`.

        Raises ConnectionError if it cannot get there: the address is taken or invalid, the
        source is gone, or `timeout` passed first.
        """
        await start_and_wait(self.mach, self._start, ss.RPC_READY, lambda: self.addr, timeout)

    def _start(self) -> int:
        """Add `Start` (synchronous part of `start`); a mux calls this from its protocol
        callback, so it never blocks."""
        self._loop = asyncio.get_running_loop()
        self._sub.set_loop(self._loop)
        self._same_thread = self.source.owner_thread_id == threading.get_ident()
        res = self.mach.add(ss.START)
        conn = self._preset_conn
        if (conn is not None and conn.transport is not None and self._conn is None
                and not self.mach.is_active(ss.RPC_READY)):
            # nothing is read from the mux's connection before the tracer is bound
            conn.transport.pause_reading()
        return res

    async def stop(self, dispose: bool = False) -> None:
        """Say goodbye to the client, close every connection and the listener, remove `Start`."""
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                conn.notify(Method.SERVER_BYE, "server stopping")
            except RpcError:
                pass
            conn.close("server stopping")
        for cand in [*self._candidates, self._preset_conn]:
            if cand is not None and cand is not conn:
                cand.close("server stopping")
        self._candidates.clear()
        self._cancel_hello_timers()
        self._listener.close()
        if not self.mach.is_disposed:
            self.mach.remove(ss.START)
        if dispose:
            self.dispose()
        await asyncio.sleep(0)

    def dispose(self) -> None:
        """Detach from the source and dispose the server machine."""
        if self._push_timer is not None:
            self._push_timer.cancel()
            self._push_timer = None
        self._cancel_hello_timers()
        self._listener.close()
        for conn in [self._conn, self._preset_conn, *self._candidates]:
            if conn is not None:
                conn.close("server disposed")
        self._sub.close()
        self.mach.dispose()

    async def send_payload(self, name: str, data: Any = None, dest: str | None = None, *,
                           event: am.Event | None = None, timeout: float | None = None,
                           announce: bool = False) -> None:
        """Deliver `data` to the client's consumer (`ServerPayload`); waits for its ack.

        Raises NotConnectedError without a handshaken client, WrongDestinationError if `dest`
        is not the client's id and RpcTimeoutError after `timeout` (default `delivery_timeout`).
        With `announce`, a `SendingPayload` notification (-> client `ServerDelivering`) goes first.
        """
        conn = self._conn
        mach = self.mach
        if (conn is None or conn.closed or not mach.is_active(ss.CLIENT_CONNECTED)
                or not mach.is_active(ss.HANDSHAKE_DONE)):
            raise NotConnectedError(f"{mach.id}: no client")
        if dest and dest != self._client_id:
            raise WrongDestinationError(f"{dest} != {self._client_id}")
        ev = event if event is not None else am.current_event.get()
        payload = Payload(name, data, dest or "", secrets.token_hex(8),
                          ev.machine.id if ev is not None else "",
                          ev.transition.id if ev is not None else "")
        body = payload.to_wire()
        if announce:
            conn.notify(Method.SENDING_PAYLOAD, {**body, "data": None})
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_reply(err: RpcError | None, _: Any) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(None)

        seq = conn.call(Method.SEND_PAYLOAD, body, on_reply)
        limit = self.delivery_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(fut, limit)
        except TimeoutError:
            conn.forget(seq)
            raise RpcTimeoutError(f"payload {name} not acknowledged in {limit}s") from None

    # --- listening ---

    async def _await_bound(self) -> bool:
        """Wait for the tracer's bind on the source's thread; False (`Exception` added, `Start`
        removed) if the source cannot take it, e.g. it is disposed."""
        sub = self._sub
        if sub.view is not None:
            return True
        err: BaseException | None = None
        bound = sub.bound
        if bound is not None:
            try:
                await asyncio.wrap_future(bound)
            except Exception as exc:
                err = exc
        if sub.view is not None:
            return True
        mach = self.mach
        mach.add_err(RpcError(f"cannot bind to source {self.source.id}: {err or 'disposed'}"))
        mach.remove(ss.START)
        return False

    async def _listen(self) -> None:
        """Bound to the source: take the mux's connection, or listen."""
        if not await self._await_bound():
            return
        mach = self.mach
        listening = self._preset_conn is not None or await self._listener.open(
            mach, self._new_connection)
        if listening:
            mach.add(ss.RPC_ACCEPTING)
        else:
            mach.remove(ss.RPC_STARTING)

    def restart_listener(self) -> None:
        """Close the listener as if it failed: the server drops its client and listens again."""
        self._listener.close()
        if self.mach.is_active(ss.START):
            log.info("%s: restarting the listener", self.mach.id)
            self.mach.remove(ss.RPC_READY)
            self.mach.add(ss.RPC_STARTING)

    def _new_connection(self) -> Connection:
        conn = server_connection(self.codec, self.mach.id, self.ping_interval,
                                 self._on_conn_made, self.limits)
        conn.handler = self
        return conn

    def _on_conn_made(self, conn: Connection) -> None:
        mach = self.mach
        if not mach.is_active(ss.RPC_READY):
            conn.close("server not ready")
            return
        if self._conn is None or self._conn.closed:
            self._adopt(conn)
        elif len(self._candidates) >= self.max_candidates:
            log.warning("%s: refused %s: %d connections already wait for their Hello", mach.id,
                        conn.peer, len(self._candidates))
            conn.close("too many connections waiting for Hello")
        else:
            self._candidates.add(conn)
            self._arm_hello_timeout(conn)

    def _adopt(self, conn: Connection) -> None:
        self._conn = conn
        self._arm_hello_timeout(conn)
        self.mach.add(ss.CLIENT_CONNECTED, {"addr": conn.peer})

    def _arm_hello_timeout(self, conn: Connection) -> None:
        if self.hello_timeout > 0 and conn not in self._hello_timers:
            self._hello_timers[conn] = asyncio.get_running_loop().call_later(
                self.hello_timeout, self._check_hello, conn)

    def _cancel_hello_timer(self, conn: Connection) -> None:
        """The connection said Hello or closed: its deadline (and its reference to this server)
        goes."""
        timer = self._hello_timers.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _cancel_hello_timers(self) -> None:
        for timer in self._hello_timers.values():
            timer.cancel()
        self._hello_timers.clear()

    def _check_hello(self, conn: Connection) -> None:
        self._hello_timers.pop(conn, None)
        if not conn.closed and conn.data is None:
            conn.violation(f"no Hello within {self.hello_timeout}s")

    # --- ConnHandler: the connections' frames, in wire order ---

    def on_closed(self, conn: Connection, reason: str, error: BaseException | None) -> None:
        """A connection closed: drop its client (or a candidate); record protocol errors."""
        self._candidates.discard(conn)
        self._cancel_hello_timer(conn)
        mach = self.mach
        if isinstance(error, ProtocolViolation) and not mach.is_disposed:
            mach.add_err_state(ss.ERR_RPC, error)
        if conn is not self._conn:
            if conn is self._preset_conn and self._conn is None and not mach.is_disposed:
                mach.remove(ss.START)  # the mux's client left before it was served
            return
        self._conn = None
        self._sub.active = False
        self._sub.record_mutations(False)
        if mach.is_disposed:
            return
        mach.log("client %s disconnected: %s", self._client_id or conn.peer, reason)
        # first drop the client: HandshakeDone blocks Exception (it Removes it)
        mach.remove(ss.CLIENT_CONNECTED, {"addr": conn.peer})
        if isinstance(error, RpcTimeoutError):
            mach.add_err_state(ss.ERR_NETWORK_TIMEOUT, error)

    def on_request(self, conn: Connection, seq: int, method: int, body: Any) -> None:
        """Hello, Handshake, mutations, Sync and Args."""
        if method in MUTATION_CALLS:
            self._on_mutation(conn, seq, MUTATION_CALLS[method], body)
        elif method == Method.HELLO:
            self._on_hello(conn, seq, body)
        elif method == Method.HANDSHAKE:
            self._on_handshake(conn, seq)
        elif method == Method.SYNC:
            self._on_sync(conn, seq)
        elif method == Method.ARGS:
            conn.reply(seq, self.codec.registry.names())

    def on_notify(self, conn: Connection, method: int, body: Any) -> None:
        """Mutation notifications and Bye."""
        if method in MUTATION_NOTIFIES:
            self._on_mutation(conn, 0, MUTATION_NOTIFIES[method], body)
        elif method == Method.BYE:
            self.mach.log("client %s said bye", self._client_id)
            conn.close("client said bye")

    # --- handshake ---

    def _source_view(self, with_schema: bool) -> SourceView:
        """Names, schema (an empty dict unless `with_schema`) and clock of the source, all from
        one moment: read from the source itself on its own thread, else the copy its tracer
        keeps there (never torn by a concurrent transition or schema change)."""
        if self._same_thread:
            src = self.source
            return src.state_names, src.schema if with_schema else {}, snapshot(src)
        view = self._sub.view
        if view is None:
            raise CanceledError("server not bound to its source yet")
        return view

    def _on_hello(self, conn: Connection, seq: int, body: Any) -> None:
        mach = self.mach
        version = body.get("v") if type(body) is dict else None
        if version != PROTOCOL_VERSION:
            # checked first: another version may shape the rest of Hello differently
            err = ProtocolVersionError(
                f"protocol version {version!r} not supported (server speaks "
                f"{PROTOCOL_VERSION})")
            conn.reply_error(seq, err)
            conn.violation(f"wrong protocol version {version!r}", err)
            return
        hello = Hello.from_wire(body)
        if not mach.is_active(ss.START):
            raise CanceledError("server stopping")
        if self.allow_id and hello.id != self.allow_id:
            err2 = NoAccessError(f"{hello.id} != {self.allow_id}")
            conn.reply_error(seq, err2)
            log.warning("%s: refused client %s (allowed: %s)", mach.id, hello.id, self.allow_id)
            conn.close(f"no access for {hello.id}")
            return
        names, full, snap = self._source_view(hello.sync_schema)
        known = set(names)
        unknown = [s for s in [*(hello.allowed or ()), *(hello.skipped or ())] if s not in known]
        if unknown:
            raise ProtocolViolation(f"handshake with unknown states {unknown}")
        if conn is not self._conn:
            # a newer client replaces the current one once its Hello is valid
            old = self._conn
            self._candidates.discard(conn)
            self._conn = conn
            if old is not None:
                old.close("replaced by a newer client")
            if not mach.is_active(ss.CLIENT_CONNECTED):
                mach.add(ss.CLIENT_CONNECTED, {"addr": conn.peer})
        sync = ClockSync(names, hello.sync_schema, hello.allowed, hello.skipped,
                         hello.sync_mutations)
        base = sync.reset(snap)
        schema = None
        if hello.sync_schema and (not hello.schema_hash
                                  or hello.schema_hash != am.schema_hash(full, sorted(full))):
            schema = full
        session = self.mutation_log.session(hello.id, hello.nonce, hello.session)
        mutable = self.mutable_states
        welcome = Welcome(self.source.id, sync.client_names, sync.client_time(snap[0]), snap[1],
                          snap[2], len(names), schema, base, self.ping_interval, session,
                          None if mutable is None else sorted(mutable))
        conn.data = sync
        self._cancel_hello_timer(conn)
        conn.reader.max_frame = self.codec.max_frame
        # a longer announced interval would keep a silent peer's connection for that long
        conn.peer_heartbeat = min(hello.heartbeat, self.limits.max_heartbeat)
        self._client_id = hello.id
        self._session = session
        sub = self._sub
        sub.record_mutations(False)
        sub.record_mutations(hello.sync_mutations)
        sub.active = True
        mach.add(ss.HANDSHAKING, {"id": hello.id})
        conn.reply(seq, welcome.to_wire())

    def _on_handshake(self, conn: Connection, seq: int) -> None:
        if conn.data is None or conn is not self._conn:
            raise ProtocolViolation("Handshake before Hello")
        if not self.mach.is_active(ss.START):
            raise CanceledError("server stopping")
        res = self.mach.add(ss.HANDSHAKE_DONE, {"id": self._client_id})
        if res == am.CANCELED:
            raise CanceledError("handshake canceled")
        conn.reply(seq, None)

    # --- mutations ---

    def _on_mutation(self, conn: Connection, seq: int, mtype: int, body: Any) -> None:
        states, mid, args, event = mutation_from_wire(body)
        sync: ClockSync | None = conn.data
        if sync is None or conn is not self._conn:
            if seq:
                raise NotConnectedError("handshake first")
            return
        in_map = sync.in_map
        size = len(in_map)
        src_names = sync.names
        names = []
        for i in states:
            if i >= size:
                raise ProtocolViolation(f"state index {i} out of range ({size} states)")
            names.append(src_names[in_map[i]])
        if self.mutable_states is not None and not self._allowed(seq, mtype, names, src_names):
            return
        if not self.mach.is_active(ss.START):
            if seq:
                raise CanceledError("server stopping")
            return
        key: MutationKey | None = (self._session, mid) if mid else None
        log_ = self.mutation_log
        if key is not None and log_.seen(key) and log_.lookup(
                key, lambda res: self._reply_mutation(conn, seq, res, replay=True)):
            return
        # the mutation's source, for recordings: the client's handler, else the client itself
        ev = self._client_source
        if event is not None:
            ev = am.MutSource(*event)
        elif ev is None or ev.mach_id != self._client_id:
            ev = self._client_source = am.MutSource(self._client_id, "", 0)
        if self._same_thread:
            res = self._execute(mtype, names, args, ev)
            if key is not None:
                self.mutation_log.record(key, res)
            self._reply_mutation(conn, seq, res)
            return
        self._execute_threadsafe(conn, seq, key, mtype, names, args, ev)

    def _allowed(self, seq: int, mtype: int, names: list[str], src_names: list[str]) -> bool:
        """False for a notification outside `mutable_states` (logged); a call outside them
        raises NoAccessError (logged, answered to the client).

        Add and Remove may name only mutable states; Set also removes every state it does not
        name, so it needs every state of the source to be mutable.
        """
        allowed = self.mutable_states
        assert allowed is not None
        verb = ("add", "remove", "set")[mtype]
        refused = [n for n in (src_names if mtype == 2 else names) if n not in allowed]
        if not refused:
            return True
        shown = ", ".join(refused[:5]) + (f" (+{len(refused) - 5} more)" if len(refused) > 5
                                           else "")
        why = (f"may not {verb} {shown}" if mtype != 2
               else f"may not set states: set also changes {shown}")
        log.warning("%s: refused %s%s from client %s: %s", self.mach.id, verb.upper(),
                    "" if seq else "_NS", self._client_id, why)
        if seq:
            raise NoAccessError(f"{self.source.id}: {self._client_id} {why}")
        return False

    def _execute(self, mtype: int, names: list[str], args: dict[str, Any] | None,
                 ev: am.MutSource | None) -> int:
        src = self.source
        fn = src.add if mtype == 0 else src.remove if mtype == 1 else src.set
        try:
            return int(fn(names, args, event=ev))
        except am.MachineError as err:
            raise InvalidParamsError(str(err)) from None

    def _execute_threadsafe(self, conn: Connection, seq: int, key: MutationKey | None,
                            mtype: int, names: list[str], args: dict[str, Any] | None,
                            ev: am.MutSource | None) -> None:
        """Run on a source owned by another thread; replies when it is done."""
        log_ = self.mutation_log
        if key is not None:
            log_.begin(key)
        ts = self.source.threadsafe
        fn = ts.add if mtype == 0 else ts.remove if mtype == 1 else ts.set
        cfut = fn(names, args, source=ev)
        loop = self._loop
        assert loop is not None

        def done(res: int | BaseException) -> None:
            if isinstance(res, BaseException):
                if key is not None:
                    log_.finish(key, am.CANCELED)
                if seq:
                    conn.reply_error(seq, RpcError(f"{type(res).__name__}: {res}"))
                return
            if key is not None:
                log_.finish(key, res)
            if seq:
                self._reply_mutation(conn, seq, res)

        def on_done(f: Any) -> None:
            try:
                result: int | BaseException = int(f.result())
            except BaseException as err:
                result = err
            loop.call_soon_threadsafe(done, result)

        cfut.add_done_callback(on_done)

    def _reply_mutation(self, conn: Connection, seq: int, res: int, replay: bool = False) -> None:
        """Answer a mutation with its result and the clock diff.

        A replayed (retried) mutation always carries an update, so a client that lost the first
        reply sees the version gap and resyncs.
        """
        if not seq or conn.closed:
            return
        sync: ClockSync = conn.data
        body: list[Any] = [res]
        if sync.sync_mutations:
            muts = self._mutation_updates(sync, replay)
            if muts:
                body += [None, muts]
        else:
            latest = self._sub.latest
            update = sync.diff(latest, replay) if latest is not None and sync.fits(latest) \
                else None
            if update is not None:
                body.append(update)
                sync.last_send = time.monotonic()
        conn.reply(seq, body)

    def _mutation_updates(self, sync: ClockSync, force: bool = False) -> list[Any]:
        """Per-transition updates for a SyncMutations client; the queue is emptied."""
        out: list[Any] = []
        for mtype, called, snap in self._sub.take_mutations():
            update = sync.diff(snap) if sync.fits(snap) else None
            if update is not None:
                out.append([mtype, sync.called_out(called), update])
        latest = self._sub.latest
        if latest is not None and sync.fits(latest) and (sync.changed(latest)
                                                         or (force and not out)):
            update = sync.diff(latest, force)
            if update is not None:
                out.append([0, [], update])
        if out:
            sync.last_send = time.monotonic()
        return out

    def _on_sync(self, conn: Connection, seq: int) -> None:
        sync: ClockSync | None = conn.data
        if sync is None or conn is not self._conn:
            raise NotConnectedError("handshake first")
        self.mach.add(ss.METRIC_SYNC)
        names, schema, snap = self._source_view(sync.sync_schema)
        if names != sync.names:
            # the schema changed and its SchemaChange is still on its way: send it first
            sync = self._send_schema(conn, sync, names, schema, snap)
        self._sub.mutations.clear()
        version = sync.reset(snap)
        conn.reply(seq, [sync.client_time(snap[0]), snap[1], snap[2], version])

    # --- pushes ---

    def _on_source_change(self) -> None:
        """The source changed (or may have): push now, or arm the trailing flush of this
        interval; then ask the hub for the next change unless that flush is armed."""
        conn = self._conn
        interval = self.push_interval
        if conn is None or conn.closed or interval <= 0 or conn.data is None:
            return
        if not self.mach.is_active(ss.HANDSHAKE_DONE):
            return
        sync: ClockSync = conn.data
        sub = self._sub
        latest = sub.latest
        if latest is not None and sync.fits(latest) and sync.changed(latest):
            wait = sync.last_send + interval - time.monotonic()
            if wait > 0:
                if self._push_timer is None and self._loop is not None:
                    self._push_timer = self._loop.call_later(wait, self._flush_push)
                return
            self._push(conn, sync)
            if self._push_timer is not None:  # an early push (e.g. a shorter interval)
                self._push_timer.cancel()
                self._push_timer = None
        if self._push_timer is None and self._loop is not None:
            sub.want_change()
            if sub.latest is not latest:
                # changed on the source's thread before the registration: look again
                self._loop.call_soon(self._on_source_change)

    def _on_source_woken(self) -> None:
        """The hub's wake-up after a source change. When a mutation reply already carried that
        change and the push throttle is still closed, wait for the end of the interval with one
        timer instead of registering again: a client mutating in a loop costs one wake-up per
        push interval, not one per mutation (pushes leave at the same moments)."""
        conn = self._conn
        if conn is not None and not conn.closed and self._push_timer is None \
                and self._loop is not None:
            sync: ClockSync | None = conn.data
            latest = self._sub.latest
            if sync is not None and latest is not None and sync.fits(latest) \
                    and not sync.changed(latest):
                wait = sync.last_send + self.push_interval - time.monotonic()
                if wait > 0 and self.push_interval > 0 \
                        and self.mach.is_active(ss.HANDSHAKE_DONE):
                    self._push_timer = self._loop.call_later(wait, self._flush_push)
                    return
        self._on_source_change()

    def _flush_push(self) -> None:
        self._push_timer = None
        self._on_source_change()

    def _push(self, conn: Connection, sync: ClockSync) -> None:
        try:
            if sync.sync_mutations:
                muts = self._mutation_updates(sync)
                if not muts:
                    return
                conn.notify(Method.SET_CLOCK_MANY, muts)
            else:
                latest = self._sub.latest
                update = sync.diff(latest) if latest is not None and sync.fits(latest) \
                    else None
                if update is None:
                    return
                conn.notify(Method.SET_CLOCK, update)
        except RpcError as err:
            self.mach.remove(ss.CLIENT_CONNECTED)
            self.mach.add_err_state(ss.ERR_NETWORK, err)
            return
        sync.last_send = time.monotonic()
        self.push_count += 1

    def _on_schema_change(self) -> None:
        """The source's schema changed: resend names, schema and time as a new baseline."""
        conn = self._conn
        if conn is None or conn.closed or conn.data is None:
            return
        old: ClockSync = conn.data
        names, schema, snap = self._source_view(old.sync_schema)
        self._send_schema(conn, old, names, schema, snap)

    def _send_schema(self, conn: Connection, old: ClockSync, names: list[str],
                     schema: am.Schema, snap: Snapshot) -> ClockSync:
        """Send SchemaChange for this view of the source; its new baseline replaces `old`."""
        sync = ClockSync(names, old.sync_schema, old.allowed, old.skipped, old.sync_mutations)
        sync.version = old.version
        base = sync.reset(snap)
        self._sub.mutations.clear()
        conn.data = sync
        mutable = self.mutable_states
        welcome = Welcome(self.source.id, sync.client_names, sync.client_time(snap[0]), snap[1],
                          snap[2], len(names), schema if sync.sync_schema else None, base,
                          self.ping_interval, "", None if mutable is None else sorted(mutable))
        try:
            conn.notify(Method.SCHEMA_CHANGE, welcome.to_wire())
            self.push_count += 1
        except RpcError as err:
            self.mach.add_err_state(ss.ERR_NETWORK, err)
        return sync

    def _on_source_dispose(self) -> None:
        if not self.mach.is_disposed:
            self.mach.log("source %s disposed", self.source.id)
            task = asyncio.ensure_future(self.stop())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        return f"Server({self.mach.id} {self.addr})"


def server_connection(codec: Codec, name: str, ping_interval: float,
                      on_made: Callable[[Connection], None] | None = None,
                      limits: Limits = SERVER_LIMITS) -> Connection:
    """A server-side connection (accepts client methods, pings as the server); until its
    valid Hello it takes frames of at most `limits.max_hello_frame` bytes, and always frames
    of at most the limit of their message kind."""
    conn = Connection(codec, name=name, requests=SERVER_CALLS, notifies=SERVER_NOTIFIES,
                      ping_out=Method.SERVER_PING, ping_in=Method.PING,
                      ping_interval=ping_interval, on_made=on_made,
                      frame_limit=server_frame_limit(limits), frame_timeout=limits.frame_timeout,
                      check_above=min(limits.max_control_frame, limits.max_hello_frame))
    conn.reader.max_frame = min(codec.max_frame, limits.max_hello_frame)
    return conn


class _ServerHandlers:
    """State handlers of the server machine (docs/arpc-protocol.md "Endpoint machines")."""

    def __init__(self, server: Server) -> None:
        self.s = server

    def RpcStartingEnter(self, e: am.Event) -> bool:
        """Listening needs an address or a connection from a mux."""
        s = self.s
        return bool(s._listener.addr) or s._preset_conn is not None

    def RpcStartingState(self, e: am.Event) -> None:
        """Bind (if still pending) and listen in a task bound to `Start`; a mux connection on a
        bound server needs neither."""
        s = self.s
        if s._preset_conn is not None and s._sub.view is not None:
            s.mach.add(ss.RPC_ACCEPTING)
            return
        s.mach.fork(s._listen(), ss.START)

    def RpcAcceptingEnter(self, e: am.Event) -> bool:
        """Requires the listener (or the mux connection)."""
        s = self.s
        return s._listener.server is not None or s._preset_conn is not None

    def RpcAcceptingState(self, e: am.Event) -> None:
        """Accepting connections: `RpcReady`."""
        self.s.mach.add(ss.RPC_READY, {"addr": self.s.addr})

    def RpcReadyEnter(self, e: am.Event) -> bool:
        """Only from `RpcAccepting`."""
        return self.s.mach.is_active(ss.RPC_ACCEPTING)

    def RpcReadyState(self, e: am.Event) -> None:
        """Adopt a mux-provided connection as the client."""
        s = self.s
        conn = s._preset_conn
        if conn is not None and not conn.closed and s._conn is None:
            s._adopt(conn)
            if conn.transport is not None:
                conn.transport.resume_reading()

    def ClientConnectedEnd(self, e: am.Event) -> None:
        """Dropping the client closes its connection."""
        s = self.s
        conn = s._conn
        if conn is not None and not conn.closed:
            conn.close("client dropped by the server")

    def HandshakeDoneState(self, e: am.Event) -> None:
        """Start the push throttle now; flush changes made since Hello."""
        s = self.s
        conn = s._conn
        if conn is not None and conn.data is not None:
            conn.data.last_send = time.monotonic()
        # source changes between Hello and Handshake are pushed now
        s._on_source_change()

    def StartEnd(self, e: am.Event) -> None:
        """Stop listening and pushing."""
        s = self.s
        s._listener.close()
        if s._push_timer is not None:
            s._push_timer.cancel()
            s._push_timer = None


__all__ = ["TAG_RPC_SERVER", "Server", "server_connection"]

