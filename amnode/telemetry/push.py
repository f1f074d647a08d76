"""Push mode: `AMNODE_DBG_ADDR=HOST:PORT` streams this process's records to `amdbg listen`.

The Go reference's workflow (a process started with the address of a running debugger), with
the live stream protocol of docs/recording-format.md "Live streams": the process connects,
sends its HELLO (role `push`), waits for the debugger's (role `sink`), then sends its stream
exactly as an attached process does. The recorder subscription is made when the push starts,
before the first machine exists, so nothing is lost while connecting (up to `PUSH_LIMIT`
bytes are held meanwhile; beyond that transitions are dropped and counted, never waited
for). A lost connection is retried with a growing pause (0.2 s to 5 s); the new stream starts
with the flight recorder's ring. At interpreter exit what is buffered is sent (for at most
`EXIT_WAIT` seconds, waiting for a connection attempt still in flight) before the connection is
closed.

Everything runs on a daemon thread with its own event loop: the program's threads and loops
are never used.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sys
import threading
from typing import Any

from . import process
from .endpoint import OWN_STREAM, LiveSource, process_info
from .live_protocol import (
    HELLO_TIMEOUT,
    PREFACE,
    VERSION,
    LiveProtocolError,
    MessageReader,
    Msg,
    check_hello,
    control,
    read_control,
)
from .recorder import Recorder
from .subscription import Subscription

#: bytes held for the debugger while (re)connecting or while it is slow (16 MiB)
PUSH_LIMIT = 16 * 1024 * 1024
#: seconds spent at interpreter exit sending what is buffered
EXIT_WAIT = 5.0
#: seconds one connection attempt may take
CONNECT_TIMEOUT = 5.0


class PushSource(LiveSource):
    """The process side of a push connection: it says HELLO first, then streams."""

    def __init__(self, client: PushClient) -> None:
        super().__init__(limit=client.limit)
        self.client = client
        self._reader = MessageReader(preface=False)
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._write(PREFACE + control(Msg.HELLO, 0, {"v": VERSION, "role": "push",
                                                     **process_info()}))

    def _message(self, kind: int, stream: int, payload: bytes) -> None:
        if self.hello is None:
            if kind != Msg.HELLO:
                raise LiveProtocolError(f"expected HELLO, got {Msg(kind).name}")
            body = read_control(kind, payload)
            check_hello(body, ("sink",))
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.hello = body
            self._write(control(Msg.OPEN, OWN_STREAM, {**process_info(), "via": []}))
            self.sub, self._rec = self.client.take_subscription(self._wake)
            self._pump()
            return
        if kind == Msg.BYE:
            self.close("the debugger said goodbye", bye=False)
            return
        raise LiveProtocolError(f"a debugger may send nothing but BYE here, got "
                                f"{Msg(kind).name}")

    def _cleanup(self, reason: str) -> None:
        super()._cleanup(reason)
        if not self.done.done():
            self.done.set_result(reason)


class PushClient:
    """Pushes the process recorder's records to `addr` from a thread of its own."""

    def __init__(self, addr: str, *, limit: int = PUSH_LIMIT) -> None:
        host, _, port = addr.rpartition(":")
        self.addr = addr
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.limit = limit
        self.loop = asyncio.new_event_loop()
        self.connection: PushSource | None = None
        #: connections made so far
        self.connections = 0
        self.last_error = ""
        #: a connection attempt is in flight (stop() waits for it: records made before the
        #: debugger accepted us must still reach it)
        self.connecting = False
        self._stopping = False
        self._rec: Recorder = process.acquire()
        self._sub = self._new_subscription()
        self._thread = threading.Thread(target=self._run, name="amnode-dbg-push", daemon=True)

    def _new_subscription(self) -> Subscription:
        sub = Subscription(lambda: None, self.limit)
        self._rec.subscribe(sub, history=True)
        return sub

    def take_subscription(self, wake: Any) -> tuple[Subscription, Recorder]:
        """The subscription for a new connection (its pump is `wake`): the one made at start
        for the first connection, a new one (history first) after a reconnect."""
        sub = self._sub
        if sub.closed:
            sub = self._sub = self._new_subscription()
        sub.wake = wake
        return sub, self._rec

    @property
    def dropped(self) -> int:
        """Transitions dropped for lack of room in the current subscription."""
        return self._sub.dropped

    def start(self) -> None:
        """Start the thread; returns at once."""
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                self.loop.close()

    async def _main(self) -> None:
        pause = 0.2
        warned = False
        while not self._stopping:
            conn = PushSource(self)

            def made(conn: PushSource = conn) -> PushSource:
                return conn

            self.connecting = True
            try:
                try:
                    await asyncio.wait_for(
                        self.loop.create_connection(made, self.host, self.port),
                        CONNECT_TIMEOUT)
                finally:
                    self.connecting = False
                self.connection = conn
                self.connections += 1
                reason = await conn.done
                pause = 0.2
                if conn.hello is None:
                    self.last_error = reason
            except (TimeoutError, OSError) as err:
                self.last_error = str(err) or type(err).__name__
                if not warned:
                    warned = True
                    print(f"amnode.telemetry: cannot push to the debugger at {self.addr}: "
                          f"{self.last_error}; retrying", file=sys.stderr, flush=True)
            if self._stopping:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    def stop(self, timeout: float = EXIT_WAIT) -> None:
        """Send what is buffered (for at most `timeout` seconds), then close. Any thread."""
        if self._stopping:
            return
        self._stopping = True
        self._rec.flush()
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._finish(timeout), self.loop)
        with contextlib.suppress(Exception):
            fut.result(timeout + 1)

    async def _finish(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # a process that exits while its connection is being made (a short script, a slow
        # machine) waits for it rather than dropping everything it recorded
        while self.connecting and loop.time() < deadline:
            await asyncio.sleep(0.01)
        conn = self.connection
        while conn is not None and not conn.closed and loop.time() < deadline:
            conn._pump()
            transport = conn.transport
            if conn.sub is not None and not conn.sub.pending and (
                    transport is None or not transport.get_write_buffer_size()):
                break
            await asyncio.sleep(0.01)
        if conn is not None and not conn.closed:
            conn.send_control(Msg.CLOSE, OWN_STREAM, {"reason": "the process exits"})
            conn.close("the process exits")


_client: PushClient | None = None


def start(addr: str) -> PushClient | None:
    """Push this process's records to `amdbg listen` at `addr` (idempotent); None when the
    address is not `host:port`."""
    global _client
    if _client is not None:
        return _client
    try:
        client = PushClient(addr)
    except ValueError:
        print(f"amnode.telemetry: AMNODE_DBG_ADDR={addr!r} is not HOST:PORT; not pushing",
              file=sys.stderr)
        return None
    _client = client
    client.start()
    atexit.register(client.stop)
    return client


def client() -> PushClient | None:
    """The push client of this process, if any."""
    return _client


__all__ = ["CONNECT_TIMEOUT", "EXIT_WAIT", "HELLO_TIMEOUT", "PUSH_LIMIT", "PushClient",
           "PushSource", "client", "start"]
