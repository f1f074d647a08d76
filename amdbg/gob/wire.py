"""Gob's primitive encodings (unsigned/signed integers, floats, strings) and built-in type ids.

Unsigned integers below 128 are one byte; larger ones are a byte holding the negated byte
count followed by that many big-endian bytes. Signed integers put the sign in the low bit
(`n << 1`, or `~n << 1 | 1` when negative). Floats are the float64 bits byte-reversed and sent
as an unsigned integer. Strings and byte slices are a count followed by the bytes.
"""

from __future__ import annotations

import struct

from .errors import GobError

#: built-in type ids every gob stream knows without a definition
BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX, INTERFACE = 1, 2, 3, 4, 5, 6, 7, 8
#: the type-description types (used to read and write type definitions)
WIRE_TYPE, ARRAY_TYPE, COMMON_TYPE, SLICE_TYPE, STRUCT_TYPE, FIELD_TYPE = 16, 17, 18, 19, 20, 21
FIELD_TYPE_SLICE, MAP_TYPE, GOB_ENCODER_TYPE = 22, 23, 24
#: user-defined types are numbered from here (Go's encoder starts at 65; older ones at 64)
FIRST_USER_ID = 64

_DOUBLE = struct.Struct(">d")


def read_uint(b: bytes, p: int) -> tuple[int, int]:
    """(value, next position) of the unsigned integer at `p`; IndexError when cut short."""
    x = b[p]
    if x < 0x80:
        return x, p + 1
    n = 256 - x
    if n > 8:
        raise GobError(f"unsigned integer with {n} bytes (at most 8)", offset=p)
    end = p + 1 + n
    if end > len(b):
        raise IndexError
    return int.from_bytes(b[p + 1:end], "big"), end


def read_int(b: bytes, p: int) -> tuple[int, int]:
    """(value, next position) of the signed integer at `p`."""
    u, p = read_uint(b, p)
    return (~(u >> 1) if u & 1 else u >> 1), p


def float_from_uint(u: int) -> float:
    """The float64 a gob unsigned integer carries (its bytes reversed)."""
    return float(_DOUBLE.unpack(u.to_bytes(8, "little"))[0])


def put_uint(out: bytearray, x: int) -> None:
    """Append the encoding of unsigned `x` (0 <= x < 2**64)."""
    if x < 0x80:
        out.append(x)
        return
    if x >= 1 << 64:
        raise GobError(f"unsigned integer {x} does not fit 64 bits")
    raw = x.to_bytes((x.bit_length() + 7) // 8, "big")
    out.append(256 - len(raw))
    out += raw


def int_to_uint(x: int) -> int:
    """A signed integer's unsigned form (sign in the low bit)."""
    if not -(1 << 63) <= x < 1 << 63:
        raise GobError(f"integer {x} does not fit 64 bits")
    return (~x << 1) | 1 if x < 0 else x << 1


def put_int(out: bytearray, x: int) -> None:
    """Append the encoding of signed `x`."""
    put_uint(out, int_to_uint(x))


def float_to_uint(x: float) -> int:
    """The unsigned integer gob sends for float `x`."""
    return int.from_bytes(_DOUBLE.pack(x), "little")


def put_bytes(out: bytearray, data: bytes) -> None:
    """Append a count and the bytes."""
    put_uint(out, len(data))
    out += data


__all__ = [
    "ARRAY_TYPE", "BOOL", "BYTES", "COMMON_TYPE", "COMPLEX", "FIELD_TYPE", "FIELD_TYPE_SLICE",
    "FIRST_USER_ID", "FLOAT", "GOB_ENCODER_TYPE", "INT", "INTERFACE", "MAP_TYPE", "SLICE_TYPE",
    "STRING", "STRUCT_TYPE", "UINT", "WIRE_TYPE", "float_from_uint", "float_to_uint",
    "int_to_uint", "put_bytes", "put_int", "put_uint", "read_int", "read_uint",
]
