"""aRPC multiplexer: one listening port, one `Server` per accepted connection (Go rpc.Mux).

`mux.mach` (see docs/arpc-protocol.md "Endpoint machines") is `Ready` while accepting;
`ClientConnected` ticks once per accepted connection and `HasClients` is active while any
per-connection server lives. A server is disposed as soon as its client goes away. All servers
share one mutation log, so a client that reconnects and retries a mutation through another
server still gets it executed once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import amnode.machine as am
from amnode.states import MUX_STATES, MuxSchema
from amnode.states import rpc as ss

from .connection import Connection
from .dedupe import MutationLog
from .errors import RpcConfigError
from .frames import Codec
from .limits import SERVER_LIMITS, Limits
from .listener import Listener, start_and_wait
from .server import Server, server_connection
from .typed_args import ArgsRegistry

log = logging.getLogger("amnode.rpc")

TAG_RPC_MUX = "rpc-mux"

#: `new_server(mux, id, conn)` -> a Server created with `conn=conn` (Go MuxNewServerFn)
NewServerFn = Callable[["Mux", str, Connection], Server]


#: Default most connections a Mux serves at once.
MAX_CONNS = 256


class Mux:
    """Serves `source` to any number of clients on one port, at most `max_conns` at once.

    Every per-connection server gets `limits` and `server_opts` (e.g. `mutable_states`,
    `hello_timeout`, `allow_id`).
    """

    def __init__(self, source: am.Machine | None, addr: str = "127.0.0.1:0", *,
                 name: str | None = None, parent: am.Machine | str | None = None,
                 new_server: NewServerFn | None = None, push_interval: float = 0.25,
                 registry: ArgsRegistry | None = None, max_frame: int | None = None,
                 max_hello_frame: int | None = None, limits: Limits = SERVER_LIMITS,
                 max_conns: int = MAX_CONNS, ping_interval: float = 5.0,
                 log_level: am.LogLevel | int | None = None, **server_opts: Any) -> None:
        if source is None and new_server is None:
            raise RpcConfigError("Mux needs a source machine or a new_server factory")
        self.source = source
        self.name = name or (source.id if source is not None else "mux")
        self.push_interval = push_interval
        self.ping_interval = ping_interval
        self.new_server = new_server
        self.server_opts = server_opts
        #: per-connection bounds, shared by every per-connection server
        self.limits = limits.with_(max_frame=max_frame, max_hello_frame=max_hello_frame)
        #: connections served at once; one more is closed at once (logged)
        self.max_conns = max_conns
        lim = self.limits
        self.codec = Codec(registry, lim.max_frame, max_objects=lim.max_objects,
                           max_typed_depth=lim.max_typed_depth)
        self.mutation_log = MutationLog()
        #: live per-connection servers by connection number
        self.servers: dict[str, Server] = {}
        self._listener = Listener(addr)
        self._count = 0
        self._log_level = log_level
        self.mach = am.Machine(MuxSchema, id="rm-" + self.name, parent=parent,
                               tags=[TAG_RPC_MUX], log_level=log_level)
        self.mach.verify_states(MUX_STATES)
        self.mach.bind_handlers(_MuxHandlers(self), id="rpc-mux")

    @property
    def side_protocols(self) -> dict[int, Callable[[], asyncio.Protocol]]:
        """Other protocols served on this port, by the first byte of a connection (see
        `Listener`); register them before `start()`."""
        return self._listener.side

    @property
    def addr(self) -> str:
        """`host:port`; the real port once `Ready`."""
        return self._listener.addr

    async def start(self, timeout: float | None = 10.0) -> None:
        """Listen; returns once `Ready`.

        Raises ConnectionError if it cannot get there: the address is taken or invalid, or
        `timeout` passed first.
        """
        await start_and_wait(self.mach, lambda: self.mach.add(ss.START), ss.READY,
                             lambda: self.addr, timeout)

    async def stop(self, dispose: bool = False) -> None:
        """Stop every per-connection server (they say goodbye) and the listener."""
        for server in list(self.servers.values()):
            await server.stop(dispose=True)
        self.servers.clear()
        self._listener.close()
        if not self.mach.is_disposed:
            self.mach.remove(ss.START)
            if dispose:
                self.mach.dispose()

    async def _listen(self) -> None:
        mach = self.mach
        if await self._listener.open(mach, self._new_connection):
            mach.add(ss.READY, {"addr": self.addr})
        else:
            mach.remove(ss.START)

    def _new_connection(self) -> Connection:
        return server_connection(self.codec, self.mach.id, self.ping_interval, self._on_made,
                                 self.limits)

    def _on_made(self, conn: Connection) -> None:
        mach = self.mach
        if not mach.is_active(ss.READY):
            conn.close("mux not ready")
            return
        if len(self.servers) >= self.max_conns:
            log.warning("%s: refused %s: %d connections already (max_conns)", mach.id,
                        conn.peer, len(self.servers))
            conn.close("too many connections")
            return
        self._count += 1
        sid = str(self._count)
        mach.add(ss.CLIENT_CONNECTED, {"addr": conn.peer})
        try:
            if self.new_server is not None:
                server = self.new_server(self, sid, conn)
            else:
                assert self.source is not None
                server = Server(self.source, push_interval=self.push_interval,
                                name=f"{self.name}-{sid}", parent=mach, conn=conn,
                                registry=self.codec.registry, limits=self.limits,
                                ping_interval=self.ping_interval,
                                mutation_log=self.mutation_log, log_level=self._log_level,
                                **self.server_opts)
        except Exception as err:
            log.warning("%s: cannot create a server for %s: %s", mach.id, conn.peer, err)
            mach.add_err_state(ss.NEW_SERVER_ERR, err)
            conn.close(f"no server: {err}")
            return
        self.servers[sid] = server
        server.mach.bind_handlers(_ServerWatch(self, sid), id="rpc-mux-watch")
        server._start()  # never blocks, even with a source on another thread
        mach.add(ss.HAS_CLIENTS)

    def _drop(self, sid: str) -> None:
        server = self.servers.pop(sid, None)
        if server is not None and not server.mach.is_disposed:
            server.dispose()
        if not self.servers and not self.mach.is_disposed:
            self.mach.remove(ss.HAS_CLIENTS)

    def __repr__(self) -> str:
        return f"Mux({self.mach.id} {self.addr} {len(self.servers)} servers)"


class _ServerWatch:
    """Bound on each per-connection server: dispose it when its client goes away or it stops."""

    def __init__(self, mux: Mux, sid: str) -> None:
        self.mux = mux
        self.sid = sid

    def ClientConnectedEnd(self, e: am.Event) -> None:
        """The client is gone: dispose its server (after this transition)."""
        self._drop()

    def StartEnd(self, e: am.Event) -> None:
        """The server stopped (e.g. its client left before the server could serve it)."""
        self._drop()

    def _drop(self) -> None:
        try:
            asyncio.get_running_loop().call_soon(self.mux._drop, self.sid)
        except RuntimeError:  # disposed outside a loop: it is going anyway, just forget it
            self.mux._drop(self.sid)


class _MuxHandlers:
    """State handlers of the mux machine."""

    def __init__(self, mux: Mux) -> None:
        self.m = mux

    def StartState(self, e: am.Event) -> None:
        """Listen in a task bound to `Start`."""
        self.m.mach.fork(self.m._listen(), ss.START)

    def StartEnd(self, e: am.Event) -> None:
        """Stop listening."""
        self.m._listener.close()

    def ClientConnectedState(self, e: am.Event) -> None:
        """An event: self-removing."""
        self.m.mach.remove(ss.CLIENT_CONNECTED)

    def NewServerErrState(self, e: am.Event) -> None:
        """An event: self-removing."""
        self.m.mach.remove(ss.NEW_SERVER_ERR)

    def ExceptionState(self, e: am.Event) -> None:
        """Log the error; the mux keeps accepting."""
        self.m.mach.log("error: %s", self.m.mach.err)


__all__ = ["MAX_CONNS", "TAG_RPC_MUX", "Mux", "NewServerFn"]
