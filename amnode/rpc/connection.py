"""One aRPC connection: an asyncio protocol that frames, dispatches, replies and keeps a heartbeat.

Incoming frames are processed inline and in wire order: responses call their reply callback,
requests and notifications go to the handler (server or client). Writes go straight to the
transport, so frames leave in the order they are produced. Hostile input closes the connection
with a logged reason; the handler learns why in `on_closed`. A frame is refused before its body
is buffered when it is longer than its message kind allows (`frame_limit`), and a frame still
incomplete after `frame_timeout` closes the connection (docs/arpc-protocol.md "Limits").
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from .errors import (
    ConnectionLostError,
    ErrorCode,
    InvalidParamsError,
    ProtocolViolation,
    RpcError,
    RpcTimeoutError,
    UnknownMethodError,
    error_from_wire,
)
from .frames import Codec, FrameError, FrameReader
from .limits import FrameLimit, describe
from .protocol import NOTIFY, REQUEST, RESPONSE, peek_envelope
from .typed_args import DecodeLimitError

log = logging.getLogger("amnode.rpc")

#: the heartbeat's clock (a hook for tests: a fake clock makes heartbeats deterministic)
_now = time.monotonic

#: Reply callback: (error or None, body). Called inline when the response frame is processed.
ReplyCallback = Callable[[RpcError | None, Any], None]

#: Close the connection when this many bytes wait in the write buffer (the peer stopped reading).
MAX_WRITE_BUFFER = 64 * 1024 * 1024


class ConnHandler(Protocol):
    """What a connection calls; implemented by `Server` and `Client` themselves."""

    def on_request(self, conn: Connection, seq: int, method: int, body: Any) -> None:
        """A request arrived; answer with `conn.reply` or `conn.reply_error` (now or later)."""

    def on_notify(self, conn: Connection, method: int, body: Any) -> None:
        """A notification arrived (pings are handled by the connection)."""

    def on_closed(self, conn: Connection, reason: str, error: BaseException | None) -> None:
        """The connection closed; `error` is None for an orderly close."""


class Connection(asyncio.Protocol):
    """Framing, request ids, replies and heartbeat over one asyncio transport."""

    def __init__(self, codec: Codec, *, name: str = "conn", handler: ConnHandler | None = None,
                 requests: frozenset[int] = frozenset(), notifies: frozenset[int] = frozenset(),
                 ping_out: int = 0, ping_in: int = 0, ping_interval: float = 5.0,
                 on_made: Callable[[Connection], None] | None = None,
                 frame_limit: FrameLimit | None = None, frame_timeout: float = 0.0,
                 check_above: int = 0) -> None:
        self.codec = codec
        self.name = name
        self.handler = handler
        self.requests = requests
        self.notifies = notifies
        self.ping_out = ping_out
        self.ping_in = ping_in
        #: seconds between pings when idle (0 disables the heartbeat)
        self.ping_interval = ping_interval
        #: the peer's ping interval, learned in the handshake
        self.peer_heartbeat = 0.0
        self.on_made = on_made
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        #: bytes a frame of each message kind may have (None: only `reader.max_frame`)
        self.frame_limit = frame_limit
        #: seconds a started frame may take to arrive (0: no limit)
        self.frame_timeout = frame_timeout
        self.reader = FrameReader(codec.max_frame,
                                  self._check_head if frame_limit is not None else None,
                                  check_above)
        self.bytes_in = 0
        self.bytes_out = 0
        #: pings received from the peer
        self.pings_in = 0
        self.closed = False
        self.close_reason = ""
        self.close_error: BaseException | None = None
        #: free slot for the owner (e.g. the server's per-connection sync state)
        self.data: Any = None
        self._pending: dict[int, ReplyCallback] = {}
        self._seq = 0
        self._last_recv = _now()
        self._last_send = self._last_recv
        self._timer: asyncio.TimerHandle | None = None
        self._frame_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._lost = False

    def __repr__(self) -> str:
        return f"Connection({self.name} {self.peer}{' closed' if self.closed else ''})"

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._last_recv = self._last_send = _now()
        self._arm_heartbeat()
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self._last_recv = _now()
        reader = self.reader
        try:
            payloads = reader.feed(data)
        except FrameError as err:
            self.violation(str(err), err)
            return
        if reader.buffered and self._frame_timer is None and self.frame_timeout > 0:
            self._arm_frame_timer()
        for payload in payloads:
            if self.closed:
                return
            self._dispatch(payload)

    def _check_head(self, head: bytes, n: int) -> None:
        """Refuse a frame longer than its message kind allows, before buffering its body; a
        request gets an `invalid_params` reply first, so its caller learns why."""
        assert self.frame_limit is not None
        env = peek_envelope(head)
        limit = self.frame_limit(env)
        if n <= limit:
            return
        reason = f"{describe(env)} of {n} bytes exceeds the limit of {limit} for it"
        if env is not None and env[0] == REQUEST and env[1] > 0:
            try:
                self.reply_error(env[1], InvalidParamsError(reason))
            except RpcError:
                pass
        raise FrameError(reason)

    def _arm_frame_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._frame_timer = loop.call_later(self.frame_timeout, self._frame_deadline,
                                            self.reader.completed)

    def _frame_deadline(self, completed: int) -> None:
        """A frame started `frame_timeout` ago: closed if it is still the same one, incomplete."""
        self._frame_timer = None
        reader = self.reader
        if self.closed or not reader.buffered:
            return
        if reader.completed != completed:
            self._arm_frame_timer()  # another frame is arriving now: it gets its own time
            return
        log.warning("%s: closing connection from %s: a frame of %s bytes still incomplete after "
                    "%ss", self.name, self.peer, f"{reader.buffered}+", self.frame_timeout)
        self.close(f"frame incomplete after {self.frame_timeout}s",
                   RpcTimeoutError(f"frame incomplete after {self.frame_timeout}s"))

    def eof_received(self) -> bool | None:
        self.close("peer closed the connection")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if not self.closed:
            self.closed = True
            self.close_reason = f"connection lost: {exc}" if exc else "connection closed by peer"
            self.close_error = exc
        for timer in (self._timer, self._frame_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._frame_timer = self._abort_timer = None
        pending, self._pending = self._pending, {}
        lost = ConnectionLostError(self.close_reason)
        for cb in pending.values():
            self._call_back(cb, lost, None)
        if self.handler is not None:
            try:
                self.handler.on_closed(self, self.close_reason, self.close_error)
            except Exception:
                log.exception("%s: on_closed failed", self.name)

    # --- dispatch ---

    def _dispatch(self, payload: bytes) -> None:
        codec = self.codec
        try:
            msg = codec.unpack(payload)
        except DecodeLimitError as err:
            self.violation(str(err), err)
            return
        except ProtocolViolation as err:
            loose = codec.unpack_lenient(payload)
            if (type(loose) is list and len(loose) == 4 and loose[0] == REQUEST
                    and type(loose[1]) is int and loose[1] > 0):
                # a well-formed request with disallowed contents: refuse it, keep the connection
                log.warning("%s: rejected request %s from %s: %s", self.name, loose[2], self.peer,
                            err)
                self.reply_error(loose[1], InvalidParamsError(str(err)))
                return
            self.violation(str(err), err)
            return
        if type(msg) is not list or not msg or type(msg[0]) is not int:
            self.violation("malformed envelope")
            return
        kind = msg[0]
        if kind == RESPONSE:
            if len(msg) != 4 or type(msg[1]) is not int:
                self.violation("malformed response envelope")
                return
            cb = self._pending.pop(msg[1], None)
            if cb is None:
                log.debug("%s: response to unknown seq %s ignored", self.name, msg[1])
                return
            error = msg[2]
            if error is None:
                self._call_back(cb, None, msg[3])
                return
            if (type(error) is not list or len(error) != 2 or type(error[0]) is not int
                    or type(error[1]) is not str):
                self.violation("malformed error in response")
                return
            self._call_back(cb, error_from_wire(error[0], error[1]), None)
        elif kind == REQUEST:
            if len(msg) != 4 or type(msg[1]) is not int or msg[1] <= 0 or type(msg[2]) is not int:
                self.violation("malformed request envelope")
                return
            seq, method = msg[1], msg[2]
            if method not in self.requests:
                self.reply_error(seq, UnknownMethodError(f"unknown method {method}"))
                return
            handler = self.handler
            if handler is None:
                self.reply_error(seq, RpcError("not ready"))
                return
            try:
                handler.on_request(self, seq, method, msg[3])
            except ProtocolViolation as err:
                self.reply_error(seq, err)
                self.violation(str(err), err)
            except RpcError as err:
                self.reply_error(seq, err)
            except Exception as err:
                log.exception("%s: request %s failed", self.name, method)
                self.reply_error(seq, RpcError(f"{type(err).__name__}: {err}"))
        elif kind == NOTIFY:
            if len(msg) != 3 or type(msg[1]) is not int:
                self.violation("malformed notification envelope")
                return
            method = msg[1]
            if method == self.ping_in:
                self.pings_in += 1
                return
            if method not in self.notifies:
                log.warning("%s: unknown notification %s from %s ignored", self.name, method,
                            self.peer)
                return
            if self.handler is None:
                return
            try:
                self.handler.on_notify(self, method, msg[2])
            except ProtocolViolation as err:
                self.violation(str(err), err)
            except Exception:
                log.exception("%s: notification %s failed", self.name, method)
        else:
            self.violation(f"unknown envelope type {kind}")

    def _call_back(self, cb: ReplyCallback, err: RpcError | None, body: Any) -> None:
        try:
            cb(err, body)
        except ProtocolViolation as exc:
            self.violation(str(exc), exc)
        except Exception:
            log.exception("%s: reply callback failed", self.name)

    # --- sending ---

    def _write(self, frame: bytes) -> None:
        transport = self.transport
        if self.closed or transport is None:
            raise ConnectionLostError(self.close_reason or "not connected")
        transport.write(frame)
        self.bytes_out += len(frame)
        self._last_send = _now()
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.close("peer stopped reading (write buffer full)", RpcTimeoutError("stalled"))

    def call(self, method: int, body: Any, cb: ReplyCallback) -> int:
        """Send a request; `cb` runs inline with its response. Returns the request id."""
        if self.closed:
            raise ConnectionLostError(self.close_reason or "not connected")
        seq = self._seq + 1
        if seq > 0xFFFFFFFF:
            seq = 1
        while seq in self._pending:
            seq += 1
        self._seq = seq
        frame = self.codec.frame([REQUEST, seq, method, body])
        self._pending[seq] = cb
        try:
            self._write(frame)
        except BaseException:
            self._pending.pop(seq, None)
            raise
        return seq

    def forget(self, seq: int) -> None:
        """Drop the reply callback of a request (its response will be ignored)."""
        self._pending.pop(seq, None)

    def notify(self, method: int, body: Any = None) -> None:
        """Send a notification (no response)."""
        self._write(self.codec.frame([NOTIFY, method, body]))

    def reply(self, seq: int, body: Any = None) -> None:
        """Answer request `seq`; silently dropped once the connection is closed."""
        if self.closed:
            return
        try:
            frame = self.codec.frame([RESPONSE, seq, None, body])
        except InvalidParamsError as err:
            self.reply_error(seq, RpcError(f"unencodable reply: {err}"))
            return
        self._write(frame)

    def reply_error(self, seq: int, err: BaseException) -> None:
        """Answer request `seq` with an error."""
        if self.closed:
            return
        code = err.code if isinstance(err, RpcError) else ErrorCode.RPC
        self._write(self.codec.frame([RESPONSE, seq, [int(code), str(err)], None]))

    # --- closing ---

    def violation(self, reason: str, err: BaseException | None = None) -> None:
        """Close because the peer sent hostile or malformed input; logged as a warning."""
        if self.closed:
            return
        log.warning("%s: closing connection from %s: %s", self.name, self.peer, reason)
        self.close(f"protocol violation: {reason}", err or ProtocolViolation(reason))

    def close(self, reason: str = "closed", error: BaseException | None = None) -> None:
        """Close after flushing queued writes; pending calls fail with ConnectionLostError."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.close_error = error
        if error is not None and not isinstance(error, ProtocolViolation):
            log.info("%s: closing connection to %s: %s", self.name, self.peer, reason)
        transport = self.transport
        if transport is None:
            return
        if isinstance(error, RpcTimeoutError):
            transport.abort()  # the peer is dead or stalled: nothing to flush
            return
        transport.close()
        # a peer that never reads would keep a graceful close pending forever
        try:
            self._abort_timer = asyncio.get_running_loop().call_later(1.0, self._force_abort)
        except RuntimeError:
            transport.abort()

    def _force_abort(self) -> None:
        self._abort_timer = None
        if not self._lost and self.transport is not None:
            self.transport.abort()

    # --- heartbeat ---

    @property
    def idle_timeout(self) -> float:
        """Seconds without any received byte after which the peer counts as dead."""
        return 3 * max(self.ping_interval, self.peer_heartbeat)

    def _arm_heartbeat(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.ping_interval > 0 and not self.closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.ping_interval / 2, self._heartbeat)

    def _heartbeat(self) -> None:
        self._timer = None
        if self.closed:
            return
        now = _now()
        idle = now - self._last_recv
        if idle > self.idle_timeout:
            self.close(f"peer silent for {idle:.2f}s (heartbeat timeout)",
                       RpcTimeoutError("heartbeat timeout"))
            return
        if self.ping_out and now - self._last_send >= self.ping_interval * 0.9:
            try:
                self.notify(self.ping_out)
            except RpcError:
                return
        self._arm_heartbeat()

    @property
    def pending_count(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)


__all__ = ["MAX_WRITE_BUFFER", "ConnHandler", "Connection", "ReplyCallback", "log"]
