"""Byte layout of amnode recordings: segment headers, frames, record kinds, flags and limits.

This module is the contract between the writer and every reader (also readers in other
languages, see docs/recording-format.md); it holds constants and the smallest codecs only.

A recording file is a sequence of *segments*; each starts with a segment header (magic, major and
minor version, a msgpack map describing the process) followed by *frames*. A frame is a fixed
32-byte little-endian header and a msgpack body. Frames are grouped into *blocks*, each closed by
a 32-byte check record (kind CHECK) holding the CRC-32 of the block, so a reader can verify what
it reads and tell a complete frame from a torn one. Transition bodies are msgpack arrays
(positions `TX_*`), the other kinds' bodies are maps.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum
from typing import Any

import msgpack

from amnode.machine import ARG_EXCEPTION

#: The args key under which an error transition's exception is recorded (the machine's own key).
ERROR_ARG = ARG_EXCEPTION

#: First 8 bytes of every segment (PNG-style: a non-ASCII byte, a name, CR LF to catch mangling).
MAGIC = b"\x89AMREC\r\n"
#: The `format` value of every segment header.
FORMAT_NAME = "amnode-recording"
#: Readers refuse segments with a larger major version; minor versions only add optional things.
#: 2.0: positional transition bodies, duration instead of start, id in the header, log lines
#: stored as logged (the schema's `lp` prefix is removed by readers). 1.x is not read any more.
VERSION_MAJOR = 2
VERSION_MINOR = 0
#: File name suffix of recording files inside a recording directory.
FILE_SUFFIX = ".amrec"

#: magic, major (u16), minor (u16), header body length (u32); then the body and a CRC-32 (u32).
SEGMENT_PREFIX = struct.Struct("<8sHHI")
#: marker (u16), kind (u8), flags (u8), body length (u32), machine number (u32), sequence (u32),
#: wall time in ns (i64), transition id hash (u64); then the body.
FRAME_HEADER = struct.Struct("<HBBIIIqQ")
#: a check record: marker, kind (CHECK), 0 (u8), 0 (u32: no body), frames covered (u32),
#: CRC-32 of the covered bytes (u32), wall time in ns (i64), covered length in bytes (u32),
#: CRC-32 of the record's first 28 bytes (u32)
CHECK = struct.Struct("<HBBIIIqII")
CHECK_HEAD = struct.Struct("<HBBIIIqI")
CRC = struct.Struct("<I")
#: Frame marker: the bytes F5 9F (never valid UTF-8, so text does not fake it).
FRAME_MARK = 0x9FF5
FRAME_MARK_BYTES = struct.pack("<H", FRAME_MARK)
FRAME_OVERHEAD = FRAME_HEADER.size
#: a writer closes a block after this many frames (and at every write)
BLOCK_FRAMES = 256


class Kind(IntEnum):
    """Record kinds (frame header byte 2). Readers skip kinds they do not know."""

    SCHEMA = 1
    TRANSITION = 2
    QUEUED = 3
    DISPOSE = 4
    CHECK = 5
    #: a note written by `pack()`: the frames after it in its block were salvaged from a torn
    #: tail or a damaged block of the source, so no check record ever verified them
    SALVAGED = 6


# frame header flags (byte 3)
FLAG_ACCEPTED = 0x01  #: transition: accepted (not canceled)
FLAG_AUTO = 0x02  #: transition / queued: made by Auto states
FLAG_CHECK = 0x04  #: transition / queued: a can_add/can_remove dry run
FLAG_HEALTH = 0x08  #: transition: an add of exactly Heartbeat or Healthcheck
FLAG_FULL_CLOCK = 0x10  #: transition: `k` holds the full clock, not a delta
FLAG_ERROR = 0x20  #: transition: Exception or an Err* state is active after it
FLAG_PREPENDED = 0x40  #: queued: put at the queue's front (runs next, queue tick 0)
FLAG_CHANGED = 0x80  #: transition: the clock after differs from the clock before

# transition body (kind 2): a msgpack array [mutation, outcome(, truncated)]; the mutation part
# (the same for every transition of one resolution, so writers can cache its encoding) and the
# outcome part are arrays too. Readers accept arrays of at least the REQUIRED length (missing
# trailing elements take their defaults) and ignore elements past the ones they know.
TX_MUTATION = 0  #: [mutation type, [ref] called states, [step] steps]
TX_OUTCOME = 1  #: the OUT_* array below
TX_TRUNCATED = 2  #: optional; true when steps and log lines were dropped (body limit)
TX_REQUIRED = 2
MU_TYPE = 0  #: mutation type
MU_CALLED = 1  #: [ref] called states
MU_STEPS = 2  #: [step]
MU_REQUIRED = 2
OUT_STEP_TIMES = 0  #: nil or [float]: seconds spent in each of the last len() steps
OUT_DURATION = 1  #: ns from start to end (start = frame wall time - duration)
OUT_QT = 2  #: the machine's queue tick after the transition; nil: equal to OUT_MQ
OUT_MQ = 3  #: the mutation's queue tick
OUT_QL = 4  #: queue length after the transition
OUT_K = 5  #: clock after: full or delta
OUT_KB = 6  #: full clock before, or nil
OUT_LOG = 7  #: [[level, text]] during the transition (nil or [] for none)
OUT_PRELOG = 8  #: [[level, text]] since the previous transition
OUT_ARGS = 9  #: {str: str} or nil
OUT_SRC = 10  #: [machine id, tx id, machine time] or nil
OUT_ID = 11  #: str, or nil: the header's id hint as 16 lowercase hex digits
OUT_FAIL = 12  #: optional, only after a failure: why it was canceled, a map (§5.2)
OUT_FIELDS = 13  #: elements a writer may write (the last only when there is a failure)
OUT_REQUIRED = 6  #: elements a reader requires (up to OUT_K)

# step encoding: [type, from, to, relation] or, for handler steps,
# [type, from, to, relation, handler_flags, handler_name]; durations are in OUT_STEP_TIMES
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


_FIXARRAY = tuple(bytes((0x90 | n,)) for n in range(16))


def array_header(n: int) -> bytes:
    """The msgpack header of an array of `n` elements (fixarray, array 16 or array 32)."""
    if n < 16:
        return _FIXARRAY[n]
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


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
    """One frame: header and body (blocks of frames are closed by `encode_check`)."""
    return FRAME_HEADER.pack(FRAME_MARK, kind, flags, len(body), mno, seq, wall_ns, txh) + body


def encode_check(block: bytes, frames: int, wall_ns: int) -> bytes:
    """The check record closing `block` (the bytes of `frames` whole frames)."""
    head = CHECK_HEAD.pack(FRAME_MARK, int(Kind.CHECK), 0, 0, frames, _crc32(block), wall_ns,
                           len(block))
    return head + CRC.pack(_crc32(head))


def encode_block(frames: bytes | list[bytes] | tuple[bytes, ...], count: int = 1,
                 wall_ns: int = 0) -> bytes:
    """Frames followed by their check record (`count` = how many frames `frames` holds)."""
    if not isinstance(frames, bytes):
        count = len(frames)
        frames = b"".join(frames)
    return frames + encode_check(frames, count, wall_ns)


__all__ = [
    "ARGS_MAX_KEYS", "ARG_KEY_MAX", "ARG_VALUE_MAX", "BLOCK_FRAMES", "CHECK", "CHECK_HEAD", "CRC",
    "DELTA_MIN_STATES", "FILE_SUFFIX", "FLAG_ACCEPTED", "FLAG_AUTO", "FLAG_CHANGED", "FLAG_CHECK",
    "FLAG_ERROR", "FLAG_FULL_CLOCK", "FLAG_HEALTH", "FLAG_PREPENDED", "FORMAT_NAME",
    "FRAME_HEADER", "FRAME_MARK", "FRAME_MARK_BYTES", "FRAME_OVERHEAD", "FULL_CLOCK_EVERY",
    "LOG_LINES_MAX", "LOG_LINE_MAX", "MAGIC", "MAX_ARRAY", "MAX_BODY", "MAX_MAP",
    "MAX_SEGMENT_HEADER", "MAX_STR", "MU_CALLED", "MU_REQUIRED", "MU_STEPS", "MU_TYPE", "OUT_ARGS",
    "OUT_DURATION", "OUT_FIELDS", "OUT_ID", "OUT_K", "OUT_KB", "OUT_LOG", "OUT_MQ", "OUT_PRELOG",
    "OUT_QL", "OUT_QT", "OUT_REQUIRED", "OUT_SRC", "OUT_STEP_TIMES", "SEGMENT_PREFIX", "STEPS_MAX",
    "STEP_ENTER", "STEP_FINAL", "STEP_SELF", "TX_MUTATION", "TX_OUTCOME", "TX_REQUIRED",
    "TX_TRUNCATED", "VERSION_MAJOR", "VERSION_MINOR", "Kind", "array_header", "encode_block",
    "encode_check", "encode_frame", "encode_segment_header", "id_hash", "pack_body", "unpack_body",
]
