"""The live stream protocol: recordings over a socket (docs/recording-format.md "Live streams").

A connection starts with the 8-byte preface `\\x89AMLIVE\\n` from the side that connects, then
both sides exchange *messages*: a 12-byte little-endian header (type u8, flags u8 = 0,
reserved u16 = 0, stream u32, payload length u32) and the payload. Control payloads are
msgpack maps read with the recording format's strict whitelist; DATA payloads are the bytes
of one process's recording (a segment header, then blocks of frames closed by check records:
format 2 unchanged), cut anywhere. One connection carries several streams (one per process:
a supervisor relays its workers'), told apart by their stream number.

Everything a peer sends is bounded before it is buffered: a control payload to 64 KiB, a
DATA payload to 1 MiB, the streams of a connection to 1024, the preface and HELLO to 10
seconds; what breaks a rule raises `LiveProtocolError`, and the connection (only that one) is
closed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from amnode.machine.errors import AmnodeError

from .format import MAX_BODY, pack_body, unpack_body

#: what the connecting side sends first (a non-ASCII byte, as the recording magic: an aRPC
#: port tells it from an aRPC frame, whose first byte is a length's high byte, 0)
PREFACE = b"\x89AMLIVE\n"
#: the protocol version (HELLO `v`); a peer with another major version is refused
VERSION = 1
HEADER = struct.Struct("<BBHII")
#: control payloads (HELLO, OPEN, CLOSE, STATS, READY, BYE) at most
CONTROL_MAX = 64 * 1024
#: a DATA payload at most (senders cut longer data into several)
DATA_MAX = 1024 * 1024
#: streams open at once on one connection
STREAMS_MAX = 1024
#: seconds the connecting side has for the preface and its HELLO (and to get the reply)
HELLO_TIMEOUT = 10.0
#: bytes of a stream's current block (not yet closed by a check record) at most: writers close
#: a block every write, at 256 frames, and frames are at most 16 MiB
BLOCK_MAX = 2 * MAX_BODY
#: bytes one stream may bring into a debugger at most, unless told otherwise
STREAM_BYTES_MAX = 4 * 1024 * 1024 * 1024


class Msg(IntEnum):
    """Message types (header byte 0)."""

    #: the first message of each side: a map (`v`, `role`, and role-specific keys)
    HELLO = 1
    #: a stream starts: a map describing its process (`host`, `pid`, `argv0`, `via`)
    OPEN = 2
    #: bytes of a stream's recording
    DATA = 3
    #: a stream ended: a map (`reason`)
    CLOSE = 4
    #: a stream's sender counters: a map (`dropped`: transitions it could not send, total)
    STATS = 5
    #: every stream that existed at the attach has sent its history (stream 0, empty map)
    READY = 6
    #: the sender is closing the connection: a map (`reason`)
    BYE = 7


CONTROL = frozenset(Msg) - {Msg.DATA}


class LiveProtocolError(AmnodeError, ValueError):
    """A peer broke the live stream protocol (the connection is closed)."""


def message(kind: Msg | int, stream: int = 0, payload: bytes = b"") -> bytes:
    """One message: header and payload."""
    return HEADER.pack(int(kind), 0, 0, stream, len(payload)) + payload


def control(kind: Msg | int, stream: int = 0, body: dict[str, Any] | None = None) -> bytes:
    """A control message with a msgpack map payload."""
    payload = pack_body(body or {})
    if len(payload) > CONTROL_MAX:
        raise LiveProtocolError(f"{Msg(kind).name} payload of {len(payload)} bytes is too big")
    return message(kind, stream, payload)


def data_messages(stream: int, data: bytes) -> list[bytes]:
    """DATA messages carrying `data` (cut into payloads of at most DATA_MAX bytes)."""
    if len(data) <= DATA_MAX:
        return [message(Msg.DATA, stream, data)]
    view = memoryview(data)
    return [message(Msg.DATA, stream, bytes(view[i:i + DATA_MAX]))
            for i in range(0, len(data), DATA_MAX)]


def read_control(kind: int, payload: bytes) -> dict[str, Any]:
    """A control payload as a map (strict whitelist); LiveProtocolError otherwise."""
    try:
        body = unpack_body(payload) if payload else {}
    except ValueError as err:
        raise LiveProtocolError(f"bad {Msg(kind).name} payload: {err}") from None
    if not isinstance(body, dict):
        raise LiveProtocolError(f"{Msg(kind).name} payload is not a map")
    return body


def check_hello(body: dict[str, Any], roles: tuple[str, ...]) -> str:
    """The role a HELLO asks for, if it is one of `roles` and the version matches."""
    version = body.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        raise LiveProtocolError(f"unsupported live protocol version {version!r} "
                                f"(this side speaks {VERSION})")
    role = body.get("role")
    if role not in roles:
        raise LiveProtocolError(f"unexpected role {role!r} (expected {' or '.join(roles)})")
    return str(role)


class MessageReader:
    """Cuts received bytes into messages, enforcing the bounds (see the module docstring).

    With `preface`, the bytes must start with PREFACE (the accepting side's reader)."""

    def __init__(self, *, preface: bool) -> None:
        self._need_preface = preface
        self._buf = bytearray()
        #: messages returned so far
        self.count = 0

    def deliver(self, data: bytes, handle: Callable[[int, int, bytes], None],
                closed: Callable[[], bool]) -> None:
        """Feed `data`, handing each complete message to `handle` until `closed()` says the
        handler closed the connection; bound violations raise `LiveProtocolError`."""
        for kind, stream, payload in self.feed(data):
            handle(kind, stream, payload)
            if closed():
                return

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Append bytes; return every complete message as (type, stream, payload)."""
        buf = self._buf
        buf += data
        if self._need_preface:
            n = min(len(buf), len(PREFACE))
            if bytes(buf[:n]) != PREFACE[:n]:
                raise LiveProtocolError("not a live stream connection (bad preface)")
            if len(buf) < len(PREFACE):
                return []
            del buf[:len(PREFACE)]
            self._need_preface = False
        out: list[tuple[int, int, bytes]] = []
        pos = 0
        size = len(buf)
        hs = HEADER.size
        while size - pos >= hs:
            kind, flags, reserved, stream, length = HEADER.unpack_from(buf, pos)
            if flags or reserved:
                raise LiveProtocolError("message header with non-zero flags")
            if kind == Msg.DATA:
                if length > DATA_MAX:
                    raise LiveProtocolError(f"DATA payload of {length} bytes exceeds the limit "
                                            f"of {DATA_MAX}")
            elif kind in CONTROL:
                if length > CONTROL_MAX:
                    raise LiveProtocolError(f"{Msg(kind).name} payload of {length} bytes exceeds "
                                            f"the limit of {CONTROL_MAX}")
            else:
                raise LiveProtocolError(f"unknown message type {kind}")
            end = pos + hs + length
            if end > size:
                break
            out.append((kind, stream, bytes(buf[pos + hs:end])))
            pos = end
        if pos:
            del buf[:pos]
        self.count += len(out)
        return out

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held back."""
        return len(self._buf)


__all__ = ["BLOCK_MAX", "CONTROL", "CONTROL_MAX", "DATA_MAX", "HEADER", "HELLO_TIMEOUT",
           "PREFACE", "STREAMS_MAX", "STREAM_BYTES_MAX", "VERSION", "LiveProtocolError",
           "MessageReader", "Msg", "check_hello", "control", "data_messages", "message",
           "read_control"]
