"""Framing and msgpack: 4-byte big-endian length + one msgpack value, with size limits.

`Codec` turns values into frames and payloads back into values (strict: str/bytes map keys,
registered ext types only, typed values nested at most `max_typed_depth` deep, and at most
`max_objects` decoded values per frame); `FrameReader` cuts a byte stream into payloads and
rejects a length above its limit, or above the limit of the frame's message kind (`check`),
before buffering the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from .errors import InvalidParamsError, ProtocolViolation
from .limits import MAX_FRAME, MAX_HELLO_FRAME, MAX_OBJECTS_SERVER
from .protocol import ENVELOPE_HEAD
from .typed_args import (
    DEFAULT_REGISTRY,
    MAX_TYPED_DEPTH,
    ArgsRegistry,
    DecodeBudget,
    DecodeError,
    DecodeLimitError,
)

HEADER_SIZE = 4

#: `check(head, n)`: called once the first min(n, ENVELOPE_HEAD) payload bytes of an n-byte
#: frame are in, before the rest is buffered; raises FrameError to refuse the frame. Frames of
#: at most `check_above` bytes (the smallest limit of any kind) skip it.
HeadCheck = Callable[[bytes, int], None]


class FrameError(ProtocolViolation):
    """The byte stream is not valid aRPC framing (zero or oversized length)."""


class Codec:
    """msgpack encoder/decoder bound to a typed-args registry and size limits."""

    __slots__ = ("_default", "_ext_hook", "_packer", "max_frame", "max_objects",
                 "max_typed_depth", "registry")

    def __init__(self, registry: ArgsRegistry | None = None, max_frame: int = MAX_FRAME, *,
                 max_objects: int = MAX_OBJECTS_SERVER,
                 max_typed_depth: int = MAX_TYPED_DEPTH) -> None:
        self.registry = registry or DEFAULT_REGISTRY
        self.max_frame = max_frame
        #: values one frame may decode into (DecodeLimitError past it)
        self.max_objects = max_objects
        #: how deep typed values may nest (DecodeLimitError past it)
        self.max_typed_depth = max_typed_depth
        self._default = self.registry.default
        registry_ = self.registry

        def ext_hook(code: int, data: bytes) -> Any:
            return registry_.decode_ext(code, data, max_depth=max_typed_depth)

        self._ext_hook = ext_hook
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
        """Decode one frame payload strictly; raises DecodeError on anything not allowed
        (DecodeLimitError past a limit: the frame is hostile)."""
        if len(payload) > self.max_objects:
            return self._decode(payload, True)
        # every value takes at least one byte: the budget cannot run out, no hooks needed
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=True,
                                   ext_hook=self._ext_hook)
        except DecodeError:
            raise
        except Exception as err:
            raise DecodeError(f"undecodable frame: {type(err).__name__}: {err}") from None

    def unpack_lenient(self, payload: bytes | memoryview) -> Any:
        """Best-effort decode (ext types as None, any map keys), within the same limits; used
        only to answer a rejected request. None if even that fails."""
        try:
            return self._decode(payload, False)
        except DecodeError:
            return None

    def _decode(self, payload: bytes | memoryview, strict: bool) -> Any:
        if len(payload) <= self.max_objects:
            # every value takes at least one byte: the budget cannot run out, no hooks needed
            budget = None
            opts: dict[str, Any] = {}
        else:
            budget = DecodeBudget(self.max_objects)
            opts = budget.options()
        if not strict:
            hook: Callable[[int, bytes], Any] = _ignore_ext
        elif budget is None:
            hook = self._ext_hook
        else:
            registry, depth = self.registry, self.max_typed_depth

            def hook(code: int, data: bytes) -> Any:
                return registry.decode_ext(code, data, max_depth=depth, budget=budget)

        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=strict, ext_hook=hook,
                                   **opts)
        except DecodeError:
            raise
        except Exception as err:
            if budget is not None and isinstance(err, ValueError) and "exceeds max_" in str(err):
                # msgpack's own per-container limit (the budget's size) stopped it
                raise DecodeLimitError(f"frame decodes into more than {self.max_objects} values"
                                       f" ({err})") from None
            raise DecodeError(f"undecodable frame: {type(err).__name__}: {err}") from None


def _ignore_ext(code: int, data: bytes) -> None:
    return None


class FrameReader:
    """Incremental splitter of a byte stream into frame payloads."""

    __slots__ = ("_buf", "_need", "check", "check_above", "completed", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME, check: HeadCheck | None = None,
                 check_above: int = 0) -> None:
        self.max_frame = max_frame
        #: per-frame check of the envelope head (see HeadCheck)
        self.check = check
        #: frames of at most this many bytes are never checked (no kind's limit is smaller)
        self.check_above = check_above
        #: payloads returned so far
        self.completed = 0
        self._buf = bytearray()
        #: bytes the buffered partial frame needs before the next look (0: header incomplete)
        self._need = 0

    def _check(self, n: int) -> None:
        if n == 0:
            raise FrameError("zero-length frame")
        if n > self.max_frame:
            raise FrameError(f"frame length {n} exceeds the limit of {self.max_frame}")

    def feed(self, data: bytes) -> list[bytes]:
        """Append received bytes; return every complete payload. Raises FrameError."""
        buf = self._buf
        size = len(data)
        if not buf and size > HEADER_SIZE:
            # the common case: exactly one whole frame, too small for any kind's limit
            n = int.from_bytes(data[:HEADER_SIZE], "big")
            if n == size - HEADER_SIZE and (self.check is None or n <= self.check_above) \
                    and n <= self.max_frame:
                self.completed += 1
                return [data[HEADER_SIZE:]]
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
        check = self.check
        check_above = self.check_above
        while size - pos >= HEADER_SIZE:
            n = int.from_bytes(data[pos:pos + HEADER_SIZE], "big")
            self._check(n)
            start = pos + HEADER_SIZE
            if check is not None and n > check_above:
                head_end = start + min(n, ENVELOPE_HEAD)
                if head_end > size:
                    self._need = head_end - pos
                    break
                check(data[start:head_end], n)
            end = start + n
            if end > size:
                self._need = HEADER_SIZE + n
                break
            out.append(data[start:end])
            pos = end
        if pos < size:
            buf += data[pos:] if pos else data
        self.completed += len(out)
        return out

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)


__all__ = ["HEADER_SIZE", "MAX_FRAME", "MAX_HELLO_FRAME", "Codec", "DecodeLimitError",
           "FrameError", "FrameReader", "HeadCheck"]
