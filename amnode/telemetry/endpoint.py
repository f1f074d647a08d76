"""The process side of `amdbg attach`: stream this process's records to a debugger that asks.

`LiveSource` is the asyncio protocol of one attached debugger (docs/recording-format.md "Live
streams"): after the debugger's preface and HELLO it subscribes to the process recorder
(`process.acquire`, which creates it and attaches it to every machine if nobody had), sends
the process's stream (number 1: the segment header, every machine's schema and flight
recorder ring, then every record as it happens) and, through a `relay` the node layer gives
it, the streams of other processes (a supervisor's workers). When the debugger goes, the
subscription goes; with nothing else needing it the recorder is closed and machines run
without a tracer again.

A debugger can only read: nothing it sends is ever applied to a machine (after its HELLO the
only message it may send is BYE; anything else closes its connection). What one debugger can
cost the process is bounded: a HELLO of 64 KiB within 10 s, at most `MAX_ATTACHED`
debuggers, and a subscriber buffer (`Subscription`, 4 MiB) past which its transitions are
dropped and counted (`STATS`), never waited for.

`serve(addr)` listens on its own port (127.0.0.1 unless told otherwise); node supervisors and
workers instead accept live connections on their aRPC ports (`amnode.node.debug`);
`AMNODE_DBG_LISTEN=HOST:PORT` runs `serve` in a thread of its own in any program.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from . import process
from .live_protocol import (
    DATA_MAX,
    HELLO_TIMEOUT,
    VERSION,
    LiveProtocolError,
    MessageReader,
    Msg,
    check_hello,
    control,
    data_messages,
    read_control,
)
from .recorder import Recorder
from .subscription import SUBSCRIBER_LIMIT, Subscription

#: debuggers attached to one process at once (more are refused with a BYE)
MAX_ATTACHED = 8
#: the transport buffer above which a connection stops taking more (asyncio's high water)
WRITE_HIGH = 256 * 1024
#: the process's own stream number on every connection
OWN_STREAM = 1

#: `admit(hello)`: "" admits the peer, anything else is the reason it is refused
Admit = Callable[[dict[str, Any]], str]

_attached = 0
_attached_lock = threading.Lock()


class RelaySession(Protocol):
    """What a relay (the node layer's) returns for one connection: stopped when it closes."""

    def close(self) -> None:
        """Stop relaying (close the relayed connections)."""


#: `relay(source)` starts relaying other processes' streams into `source`
Relay = Callable[["LiveSource"], RelaySession]


def process_info() -> dict[str, Any]:
    """What OPEN says about this process."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "argv0": sys.argv[0] if sys.argv else ""}


class LiveSource(asyncio.Protocol):
    """One attached debugger (or a supervisor attached on a debugger's behalf): the process
    side of a live connection. See the module docstring."""

    def __init__(self, *, admit: Admit | None = None, relay: Relay | None = None,
                 roles: tuple[str, ...] = ("attach",), limit: int = SUBSCRIBER_LIMIT) -> None:
        self.admit = admit
        self.relay = relay
        self.roles = roles
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.closed = False
        self.close_reason = ""
        #: the peer's HELLO once accepted
        self.hello: dict[str, Any] | None = None
        self.sub: Subscription | None = None
        self._reader = MessageReader(preface=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._rec: Recorder | None = None
        #: the connection acquired the process recorder (and releases it when it closes)
        self._releases = False
        self._relay: RelaySession | None = None
        self._counted = False
        self._next_stream = OWN_STREAM + 1
        self._sent_dropped = 0
        self._own_sent = False
        #: parts of the history still to send before READY (the own stream, relays)
        self._waiting = 0
        self._ready_sent = False
        #: called when the transport can take more again (relays resume reading)
        self.on_writable: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        self._timer = self._loop.call_later(HELLO_TIMEOUT, self._hello_timeout)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._reader.deliver(data, self._message, lambda: self.closed)
        except LiveProtocolError as err:
            self.close(str(err))  # the BYE says why (bounded: one short message)

    def eof_received(self) -> bool | None:
        self.close("the peer closed the connection", bye=False)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cleanup(f"connection lost: {exc}" if exc else "connection closed")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()
        for fn in list(self.on_writable):
            fn()

    @property
    def writable(self) -> bool:
        """False while the transport's buffer is over its high water mark."""
        return not self._paused and not self.closed

    # ------------------------------------------------------------------ messages

    def _message(self, kind: int, stream: int, payload: bytes) -> None:
        if self.hello is None:
            if kind != Msg.HELLO:
                raise LiveProtocolError(f"expected HELLO, got {Msg(kind).name}")
            self._on_hello(read_control(kind, payload))
            return
        if kind == Msg.BYE:
            self.close("the debugger said goodbye", bye=False)
            return
        raise LiveProtocolError(f"a debugger may send nothing but BYE here, got "
                                f"{Msg(kind).name}")

    def _on_hello(self, body: dict[str, Any]) -> None:
        global _attached
        role = check_hello(body, self.roles)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        refused = self.admit(body) if self.admit is not None else ""
        with _attached_lock:
            if not refused and _attached >= MAX_ATTACHED:
                refused = f"{MAX_ATTACHED} debuggers are attached already"
            if not refused:
                _attached += 1
                self._counted = True
        if refused:
            self._write(control(Msg.HELLO, 0, {"v": VERSION, "role": "refused"}))
            self.close(f"refused: {refused}")
            return
        self.hello = body
        self._write(control(Msg.HELLO, 0, {"v": VERSION, "role": "source", **process_info()}))
        self._start(role, bool(body.get("history", True)))

    def _wake(self) -> None:
        """Called by the recorder's writer thread: pump on this connection's loop."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._pump)

    def _subscribe(self, history: bool) -> None:
        self._rec = process.acquire()
        self._releases = True
        self.sub = Subscription(self._wake, self.limit)
        self._rec.subscribe(self.sub, history=history)

    def _start(self, role: str, history: bool) -> None:
        self._waiting = 1
        self._write(control(Msg.OPEN, OWN_STREAM, {**process_info(), "via": []}))
        self._subscribe(history)
        if self.relay is not None:
            try:
                self._relay = self.relay(self)
            except Exception as err:  # relaying is best effort: the own stream goes on
                print(f"amnode.telemetry: cannot relay to {self.peer}: {err}", file=sys.stderr)
        self._pump()

    def _hello_timeout(self) -> None:
        self._timer = None
        if self.hello is None:
            self.close(f"no HELLO within {HELLO_TIMEOUT:g}s", bye=False)

    # ------------------------------------------------------------------ sending

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _pump(self) -> None:
        """Move what the subscription holds to the socket while it takes more."""
        sub = self.sub
        if sub is None or self.closed:
            return
        while not self._paused:
            data = sub.take(4 * DATA_MAX)
            if not data:
                break
            for msg in data_messages(OWN_STREAM, data):
                self._write(msg)
            if not self._own_sent:
                self._own_sent = True
                self.part_ready()
        if sub.dropped != self._sent_dropped:
            self._sent_dropped = sub.dropped
            self._write(control(Msg.STATS, OWN_STREAM, {"dropped": sub.dropped}))
        if sub.closed and not sub.pending:
            self._write(control(Msg.CLOSE, OWN_STREAM, {"reason": sub.close_reason}))
            self.close(sub.close_reason)

    # --- for relays ---

    def open_stream(self, info: dict[str, Any]) -> int:
        """A new relayed stream (OPEN sent); returns its number."""
        stream = self._next_stream
        self._next_stream += 1
        self._write(control(Msg.OPEN, stream, info))
        return stream

    def send(self, stream: int, data: bytes) -> None:
        """Relay bytes of a stream."""
        for msg in data_messages(stream, data):
            self._write(msg)

    def send_control(self, kind: Msg, stream: int, body: dict[str, Any]) -> None:
        """Relay a control message (CLOSE, STATS) of a stream."""
        self._write(control(kind, stream, body))

    def expect_part(self) -> None:
        """One more part of the history (a relayed process's) before READY."""
        self._waiting += 1

    def part_ready(self) -> None:
        """A part of the history was sent (or will never be): READY once all were."""
        self._waiting -= 1
        if self._waiting <= 0 and not self._ready_sent and self.hello is not None:
            self._ready_sent = True
            self._write(control(Msg.READY, 0, {}))

    # ------------------------------------------------------------------ closing

    def close(self, reason: str, *, bye: bool = True) -> None:
        """Say goodbye (with `bye`) and close the connection."""
        if self.closed:
            return
        if bye:
            with contextlib.suppress(LiveProtocolError):
                self._write(control(Msg.BYE, 0, {"reason": reason[:1000]}))
        self.close_reason = reason
        transport = self.transport
        self._cleanup(reason)
        if transport is not None:
            transport.close()

    def _cleanup(self, reason: str) -> None:
        global _attached
        if not self.closed:
            self.closed = True
            self.close_reason = self.close_reason or reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        relay, self._relay = self._relay, None
        if relay is not None:
            with contextlib.suppress(Exception):
                relay.close()
        sub, rec = self.sub, self._rec
        self._rec = None
        if sub is not None and rec is not None:
            rec.unsubscribe(sub)
            sub.close(reason)
        if self._releases:
            self._releases = False
            process.release()
        if self._counted:
            self._counted = False
            with _attached_lock:
                _attached -= 1


def attached() -> int:
    """Debuggers attached to this process now."""
    return _attached


async def serve(addr: str = "127.0.0.1:0", *, admit: Admit | None = None,
                relay: Relay | None = None, limit: int = SUBSCRIBER_LIMIT) -> asyncio.Server:
    """Accept debuggers on `addr` (`host:port`; an empty host is 127.0.0.1) on the running
    loop, each with a subscriber buffer of `limit` bytes; the caller closes the server."""
    host, _, port = addr.rpartition(":")
    loop = asyncio.get_running_loop()
    process.track()
    return await loop.create_server(lambda: LiveSource(admit=admit, relay=relay, limit=limit),
                                    host.strip("[]") or "127.0.0.1", int(port))


def serve_in_thread(addr: str) -> str:
    """`serve(addr)` on a daemon thread with its own event loop (`AMNODE_DBG_LISTEN`); returns
    the address it listens on ("" when it cannot: one line on stderr says why)."""
    process.track()
    ready = threading.Event()
    bound: list[str] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(serve(addr))
            sock = server.sockets[0].getsockname()
            bound.append(f"{sock[0]}:{sock[1]}")
        except (OSError, ValueError) as err:
            print(f"amnode.telemetry: cannot accept debuggers on {addr}: {err}",
                  file=sys.stderr)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, name="amnode-dbg-endpoint", daemon=True).start()
    ready.wait(10)
    if bound:
        print(f"amnode.telemetry: debuggers can attach to {bound[0]} (amdbg attach {bound[0]})",
              file=sys.stderr, flush=True)
    return bound[0] if bound else ""


__all__ = ["MAX_ATTACHED", "OWN_STREAM", "WRITE_HIGH", "Admit", "LiveSource", "Relay",
           "RelaySession", "attached", "process_info", "serve", "serve_in_thread"]
