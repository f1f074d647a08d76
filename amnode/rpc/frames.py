"""Framing and msgpack: 4-byte big-endian length + one msgpack value, with a size limit.

`Codec` turns values into frames and payloads back into values (strict: str/bytes map keys,
registered ext types only); `FrameReader` cuts a byte stream into payloads and rejects a length
above the limit before buffering it.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import InvalidParamsError, ProtocolViolation
from .typed_args import DEFAULT_REGISTRY, ArgsRegistry, DecodeError

#: Default maximum payload size of one frame (bytes, without the 4-byte header).
MAX_FRAME = 16 * 1024 * 1024
#: Default maximum payload size a server accepts before a connection's valid Hello (a Hello
#: listing thousands of states fits); it limits what an unauthenticated peer makes it buffer.
MAX_HELLO_FRAME = 256 * 1024
HEADER_SIZE = 4


class FrameError(ProtocolViolation):
    """The byte stream is not valid aRPC framing (zero or oversized length)."""


class Codec:
    """msgpack encoder/decoder bound to a typed-args registry and a frame size limit."""

    __slots__ = ("_default", "_ext_hook", "_packer", "max_frame", "registry")

    def __init__(self, registry: ArgsRegistry | None = None, max_frame: int = MAX_FRAME) -> None:
        self.registry = registry or DEFAULT_REGISTRY
        self.max_frame = max_frame
        self._default = self.registry.default
        self._ext_hook = self.registry.ext_hook
        self._packer = msgpack.Packer(default=self._default, use_bin_type=True)

    def pack(self, obj: Any) -> bytes:
        """msgpack bytes of `obj`; raises InvalidParamsError for values not allowed on the wire."""
        try:
            return self._packer.pack(obj)
        except (TypeError, ValueError, OverflowError) as err:
            self._packer.reset()
            raise InvalidParamsError(str(err)) from None

    def frame(self, obj: Any) -> bytes:
        """One complete frame (header + payload) for `obj`."""
        payload = self.pack(obj)
        n = len(payload)
        if n > self.max_frame:
            raise InvalidParamsError(f"frame of {n} bytes exceeds the limit of {self.max_frame}")
        return n.to_bytes(4, "big") + payload

    def unpack(self, payload: bytes | memoryview) -> Any:
        """Decode one frame payload strictly; raises DecodeError on anything not allowed."""
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=True,
                                   ext_hook=self._ext_hook)
        except DecodeError:
            raise
        except Exception as err:
            raise DecodeError(f"undecodable frame: {type(err).__name__}: {err}") from None

    @staticmethod
    def unpack_lenient(payload: bytes | memoryview) -> Any:
        """Best-effort decode (ext types as None) used only to answer a rejected request."""
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=False,
                                   ext_hook=lambda code, data: None)
        except Exception:
            return None


class FrameReader:
    """Incremental splitter of a byte stream into frame payloads."""

    __slots__ = ("_buf", "_need", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        #: bytes the buffered partial frame needs in total (0 while its header is incomplete)
        self._need = 0

    def _check(self, n: int) -> None:
        if n == 0:
            raise FrameError("zero-length frame")
        if n > self.max_frame:
            raise FrameError(f"frame length {n} exceeds the limit of {self.max_frame}")

    def feed(self, data: bytes) -> list[bytes]:
        """Append received bytes; return every complete payload. Raises FrameError."""
        buf = self._buf
        if buf:
            buf += data
            if self._need and len(buf) < self._need:
                return []
            data = bytes(buf)
            buf.clear()
            self._need = 0
        out: list[bytes] = []
        size = len(data)
        pos = 0
        while size - pos >= HEADER_SIZE:
            n = int.from_bytes(data[pos:pos + HEADER_SIZE], "big")
            self._check(n)
            end = pos + HEADER_SIZE + n
            if end > size:
                self._need = HEADER_SIZE + n
                break
            out.append(data[pos + HEADER_SIZE:end])
            pos = end
        if pos < size:
            buf += data[pos:] if pos else data
        return out

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)


__all__ = ["HEADER_SIZE", "MAX_FRAME", "MAX_HELLO_FRAME", "Codec", "FrameError", "FrameReader"]
