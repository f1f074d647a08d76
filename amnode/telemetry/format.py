"""Byte layout of amnode recordings: segment headers, frames, record kinds, flags and limits.

This module is the contract between the writer and every reader (also readers in other
languages, see docs/recording-format.md); it holds constants and the smallest codecs only.

A recording file is a sequence of *segments*; each starts with a segment header (magic, major and
minor version, a msgpack map describing the process) followed by *frames*. A frame is a fixed
32-byte little-endian header, a msgpack body and a CRC-32 trailer, so a reader can tell a complete
frame from a torn one without trusting anything after it.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum
from typing import Any

import msgpack

#: First 8 bytes of every segment (PNG-style: a non-ASCII byte, a name, CR LF to catch mangling).
MAGIC = b"\x89AMREC\r\n"
#: The `format` value of every segment header.
FORMAT_NAME = "amnode-recording"
#: Readers refuse segments with a larger major version; minor versions only add optional things.
VERSION_MAJOR = 1
VERSION_MINOR = 0
#: File name suffix of recording files inside a recording directory.
FILE_SUFFIX = ".amrec"

#: magic, major (u16), minor (u16), header body length (u32); then the body and a CRC-32 (u32).
SEGMENT_PREFIX = struct.Struct("<8sHHI")
#: marker (u16), kind (u8), flags (u8), body length (u32), machine number (u32), sequence (u32),
#: wall time in ns (i64), transition id hash (u64); then the body and a CRC-32 (u32).
FRAME_HEADER = struct.Struct("<HBBIIIqQ")
CRC = struct.Struct("<I")
#: Frame marker: the bytes F5 9F (never valid UTF-8, so text does not fake it).
FRAME_MARK = 0x9FF5
FRAME_MARK_BYTES = struct.pack("<H", FRAME_MARK)
FRAME_OVERHEAD = FRAME_HEADER.size + CRC.size


class Kind(IntEnum):
    """Record kinds (frame header byte 2). Readers skip kinds they do not know."""

    SCHEMA = 1
    TRANSITION = 2
    QUEUED = 3
    DISPOSE = 4


# frame header flags (byte 3)
FLAG_ACCEPTED = 0x01  #: transition: accepted (not canceled)
FLAG_AUTO = 0x02  #: transition / queued: made by Auto states
FLAG_CHECK = 0x04  #: transition / queued: a can_add/can_remove dry run
FLAG_HEALTH = 0x08  #: transition: an add of exactly Heartbeat or Healthcheck
FLAG_FULL_CLOCK = 0x10  #: transition: `k` holds the full clock, not a delta
FLAG_ERROR = 0x20  #: transition: Exception or an Err* state is active after it
FLAG_PREPENDED = 0x40  #: queued: put at the queue's front (runs next, queue tick 0)
FLAG_CHANGED = 0x80  #: transition: the clock after differs from the clock before

# step encoding: [type, from, to, relation] or, for handler steps,
# [type, from, to, relation, handler_flags, handler_name, duration_ns]
STEP_FINAL = 0x01
STEP_ENTER = 0x02
STEP_SELF = 0x04

# limits; the writer keeps within them, readers reject frames beyond them
MAX_BODY = 16 * 1024 * 1024  #: bytes of one frame body
MAX_SEGMENT_HEADER = 64 * 1024  #: bytes of a segment header body
MAX_STR = 1024 * 1024  #: bytes of one msgpack string
MAX_ARRAY = 1_000_000  #: elements of one msgpack array
MAX_MAP = 100_000  #: entries of one msgpack map
ARG_VALUE_MAX = 100  #: characters of one rendered arg value ("..." marks a cut)
ARG_KEY_MAX = 64  #: characters of one arg key
ARGS_MAX_KEYS = 64  #: args per record; more are summarised under the key "..."
LOG_LINE_MAX = 16 * 1024  #: characters of one log line
LOG_LINES_MAX = 1000  #: log lines per list (during / before one transition)
STEPS_MAX = 10_000  #: steps per transition
FULL_CLOCK_EVERY = 64  #: a transition record carries a full clock at least this often
DELTA_MIN_STATES = 16  #: machines with at most this many states always get full clocks

_unpackb = msgpack.unpackb
_packb = msgpack.packb
_crc32 = zlib.crc32


def unpack_body(data: bytes | memoryview) -> Any:
    """Decode msgpack with the strict whitelist: nil, bool, int, float, str, array, map only.

    bin and ext (timestamps included) are refused, map keys must be strings and every size is
    capped, so a hostile file can neither run code nor exhaust memory. Raises ValueError.
    """
    return _unpackb(
        data, raw=False, strict_map_key=True, use_list=True, max_bin_len=0, max_ext_len=0,
        max_str_len=MAX_STR, max_array_len=MAX_ARRAY, max_map_len=MAX_MAP,
    )


def pack_body(value: Any) -> bytes:
    """Encode a body (plain data only; the writer never produces bin or ext)."""
    return _packb(value, use_bin_type=True)


def id_hash(tx_id: str) -> int:
    """The u64 lookup hint stored for a transition id (readers confirm against the body).

    Exactly 16 ASCII hex digits (the ids amnode makes) give their value; anything else gives the
    CRC-32 of its UTF-8 bytes.
    """
    if len(tx_id) == 16 and tx_id.isascii() and tx_id.isalnum() and tx_id[1] not in "xX":
        try:
            return int(tx_id, 16)
        except ValueError:
            pass
    return _crc32(tx_id.encode("utf-8", "surrogatepass"))


def encode_segment_header(fields: dict[str, Any]) -> bytes:
    """A complete segment header: prefix, msgpack map (with format and version added), CRC-32."""
    body = pack_body({"format": FORMAT_NAME, "major": VERSION_MAJOR, "minor": VERSION_MINOR,
                      **fields})
    if len(body) > MAX_SEGMENT_HEADER:
        raise ValueError("segment header too large")
    head = SEGMENT_PREFIX.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, len(body)) + body
    return head + CRC.pack(_crc32(head))


def encode_frame(kind: int, flags: int, mno: int, seq: int, wall_ns: int, txh: int,
                 body: bytes) -> bytes:
    """One complete frame (header, body, CRC-32 over both)."""
    head = FRAME_HEADER.pack(FRAME_MARK, kind, flags, len(body), mno, seq, wall_ns, txh)
    return head + body + CRC.pack(_crc32(body, _crc32(head)))


__all__ = [
    "ARGS_MAX_KEYS", "ARG_KEY_MAX", "ARG_VALUE_MAX", "CRC", "DELTA_MIN_STATES", "FILE_SUFFIX",
    "FLAG_ACCEPTED", "FLAG_AUTO", "FLAG_CHANGED", "FLAG_CHECK", "FLAG_ERROR", "FLAG_FULL_CLOCK",
    "FLAG_HEALTH", "FLAG_PREPENDED",
    "FORMAT_NAME", "FRAME_HEADER", "FRAME_MARK", "FRAME_MARK_BYTES", "FRAME_OVERHEAD",
    "FULL_CLOCK_EVERY", "LOG_LINES_MAX", "LOG_LINE_MAX", "MAGIC", "MAX_ARRAY", "MAX_BODY",
    "MAX_MAP", "MAX_SEGMENT_HEADER", "MAX_STR", "SEGMENT_PREFIX", "STEPS_MAX", "STEP_ENTER",
    "STEP_FINAL", "STEP_SELF", "VERSION_MAJOR", "VERSION_MINOR", "Kind", "encode_frame",
    "encode_segment_header", "id_hash", "pack_body", "unpack_body",
]
