"""The debugger side of live streams: a growing recording fed by sockets.

`LiveRecording` holds one `Recording` (`Recording.live`) that grows while processes run.
Streams come in two ways (docs/recording-format.md "Live streams"):

* `attach(addr)`: connect to a process that accepts debuggers (a node supervisor's or
  worker's aRPC port, `AMNODE_DBG_LISTEN`), which sends its own stream and relays others;
* `listen(addr)`: accept processes started with `AMNODE_DBG_ADDR` (push mode).

Each stream becomes a `StreamBuffer` of the recording, indexed as its bytes arrive; when its
connection closes its machines are marked disconnected (`RecordedMachine.live` is False) and
their data stays. With `record_dir`, every stream is also written, byte for byte as received,
to a file of its own there: a recording `open_recording` (and `amdbg replay`) reads later.
Those writes are done by one writer thread, not on the event loop (the measurement behind
that choice is in benchmarks/bench_live.py).

Whatever a peer sends is bounded (`live_protocol`): message sizes, streams per connection,
unclosed bytes per stream (`BLOCK_MAX`), bytes per stream (`stream_limit`), and time to say
HELLO; a peer that breaks a rule, or sends bytes that are not a recording, loses its
connection and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amnode.machine.errors import AmnodeError

from .errors import RecordingError
from .format import FILE_SUFFIX
from .live_protocol import (
    BLOCK_MAX,
    HELLO_TIMEOUT,
    PREFACE,
    STREAM_BYTES_MAX,
    STREAMS_MAX,
    VERSION,
    LiveProtocolError,
    MessageReader,
    Msg,
    check_hello,
    control,
    read_control,
)
from .reader import Recording
from .scan import StreamBuffer

#: seconds `attach` waits for a connection and the process's HELLO
CONNECT_TIMEOUT = 10.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class LiveConnectError(AmnodeError, ConnectionError):
    """A live address could not be attached to (unreachable, refused, not a live endpoint)."""


@dataclass(eq=False)
class LiveTarget:
    """One connection of a live recording: an address attached to, or a process that pushed
    to a listening debugger."""

    addr: str
    #: "attach" (we connected) or "push" (the process connected to us)
    kind: str
    #: "connecting", "connected" or "closed"
    state: str = "connecting"
    #: why it closed ("" while open)
    reason: str = ""
    #: what the peer said about its process in its HELLO (host, pid, argv0)
    process: dict[str, Any] = field(default_factory=dict)
    #: open streams by number
    streams: dict[int, StreamBuffer] = field(default_factory=dict)
    #: every stream this connection brought, ended ones included
    all_streams: list[StreamBuffer] = field(default_factory=list)
    #: transitions the senders dropped (could not send in time), by stream number
    dropped_by_stream: dict[int, int] = field(default_factory=dict)
    bytes_in: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dropped(self) -> int:
        """Transitions the senders of this connection dropped (they were too slow for them)."""
        return sum(self.dropped_by_stream.values())

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self.state == "connected"


class RecordFiles:
    """Writes received streams to files of a directory from one thread (file I/O never runs
    on the event loop; a slow disk delays only this thread)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.errors: list[str] = []
        self.bytes_written = 0
        self._q: queue.SimpleQueue[tuple[str, Any, bytes]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="amdbg-record", daemon=True)
        self._thread.start()
        self._names: set[str] = set()

    def new_file(self, info: dict[str, Any]) -> Path:
        """A new file name for a stream (from its process: host, pid and the time)."""
        host = _SAFE.sub("_", str(info.get("host", "host")))[:64] or "host"
        pid = info.get("pid")
        pid_part = str(pid) if isinstance(pid, int) and not isinstance(pid, bool) else "0"
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000)) + \
            f"_{now // 1000 % 1_000_000:06d}"
        base = f"{host}-{pid_part}-{stamp}"
        for n in range(1000):
            name = base + (f"-{n}" if n else "") + FILE_SUFFIX
            path = self.dir / name
            if name not in self._names and not path.exists():
                self._names.add(name)
                return path
        raise RecordingError("cannot name a record file", str(self.dir))

    def open(self, path: Path) -> Any:
        """Start a file (created on the writer thread); returns its handle."""
        handle: dict[str, Any] = {"path": path, "fd": -1}
        self._q.put(("open", handle, b""))
        return handle

    def write(self, handle: Any, data: bytes) -> None:
        """Append bytes to a file (in order, on the writer thread)."""
        self._q.put(("write", handle, data))

    def close_file(self, handle: Any) -> None:
        """Close a file once what was written before is on disk."""
        self._q.put(("close", handle, b""))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the thread."""
        self._q.put(("stop", None, b""))
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            op, handle, data = self._q.get()
            if op == "stop":
                return
            try:
                if op == "open":
                    handle["fd"] = os.open(handle["path"], os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                           | getattr(os, "O_CLOEXEC", 0), 0o644)
                elif op == "write" and handle["fd"] >= 0:
                    view = memoryview(data)
                    while view:
                        n = os.write(handle["fd"], view)
                        view = view[n:]
                    self.bytes_written += len(data)
                elif op == "close" and handle["fd"] >= 0:
                    os.close(handle["fd"])
                    handle["fd"] = -1
            except OSError as err:
                self.errors.append(f"{handle['path']}: {err}")
                if handle["fd"] >= 0:
                    with contextlib.suppress(OSError):
                        os.close(handle["fd"])
                handle["fd"] = -2  # stop writing this file


class LiveRecording:
    """A recording growing from live streams; see the module docstring.

    `on_data` is called (on the event loop) after each batch of messages; a UI refreshes
    from `recording.refresh()` at its own pace.
    """

    def __init__(self, label: str, *, record_dir: str | os.PathLike[str] | None = None,
                 stream_limit: int = STREAM_BYTES_MAX, history: bool = True) -> None:
        self.recording = Recording.live(label)
        self.targets: list[LiveTarget] = []
        self.stream_limit = stream_limit
        self.history = history
        self.on_data: Callable[[], None] | None = None
        self.record: RecordFiles | None = RecordFiles(record_dir) if record_dir else None
        self._servers: list[asyncio.Server] = []
        self._protocols: set[_Sink] = set()
        self.started = time.monotonic()

    # ------------------------------------------------------------------ connecting

    async def attach(self, addr: str, *, timeout: float = CONNECT_TIMEOUT) -> LiveTarget:
        """Attach to a process accepting debuggers at `addr` (`host:port`); returns once it
        said HELLO. Raises `LiveConnectError` (one line) when it cannot."""
        host, port = _split(addr)
        target = LiveTarget(addr, "attach")
        loop = asyncio.get_running_loop()
        proto = _Sink(self, target, attach=True)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: proto, host, port), timeout)
            await asyncio.wait_for(asyncio.shield(proto.greeted), timeout)
        except (TimeoutError, OSError) as err:
            proto.abort()
            why = str(err) or ("no answer" if isinstance(err, TimeoutError)
                               else type(err).__name__)
            raise LiveConnectError(f"cannot attach to {addr}: {why}") from None
        if target.state != "connected":
            raise LiveConnectError(f"cannot attach to {addr}: {target.reason}")
        self.targets.append(target)
        return target

    async def listen(self, addr: str = "127.0.0.1:0") -> str:
        """Accept pushing processes on `addr`; returns the address listened on."""
        host, port = _split(addr)
        loop = asyncio.get_running_loop()

        def made() -> _Sink:
            target = LiveTarget("", "push")
            return _Sink(self, target, attach=False)

        try:
            server = await loop.create_server(made, host, port)
        except OSError as err:
            raise LiveConnectError(f"cannot listen on {addr}: {err}") from None
        self._servers.append(server)
        sock = server.sockets[0].getsockname()
        return f"{sock[0]}:{sock[1]}"

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until every attached process sent its history (READY) or closed; False on
        timeout."""
        waits = [t.ready.wait() for t in self.targets if t.kind == "attach"]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Say goodbye to every peer, stop listening, finish the record files."""
        for server in self._servers:
            server.close()
        for proto in list(self._protocols):
            proto.close("the debugger closed", bye=True)
        self._servers.clear()
        await asyncio.sleep(0)
        if self.record is not None:
            record, self.record = self.record, None
            await asyncio.get_running_loop().run_in_executor(None, record.close)

    # ------------------------------------------------------------------ counters

    @property
    def dropped(self) -> int:
        """Transitions the senders dropped because this debugger did not keep up."""
        return sum(t.dropped for t in self.targets)

    @property
    def bytes_in(self) -> int:
        """Bytes of records received."""
        return sum(t.bytes_in for t in self.targets)

    @property
    def connected(self) -> int:
        """Connections open now."""
        return sum(1 for t in self.targets if t.connected)

    def _changed(self) -> None:
        if self.on_data is not None:
            self.on_data()


class _Sink(asyncio.Protocol):
    """One live connection on the debugger's side (attaching, or accepted from a pusher)."""

    def __init__(self, live: LiveRecording, target: LiveTarget, *, attach: bool) -> None:
        self.live = live
        self.target = target
        self.attach = attach
        self.reader = MessageReader(preface=not attach)
        self.transport: asyncio.Transport | None = None
        self.greeted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self._hello = False
        self._timer: asyncio.TimerHandle | None = None
        self._files: dict[int, Any] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.live._protocols.add(self)
        peer = transport.get_extra_info("peername")
        if not self.attach:
            self.target.addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT, self._no_hello)
        if self.attach:
            transport.write(PREFACE + control(Msg.HELLO, 0, {
                "v": VERSION, "role": "attach", "history": self.live.history,
                "who": "amdbg"}))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.reader.deliver(data, self._message, lambda: self.closed)
        except LiveProtocolError as err:
            self.close(f"protocol error: {err}", bye=False)
        except RecordingError as err:
            self.close(f"not a recording: {err}", bye=False)
        self.live._changed()

    def _message(self, kind: int, stream: int, payload: bytes) -> None:
        target = self.target
        live = self.live
        rec = live.recording
        if not self._hello:
            if kind == Msg.BYE:
                body = read_control(kind, payload)
                self.close(_reason(body, "refused"), bye=False)
                return
            if kind != Msg.HELLO:
                raise LiveProtocolError(f"expected HELLO, got {Msg(kind).name}")
            body = read_control(kind, payload)
            role = check_hello(body, ("source", "refused") if self.attach else ("push",))
            if role == "refused":
                target.reason = "refused"
                return  # its BYE says why
            self._hello = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            target.process = {k: body[k] for k in ("host", "pid", "argv0") if k in body}
            target.state = "connected"
            if not self.attach:
                assert self.transport is not None
                self.transport.write(control(Msg.HELLO, 0, {"v": VERSION, "role": "sink"}))
                live.targets.append(target)
            if not self.greeted.done():
                self.greeted.set_result(None)
            return
        if kind == Msg.DATA:
            buf = target.streams.get(stream)
            if buf is None:
                raise LiveProtocolError(f"DATA for stream {stream}, which is not open")
            target.bytes_in += len(payload)
            unclosed = rec.feed(buf, payload)
            if unclosed > BLOCK_MAX:
                raise LiveProtocolError(f"stream {stream} sent {unclosed} bytes without closing "
                                        "a block")
            handle = self._files.get(stream)
            if handle is not None and live.record is not None:
                live.record.write(handle, payload)
        elif kind == Msg.OPEN:
            body = read_control(kind, payload)
            if stream in target.streams or stream == 0:
                raise LiveProtocolError(f"stream {stream} opened twice")
            if len(target.streams) >= STREAMS_MAX:
                raise LiveProtocolError(f"more than {STREAMS_MAX} streams")
            buf = rec.add_stream(f"live://{target.addr}/{stream}", live.stream_limit)
            target.streams[stream] = buf
            target.all_streams.append(buf)
            if live.record is not None:
                self._files[stream] = live.record.open(live.record.new_file(body))
        elif kind == Msg.CLOSE:
            body = read_control(kind, payload)
            buf = target.streams.pop(stream, None)
            if buf is None:
                raise LiveProtocolError(f"CLOSE of stream {stream}, which is not open")
            rec.end_stream(buf, _reason(body, "closed"))
            self._close_file(stream)
        elif kind == Msg.STATS:
            body = read_control(kind, payload)
            dropped = body.get("dropped")
            if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped >= 0:
                target.dropped_by_stream[stream] = dropped
        elif kind == Msg.READY:
            target.ready.set()
        elif kind == Msg.BYE:
            self.close(_reason(read_control(kind, payload), "closed by the process"), bye=False)
        else:
            raise LiveProtocolError(f"unexpected {Msg(kind).name}")

    def _close_file(self, stream: int) -> None:
        handle = self._files.pop(stream, None)
        if handle is not None and self.live.record is not None:
            self.live.record.close_file(handle)

    def _no_hello(self) -> None:
        self._timer = None
        if not self._hello:
            self.close(f"no HELLO within {HELLO_TIMEOUT:g}s", bye=False)

    def eof_received(self) -> bool | None:
        self.close("the process closed the connection", bye=False)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(f"connection lost: {exc}" if exc else "connection closed")
        self.live._changed()

    def abort(self) -> None:
        """Drop the connection without a word (a failed attach)."""
        if self.transport is not None:
            self.transport.abort()
        self._finish("aborted")

    def close(self, reason: str, *, bye: bool) -> None:
        """Close the connection (with a BYE if asked); its streams end."""
        transport = self.transport
        if bye and transport is not None and not self.closed:
            with contextlib.suppress(Exception):
                transport.write(control(Msg.BYE, 0, {"reason": reason}))
        self._finish(reason)
        if transport is not None:
            transport.close()

    def _finish(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        target = self.target
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        target.state = "closed"
        if not target.reason or target.reason == "refused":
            target.reason = reason
        for stream, buf in list(target.streams.items()):
            self.live.recording.end_stream(buf, f"disconnected: {reason}")
            self._close_file(stream)
        target.streams.clear()
        target.ready.set()
        self.live._protocols.discard(self)
        if not self.greeted.done():
            self.greeted.set_result(None)


def _reason(body: dict[str, Any], default: str) -> str:
    reason = body.get("reason")
    return reason[:1000] if isinstance(reason, str) and reason else default


def _split(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    try:
        num = int(port)
    except ValueError:
        num = -1
    if not sep or not 0 <= num <= 65535:
        raise LiveConnectError(f"{addr!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", num


__all__ = ["CONNECT_TIMEOUT", "LiveConnectError", "LiveRecording", "LiveTarget", "RecordFiles"]
