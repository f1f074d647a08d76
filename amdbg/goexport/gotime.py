"""Go's `time.Time` binary form (what gob carries for the `Time` field) <-> Unix nanoseconds.

Layout (Go's MarshalBinary): a version byte (1, or 2 with an extra byte of offset seconds),
int64 seconds since 0001-01-01 UTC, int32 nanoseconds, int16 zone offset in minutes (-1 for
UTC), all big-endian. Only the instant matters here; the zone is written as UTC.
"""

from __future__ import annotations

import struct

#: seconds from 0001-01-01 to 1970-01-01 (Go's unixToInternal)
UNIX_TO_INTERNAL = 62_135_596_800
_V1 = struct.Struct(">BqiH")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def time_to_ns(raw: bytes) -> int | None:
    """Unix ns of a marshaled time, or None when the bytes are not one."""
    if len(raw) not in (15, 16) or raw[0] not in (1, 2) or (raw[0] == 2) != (len(raw) == 16):
        return None
    _, sec, nsec, _ = _V1.unpack_from(raw)
    if not 0 <= nsec < 1_000_000_000:
        return None
    ns = (sec - UNIX_TO_INTERNAL) * 1_000_000_000 + nsec
    # recordings keep times as int64 ns (years 1678..2262); anything else is not a real time
    return ns if INT64_MIN <= ns <= INT64_MAX else None


def ns_to_time(ns: int) -> bytes:
    """The marshaled UTC time of Unix ns `ns` (version 1)."""
    sec, nsec = divmod(ns, 1_000_000_000)
    return _V1.pack(1, sec + UNIX_TO_INTERNAL, nsec, 0xFFFF)


__all__ = ["UNIX_TO_INTERNAL", "ns_to_time", "time_to_ns"]
