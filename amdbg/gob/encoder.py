"""A gob writer: values of described types, in the byte layout Go's `encoding/gob` reads.

    enc = Encoder(types)                  # {type id: WireType}, user ids from 65
    enc.encode(top_type_id, value)        # sends missing type definitions, then the value
    data = enc.getvalue()

Values are the plain data the decoder returns (dicts for structs, lists, dicts for maps,
`GobInterface`, bytes for self-encoding types). Like Go's encoder, struct fields holding a
zero value (0, False, "", empty slice, None) are left out; maps and nested structs are sent
whenever present (Go sends empty non-nil maps), so decoding and re-encoding a stream gives
back its bytes when map orders are kept. Type definitions go out in Go's order: a type, then
the types it uses, depth first, each once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .decoder import GobInterface
from .errors import GobError
from .types import BUILTIN_TYPES, OPAQUE_KINDS, WireType, to_wire
from .wire import (
    WIRE_TYPE,
    float_to_uint,
    int_to_uint,
    put_bytes,
    put_int,
    put_uint,
)

Enc = Callable[[bytearray, Any], None]


def _is_zero(value: Any) -> bool:
    """Whether a struct field with this value is left out (Go omits zero values)."""
    return value is None or value is False or value == 0 or value == "" or value == b"" or \
        (isinstance(value, list) and not value)


class Encoder:
    """Writes one gob stream into memory; see the module docstring."""

    def __init__(self, types: Mapping[int, WireType] | None = None) -> None:
        self.types: dict[int, WireType] = dict(BUILTIN_TYPES)
        for tid, t in (types or {}).items():
            if tid in BUILTIN_TYPES or tid <= 0 or tid != t.id:
                raise GobError(f"type {t.label}: id {tid} is not a user type id")
            self.types[tid] = t
        self.out = bytearray()
        self._sent: set[int] = set(BUILTIN_TYPES)
        self._encs: dict[int, Enc] = {}
        self._nesting = 0

    def getvalue(self) -> bytes:
        """Everything written so far."""
        return bytes(self.out)

    def encode(self, tid: int, value: Any) -> None:
        """Write a top-level value of type `tid` (after any type definitions it needs)."""
        t = self._type(tid)
        self._send_types(tid)
        body = bytearray()
        put_int(body, tid)
        if t.kind != "struct":
            body.append(0)
        self._compile(tid)(body, value)
        put_uint(self.out, len(body))
        self.out += body

    def encode_elements(self, tid: int, count: int, items: Iterable[Any]) -> None:
        """Write a top-level slice of type `tid` holding `count` items, encoding one item at
        a time (only the encoded bytes are kept, never all the values at once)."""
        t = self._type(tid)
        if t.kind != "slice":
            raise GobError(f"type {t.label} is a {t.kind}, not a slice")
        self._send_types(tid)
        elem = self._compile(t.elem)
        body = bytearray()
        put_int(body, tid)
        body.append(0)
        put_uint(body, count)
        n = 0
        for item in items:
            elem(body, item)
            n += 1
        if n != count:
            raise GobError(f"{t.label}: {count} elements announced, {n} given")
        put_uint(self.out, len(body))
        self.out += body

    def element(self, tid: int, item: Any) -> bytes:
        """The bytes one item of the slice type `tid` takes inside `encode_elements`' message
        (no framing, no type definitions): a stream can be checked element by element."""
        t = self._type(tid)
        if t.kind != "slice":
            raise GobError(f"type {t.label} is a {t.kind}, not a slice")
        out = bytearray()
        self._compile(t.elem)(out, item)
        return bytes(out)

    def types_for(self, tid: int) -> bytes:
        """The type definitions `encode(tid, ...)` sends first (those not sent yet), as they
        would be written; they count as sent afterwards."""
        start = len(self.out)
        self._send_types(tid)
        return bytes(self.out[start:])

    # ------------------------------------------------------------------ types

    def _type(self, tid: int) -> WireType:
        t = self.types.get(tid)
        if t is None:
            raise GobError(f"type id {tid} is not defined")
        return t

    def _send_types(self, tid: int) -> None:
        """Define `tid` and every type it uses that was not sent yet, depth first (in Go's
        order: a type, then the types of its fields / elements)."""
        stack = [tid]
        while stack:
            cur = stack.pop()
            if cur in self._sent:
                continue
            t = self._type(cur)
            self._sent.add(cur)
            body = bytearray()
            put_int(body, -cur)
            self._compile(WIRE_TYPE)(body, to_wire(t))
            put_uint(self.out, len(body))
            self.out += body
            stack.extend(reversed(t.refs()))

    # ------------------------------------------------------------------ values

    def _compile(self, tid: int) -> Enc:
        enc = self._encs.get(tid)
        if enc is not None:
            return enc
        t = self._type(tid)
        cell: list[Enc] = []

        def later(out: bytearray, value: Any) -> None:
            cell[0](out, value)

        self._encs[tid] = later
        self._nesting += 1
        try:
            if self._nesting > 64:
                raise GobError(f"type definitions nested deeper than 64 (at type {t.label})")
            enc = self._build(t)
        except BaseException:
            del self._encs[tid]
            raise
        finally:
            self._nesting -= 1
        cell.append(enc)
        self._encs[tid] = enc
        return enc

    def _build(self, t: WireType) -> Enc:
        kind = t.kind
        label = t.label

        def bad(value: Any, want: str) -> GobError:
            return GobError(f"{label}: expected {want}, got {type(value).__name__}")

        if kind == "bool":
            def boolean(out: bytearray, value: Any) -> None:
                out.append(1 if value else 0)
            return boolean
        if kind == "int":
            def integer(out: bytearray, value: Any) -> None:
                if not isinstance(value, int):
                    raise bad(value, "an integer")
                put_uint(out, int_to_uint(value))
            return integer
        if kind == "uint":
            def unsigned(out: bytearray, value: Any) -> None:
                if not isinstance(value, int) or value < 0:
                    raise bad(value, "a non-negative integer")
                put_uint(out, value)
            return unsigned
        if kind == "float":
            def real(out: bytearray, value: Any) -> None:
                put_uint(out, float_to_uint(float(value)))
            return real
        if kind == "complex":
            def cplx(out: bytearray, value: Any) -> None:
                c = complex(value)
                put_uint(out, float_to_uint(c.real))
                put_uint(out, float_to_uint(c.imag))
            return cplx
        if kind == "string":
            def string(out: bytearray, value: Any) -> None:
                if not isinstance(value, str):
                    raise bad(value, "a string")
                put_bytes(out, value.encode("utf-8", "surrogateescape"))
            return string
        if kind == "bytes" or kind in OPAQUE_KINDS:
            def raw(out: bytearray, value: Any) -> None:
                if not isinstance(value, (bytes, bytearray)):
                    raise bad(value, "bytes")
                put_bytes(out, bytes(value))
            return raw
        if kind == "interface":
            return self._interface_enc()
        if kind == "struct":
            return self._struct_enc(t)
        if kind in ("slice", "array"):
            elem = self._compile(t.elem)
            is_array, length = kind == "array", t.length
            if self._type(t.elem).kind == "uint" and not is_array:
                def unsigned_items(out: bytearray, value: Any) -> None:
                    if not isinstance(value, (list, tuple)):
                        raise bad(value, "a list")
                    put_uint(out, len(value))
                    for v in value:
                        if type(v) is int and 0 <= v < 0x80:
                            out.append(v)
                        else:
                            elem(out, v)
                return unsigned_items

            def items(out: bytearray, value: Any) -> None:
                if not isinstance(value, (list, tuple)):
                    raise bad(value, "a list")
                if is_array and len(value) != length:
                    raise GobError(f"{label}: array of {length} elements given {len(value)}")
                put_uint(out, len(value))
                for v in value:
                    elem(out, v)
            return items
        if kind == "map":
            key, elem_m = self._compile(t.key), self._compile(t.elem)

            def mapping(out: bytearray, value: Any) -> None:
                if not isinstance(value, Mapping):
                    raise bad(value, "a mapping")
                put_uint(out, len(value))
                for k, v in value.items():
                    key(out, k)
                    elem_m(out, v)
            return mapping
        raise GobError(f"type {label} has unknown kind {kind}")

    def _struct_enc(self, t: WireType) -> Enc:
        # primitive fields are written inline (no call per field): the hot path
        fields = [(i, name, self._compile(fid), self.types[fid].kind)
                  for i, (name, fid) in enumerate(t.fields)]
        label = t.label

        def struct(out: bytearray, value: Any) -> None:
            if not isinstance(value, Mapping):
                raise GobError(f"{label}: expected a mapping of fields, got "
                               f"{type(value).__name__}")
            last = -1
            get = value.get
            for i, name, enc, kind in fields:
                v = get(name)
                if v is None:
                    continue
                try:
                    if kind == "string":
                        if not v:
                            continue
                        raw = v.encode("utf-8", "surrogateescape")
                        out.append(i - last)
                        put_uint(out, len(raw))
                        out += raw
                    elif kind == "bool":
                        if not v:
                            continue
                        out.append(i - last)
                        out.append(1)
                    elif kind == "int" and type(v) is int:
                        if not v:
                            continue
                        out.append(i - last)
                        put_uint(out, int_to_uint(v))
                    elif kind == "uint" and type(v) is int and v >= 0:
                        if not v:
                            continue
                        out.append(i - last)
                        put_uint(out, v)
                    else:
                        if kind not in ("struct", "map", "array") and _is_zero(v):
                            continue
                        put_uint(out, i - last)
                        enc(out, v)
                except AttributeError:
                    raise GobError(f"{label}.{name}: expected a string, got "
                                   f"{type(v).__name__}") from None
                except GobError as err:
                    raise GobError(f"{label}.{name}: {err.reason}") from None
                last = i
            out.append(0)

        if len(fields) > 127:  # deltas written as one byte above need < 128
            return self._struct_enc_wide(t)
        return struct

    def _struct_enc_wide(self, t: WireType) -> Enc:
        """Structs of more than 127 fields: every field through its encoder."""
        fields = [(i, name, self._compile(fid), self.types[fid].kind)
                  for i, (name, fid) in enumerate(t.fields)]
        label = t.label

        def struct(out: bytearray, value: Any) -> None:
            if not isinstance(value, Mapping):
                raise GobError(f"{label}: expected a mapping of fields, got "
                               f"{type(value).__name__}")
            last = -1
            for i, name, enc, kind in fields:
                v = value.get(name)
                if v is None:
                    continue
                if kind not in ("struct", "map", "array") and _is_zero(v):
                    continue
                put_uint(out, i - last)
                last = i
                try:
                    enc(out, v)
                except GobError as err:
                    raise GobError(f"{label}.{name}: {err.reason}") from None
            out.append(0)

        return struct

    def _interface_enc(self) -> Enc:
        def interface(out: bytearray, value: Any) -> None:
            if value is None:
                out.append(0)
                return
            if not isinstance(value, GobInterface):
                raise GobError(f"interface value must be a GobInterface, got "
                               f"{type(value).__name__}")
            if value.type_id not in self._sent:
                raise GobError(f"interface value of type {value.name}: its type "
                               f"{value.type_id} must be sent before the value")
            put_bytes(out, value.name.encode("utf-8"))
            put_int(out, value.type_id)
            inner = bytearray()
            if self._type(value.type_id).kind != "struct":
                inner.append(0)
            self._compile(value.type_id)(inner, value.value)
            put_uint(out, len(inner))
            out += inner

        return interface


def encode(types: Mapping[int, WireType], tid: int, value: Any) -> bytes:
    """One gob stream holding one value of type `tid` (and the definitions it needs)."""
    enc = Encoder(types)
    enc.encode(tid, value)
    return enc.getvalue()


__all__ = ["Encoder", "encode"]
