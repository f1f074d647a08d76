"""Shared helpers for the aRPC tests: source machines (Go NewRelsNetSrc/NewNoRelsNetSrc), a
server+client pair (Go NewTest/disposeTest), a counting, frame-aware TCP proxy (Go
TrafficMeter, plus knobs to drop, delay or freeze traffic), a source on another thread and
waiting on state instead of sleeping."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgpack
import pytest

import amnode as am
from amnode.rpc import Client, Server
from amnode.states import StateSourceSchema
from helpers.machines import rels_schema

T = TypeVar("T")

#: Go's test source order: Exception, A, B, C, D, ErrOnClient
NAMES = ["Exception", "A", "B", "C", "D", "ErrOnClient"]


def new_source(schema: Mapping[str, Any] | None = None, active: Iterable[str] = (),
               id: str = "ns-test", names: list[str] | None = None) -> am.Machine:
    """A verified state source: `schema` (default: machine_fixtures' relations schema) plus
    StateSourceSchema."""
    full = am.schema_merge(StateSourceSchema, rels_schema() if schema is None else schema)
    if names is None:
        names = ["Exception", *[n for n in full if n not in ("Exception", "ErrOnClient")],
                 "ErrOnClient"]
    m = am.Machine(full, id=id)
    m.verify_states(names)
    if active:
        m.add(list(active))
    return m


async def wait_until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll `cond` on the loop until it holds; fail after a generous `timeout` (never a fixed
    sleep: a loaded machine only makes this slower, not wrong)."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.002)
    assert cond(), what


class SourceThread:
    """A thread running its own asyncio loop, e.g. to own a state source (`run` executes a
    function there and returns its result; machines created by it belong to that thread)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="source-thread", daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "source thread did not start"

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def run(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run `fn()` on the thread's loop; its result (or exception)."""
        assert self.loop is not None
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                fut.set_result(fn())
            except BaseException as err:
                fut.set_exception(err)

        self.loop.call_soon_threadsafe(call)
        return fut.result(timeout)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        """Run a coroutine on the thread's loop."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture(name="source_thread")
def source_thread_fixture() -> Iterator[SourceThread]:
    """`source_thread`: a running SourceThread, stopped after the test (import this function
    into a test module to use the fixture)."""
    st = SourceThread()
    try:
        yield st
    finally:
        st.stop()


class Proxy:
    """A TCP proxy counting bytes both ways; can drop, delay or freeze server->client frames."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.bytes = 0
        self.addr = ""
        #: server->client frames for which this returns True are dropped (decoded envelopes)
        self.drop: Callable[[Any], bool] | None = None
        #: seconds to hold every server->client frame
        self.delay = 0.0
        #: stop forwarding on existing connections (a black hole; the sockets stay open)
        self.frozen = False
        self.dropped = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.addr = f"127.0.0.1:{port}"
        return self.addr

    async def _on_conn(self, c_reader: asyncio.StreamReader,
                       c_writer: asyncio.StreamWriter) -> None:
        host, port = self.target.rsplit(":", 1)
        try:
            s_reader, s_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            c_writer.close()
            return
        self._writers += [c_writer, s_writer]
        frozen_conn = [False]

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       to_client: bool) -> None:
            buf = b""
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    if self.frozen:
                        frozen_conn[0] = True
                    if frozen_conn[0]:
                        continue
                    self.bytes += len(data)
                    if not to_client or (self.drop is None and not self.delay):
                        writer.write(data)
                        continue
                    buf += data
                    while len(buf) >= 4:
                        n = int.from_bytes(buf[:4], "big")
                        if len(buf) < 4 + n:
                            break
                        frame, buf = buf[:4 + n], buf[4 + n:]
                        if self.drop is not None and self.drop(msgpack.unpackb(frame[4:])):
                            self.dropped += 1
                            continue
                        if self.delay:
                            await asyncio.sleep(self.delay)
                        writer.write(frame)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                if not frozen_conn[0]:
                    writer.close()

        for args in ((c_reader, s_writer, False), (s_reader, c_writer, True)):
            task = asyncio.ensure_future(pipe(*args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.sleep(0)


def no_errors_ever(mach: am.Machine) -> bool:
    """True if `Exception` never activated (Go AssertNoErrEver)."""
    return mach.tick("Exception") == 0


@dataclass
class Pair:
    """A server and a client of one source (Go NewTest)."""

    source: am.Machine
    server: Server
    client: Client
    proxy: Proxy | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nm(self) -> Any:
        """The client's mirror."""
        return self.client.netmach

    @property
    def bytes(self) -> int:
        """Bytes through the proxy so far."""
        assert self.proxy is not None
        return self.proxy.bytes


@contextlib.asynccontextmanager
async def rpc_pair(source: am.Machine | None = None, *, push_interval: float = 0.25,
                   proxy: bool = False, start: bool = True, check_errors: bool = True,
                   client_schema: bool = True, **client_kw: Any) -> AsyncIterator[Pair]:
    """Server + client (through a proxy if asked), both Ready; stops both on exit.

    With `check_errors`, asserts that neither machine ever had `Exception` (Go disposeTest).
    """
    src = source if source is not None else new_source()
    server_kw = client_kw.pop("server_kw", {})
    server = Server(src, push_interval=push_interval, **server_kw)
    await server.start()
    prx = None
    addr = server.addr
    if proxy:
        prx = Proxy(server.addr)
        addr = await prx.start()
    schema = src.schema if client_schema and not client_kw.get("no_schema") else None
    client = Client(addr, id="test", schema=schema, **client_kw)
    pair = Pair(src, server, client, prx)
    try:
        if start:
            await client.start()
            await client.mach.when("Ready", timeout=30)
            await server.mach.when("Ready", timeout=30)
        yield pair
        if check_errors:
            assert no_errors_ever(client.mach), client.mach.string_all()
            assert no_errors_ever(server.mach), server.mach.string_all()
    finally:
        await client.stop(dispose=True)
        await pair.server.stop(dispose=True)
        if prx is not None:
            await prx.close()


async def raw_conn(addr: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection for speaking (or abusing) the protocol by hand."""
    host, port = addr.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


def frame(obj: Any) -> bytes:
    """Encode one aRPC frame."""
    payload = msgpack.packb(obj)
    return len(payload).to_bytes(4, "big") + payload


async def read_frame(reader: asyncio.StreamReader, timeout: float = 2.0) -> Any:
    """Read and decode one frame (None on EOF)."""
    try:
        head = await asyncio.wait_for(reader.readexactly(4), timeout)
        body = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big")), timeout)
    except asyncio.IncompleteReadError:
        return None
    return msgpack.unpackb(body)


def hello_reply(seq: int, schema: dict[str, Any]) -> bytes:
    """A fake server's Hello reply for a 2-state source `A, Exception` with this schema."""
    return frame([1, seq, None, {
        "v": 1, "id": "fake", "names": ["A", "Exception"], "time": [0, 0], "qt": 1,
        "count": 2, "base": 1, "schema": schema}])


async def fake_server(handler: Any) -> tuple[asyncio.Server, str]:
    """A hand-written peer on an ephemeral loopback port: (server, "127.0.0.1:PORT")."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, "127.0.0.1:%d" % server.sockets[0].getsockname()[1]


async def wait_closed(reader: asyncio.StreamReader, timeout: float = 2.0) -> bool:
    """True once the peer closed the connection (EOF), reading and ignoring anything else."""
    async def drain() -> None:
        while await reader.read(65536):
            pass

    try:
        await asyncio.wait_for(drain(), timeout)
    except ConnectionError:
        return True
    return True


def hello(id: str = "rc-raw", **kw: Any) -> dict[str, Any]:
    """A valid Hello body."""
    return {"v": 1, "id": id, "ss": True, **kw}


def nested_typed(depth: int) -> msgpack.ExtType:
    """A typed value (ext 1) whose name element is itself a typed value, `depth` levels deep:
    about 6 bytes a level, and a decoder that recurses per level without a bound crashes."""
    inner = msgpack.packb(["x", {}])
    for _ in range(depth - 1):
        inner = msgpack.packb([msgpack.ExtType(1, inner), {}])
    return msgpack.ExtType(1, inner)


def raw_frame(payload: bytes) -> bytes:
    """A frame around already encoded bytes."""
    return len(payload).to_bytes(4, "big") + payload
