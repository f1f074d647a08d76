"""A strict, bounded reader of Go `encoding/gob` streams (see docs/go-interop.md).

    dec = Decoder(raw_bytes)
    for type_id, value in dec.values(): ...       # every top-level value
    for item in dec.elements(): ...               # or: the items of one top-level slice, one by one

Values come back as plain data: bool, int, float, complex, str, bytes, list (slices and
arrays), dict (maps; structs as {field name: value} holding only the fields the stream sent,
since gob omits zero values), `GobInterface` for interface values (None when nil) and bytes
for types that encode themselves (Go's GobEncoder / BinaryMarshaler, e.g. time.Time).
Type names and field names come from the stream's own type definitions (`Decoder.types`);
nothing is looked up elsewhere and nothing is executed.

Every problem — truncation, a malformed number, an undefined or duplicate type id, a value
nested too deep, a length beyond a limit (`Limits`) — raises `GobError` with a one-line
message naming the byte offset and the type/field path being read. Lengths are checked
against the bytes actually left before anything is allocated, so a hostile count costs
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .errors import GobError
from .limits import DEFAULT_LIMITS, Limits
from .types import BUILTIN_TYPES, OPAQUE_KINDS, WireType, from_wire
from .wire import FIRST_USER_ID, WIRE_TYPE, float_from_uint, read_int, read_uint

Dec = Callable[[bytes, int], tuple[Any, int]]


#: how a struct reads a field of each primitive kind inline (anything else: a call)
_CALL, _STR, _INT, _UINT, _BOOL = 0, 1, 2, 3, 4
_INLINE = {"string": _STR, "int": _INT, "uint": _UINT, "bool": _BOOL}


class GobInterface(NamedTuple):
    """A non-nil interface value: the concrete type's registered name, its id, the value."""

    name: str
    type_id: int
    value: Any


class _Fail(Exception):
    """Internal: a problem plus the path collected while unwinding; becomes a GobError."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.trail: list[str] = []
        #: what the innermost containers held when reading failed (complete items only)
        self.partial: Any = None


def _fail(err: BaseException, p: int) -> _Fail:
    """Turn what a decoder raised into a `_Fail` (IndexError = ran out of bytes)."""
    if isinstance(err, _Fail):
        return err
    if isinstance(err, GobError):
        return _Fail(err.reason, err.offset if err.offset >= 0 else p)
    return _Fail("unexpected end of data", p)


def _bool(b: bytes, p: int) -> tuple[Any, int]:
    x = b[p]
    if x < 0x80:
        return x != 0, p + 1
    u, p = read_uint(b, p)
    return u != 0, p


def _uint(b: bytes, p: int) -> tuple[Any, int]:
    x = b[p]
    if x < 0x80:
        return x, p + 1
    return read_uint(b, p)


def _int(b: bytes, p: int) -> tuple[Any, int]:
    u = b[p]
    if u < 0x80:
        p += 1
    else:
        u, p = read_uint(b, p)
    return (~(u >> 1) if u & 1 else u >> 1), p


def _float(b: bytes, p: int) -> tuple[Any, int]:
    u, p = read_uint(b, p)
    return float_from_uint(u), p


def _complex(b: bytes, p: int) -> tuple[Any, int]:
    re, p = read_uint(b, p)
    im, p = read_uint(b, p)
    return complex(float_from_uint(re), float_from_uint(im)), p


class Decoder:
    """Reads one gob stream held in memory; see the module docstring."""

    def __init__(self, data: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
        self.data = bytes(data)
        self.limits = limits
        #: every type known so far: the built-in ones plus the stream's definitions
        self.types: dict[int, WireType] = dict(BUILTIN_TYPES)
        #: where reading stopped (the end of the last complete message)
        self.pos = 0
        self.depth = 0
        self.items = 0
        self._decs: dict[int, Dec] = {}
        self._defined = 0
        self._base = 0  # stream offset of the message being read (for error offsets)
        self._short_ok = False
        self._nesting = 0  # types being compiled inside each other (bounded like values)
        #: True when the last message was cut short (only read with `elements(partial=True)`)
        self.truncated = False
        #: the problem that ended a partial `elements()` read, None when it read everything
        self.error: GobError | None = None
        #: the type id of the value `elements()` reads (0 before it started)
        self.value_type = 0
        #: the stream offset of that value's message (its length prefix): what precedes it
        #: is type definitions
        self.value_offset = 0
        #: how many elements that value announces
        self.count = 0
        #: the stream offsets [start, end) of the element `elements()` yielded last
        self.span = (0, 0)
        self._msg_start = 0

    # ------------------------------------------------------------------ public

    def values(self) -> Iterator[tuple[int, Any]]:
        """(type id, value) of every top-level value, reading type definitions on the way."""
        while True:
            msg = self._next_value_message()
            if msg is None:
                return
            tid, b, p = msg
            value, p = self._top(tid, b, p)
            self._done(b, p)
            yield tid, value

    def elements(self, *, partial: bool = False) -> Iterator[Any]:
        """The items of the stream's first top-level value, which must be a slice or array,
        decoded and yielded one at a time (only one item is held at once).

        With `partial=True` a damaged or truncated stream does not raise: the items before
        the damage are yielded, then the damaged item as far as it could be read (structs
        with the fields read so far, slices with their complete elements), and the problem is
        left in `error`. Otherwise the first problem raises `GobError`.
        """
        self.error = None
        self._short_ok = partial
        try:
            msg = self._next_value_message()
        except GobError as err:
            if not partial:
                raise
            self.error = err
            return
        if msg is None:
            empty = GobError("the stream holds no value", offset=self.pos)
            if not partial:
                raise empty
            self.error = empty
            return
        tid, b, p = msg
        self.value_type = tid
        self.value_offset = self._msg_start
        try:
            t = self._type(tid, p)
            if t.kind not in ("slice", "array"):
                raise GobError(f"top-level value is a {t.kind} ({t.label}), expected a slice",
                               offset=self._base + p)
            if b[p] != 0:
                raise GobError("top-level value does not start with a zero field delta",
                               offset=self._base + p)
            n, p = read_uint(b, p + 1)
            try:
                self._check_count(n, len(b) - p, t, p)
            except GobError as bad:
                if not (partial and self.truncated):
                    raise GobError(bad.reason, offset=self._base + p) from None
            if t.kind == "array" and n != t.length:
                raise GobError(f"array {t.label} has {n} elements, its type says {t.length}",
                               offset=self._base + p)
            elem = self._compile(t.elem)
            self.count = n
        except IndexError:
            short = GobError("unexpected end of data", offset=self._base + p)
            if not partial:
                raise short from None
            self.error = short
            return
        except GobError as err:
            if not partial:
                raise
            self.error = err
            return
        for i in range(n):
            start = p
            self.depth = 0
            try:
                value, p = elem(b, p)
            except (_Fail, GobError, IndexError) as err:
                f = _fail(err, start)
                f.trail.append(f"{t.label}[{i}]")
                error = self._error(f)
                if not partial:
                    raise error from None
                self.error = error
                if f.partial is not None:
                    yield f.partial
                return
            self.span = (self._base + start, self._base + p)
            yield value
        if self.truncated:
            self.error = GobError("stream ends inside a message", offset=self.pos)
            return
        try:
            self._done(b, p)
        except GobError as err:
            if not partial:
                raise
            self.error = err

    # ------------------------------------------------------------------ messages

    def _message(self) -> tuple[bytes, int] | None:
        """The next message's bytes and its stream offset, or None at the end of the stream."""
        data = self.data
        pos = self.pos
        if pos >= len(data):
            return None
        try:
            n, p = read_uint(data, pos)
        except IndexError:
            raise GobError("stream ends inside a message length", offset=pos) from None
        if n == 0:
            raise GobError("empty message", offset=pos)
        if n > self.limits.max_message:
            raise GobError(f"message of {n} bytes exceeds the limit of "
                           f"{self.limits.max_message}", offset=pos)
        if p + n > len(data):
            if not self._short_ok:
                raise GobError(f"stream ends inside a message ({len(data) - p} of {n} "
                               "bytes)", offset=pos)
            self.truncated = True  # partial reading: decode what is there
            n = len(data) - p
        self.pos = p + n
        self._base = p
        self._msg_start = pos
        return data[p:p + n], p

    def _next_value_message(self) -> tuple[int, bytes, int] | None:
        """Read type definitions up to the next value message: (type id, bytes, position)."""
        while True:
            msg = self._message()
            if msg is None:
                return None
            b, base = msg
            try:
                tid, p = read_int(b, 0)
            except IndexError:
                raise GobError("message ends inside its type id", offset=base) from None
            if tid < 0:
                try:
                    p = self._define(-tid, b, p)
                except _Fail as f:
                    raise self._error(f) from None
                if p != len(b):
                    raise GobError(f"{len(b) - p} extra bytes after type definition {-tid}",
                                   offset=base + p)
                continue
            if tid == 0:
                raise GobError("value of type id 0", offset=base)
            return tid, b, p

    def _define(self, tid: int, b: bytes, p: int) -> int:
        """Read the definition of type `tid` (a wireType struct) at `p`; the position after.
        Raises `_Fail` (offsets relative to the message)."""
        start = p
        try:
            if tid in self.types:
                what = "a built-in type" if tid < FIRST_USER_ID else "already defined"
                raise GobError(f"type id {tid} defined again ({what})", offset=p)
            self._defined += 1
            if self._defined > self.limits.max_types:
                raise GobError(f"more than {self.limits.max_types} type definitions",
                               offset=p)
            depth = self.depth
            self.depth = 0
            wire, p = self._compile(WIRE_TYPE)(b, p)
            self.depth = depth
            self.types[tid] = from_wire(tid, wire, self.limits.max_fields)
        except (_Fail, GobError, IndexError) as err:
            f = _fail(err, start)
            f.trail.append(f"type definition {tid}: ")
            raise f from None
        return p

    def _top(self, tid: int, b: bytes, p: int) -> tuple[Any, int]:
        """A top-level value: structs as they are, other kinds after a zero field delta."""
        t = self._type(tid, p)
        self.depth = 0
        start = p
        try:
            if t.kind != "struct":
                if b[p] != 0:
                    raise GobError("top-level value does not start with a zero field delta",
                                   offset=self._base + p)
                p += 1
            return self._compile(tid)(b, p)
        except (_Fail, GobError, IndexError) as err:
            raise self._error(_fail(err, start)) from None

    def _done(self, b: bytes, p: int) -> None:
        if p != len(b):
            raise GobError(f"{len(b) - p} extra bytes after a value", offset=self._base + p)

    def _type(self, tid: int, p: int) -> WireType:
        t = self.types.get(tid)
        if t is None:
            raise GobError(f"type id {tid} is used but not defined", offset=self._base + p)
        return t

    def _error(self, f: _Fail) -> GobError:
        path = "".join(reversed(f.trail))
        off = f.offset + self._base if f.offset >= 0 else -1
        return GobError(f.reason, offset=off, path=path)

    def _check_count(self, n: int, left: int, t: WireType, p: int) -> None:
        lim = self.limits
        if n > lim.max_elements:
            raise GobError(f"{t.label} with {n} elements exceeds the limit of "
                           f"{lim.max_elements}", offset=p)
        if n > left:  # every element takes at least one byte
            raise GobError(f"{t.label} claims {n} elements but only {left} bytes are left",
                           offset=p)
        self.items += n
        if self.items > lim.max_items:
            raise GobError(f"more than {lim.max_items} values in the stream", offset=p)

    # ------------------------------------------------------------------ compiled readers

    def _compile(self, tid: int) -> Dec:
        """The reader of type `tid`, built once (recursive types go through a trampoline)."""
        dec = self._decs.get(tid)
        if dec is not None:
            return dec
        t = self.types.get(tid)
        if t is None:
            raise GobError(f"type id {tid} is used but not defined")
        cell: list[Dec] = []

        def later(b: bytes, p: int) -> tuple[Any, int]:
            return cell[0](b, p)

        self._decs[tid] = later
        self._nesting += 1
        try:
            if self._nesting > self.limits.max_depth:
                raise GobError(f"type definitions nested deeper than {self.limits.max_depth} "
                               f"(at type {t.label})")
            dec = self._build(t)
        except BaseException:
            del self._decs[tid]
            raise
        finally:
            self._nesting -= 1
        cell.append(dec)
        self._decs[tid] = dec
        return dec

    def _build(self, t: WireType) -> Dec:
        kind = t.kind
        if kind == "bool":
            return _bool
        if kind == "int":
            return _int
        if kind == "uint":
            return _uint
        if kind == "float":
            return _float
        if kind == "complex":
            return _complex
        if kind in ("string", "bytes"):
            return self._string_dec(kind == "string")
        if kind in OPAQUE_KINDS:
            return self._string_dec(False)
        if kind == "interface":
            return self._interface_dec()
        if kind == "struct":
            return self._struct_dec(t)
        if kind in ("slice", "array"):
            return self._slice_dec(t)
        if kind == "map":
            return self._map_dec(t)
        raise GobError(f"type {t.label} has unknown kind {kind}")

    def _string_dec(self, text: bool) -> Dec:
        max_string = self.limits.max_string

        def string(b: bytes, p: int) -> tuple[Any, int]:
            n = b[p]
            if n < 0x80:
                p += 1
            else:
                n, p = read_uint(b, p)
                if n > max_string:
                    raise GobError(f"string of {n} bytes exceeds the limit of {max_string}",
                                   offset=p)
            end = p + n
            if end > len(b):
                raise GobError(f"string of {n} bytes runs past the end of its message",
                               offset=p)
            raw = b[p:end]
            return (raw.decode("utf-8", "replace") if text else raw), end

        return string

    def _struct_dec(self, t: WireType) -> Dec:
        names = [n for n, _ in t.fields]
        decs = [self._compile(fid) for _, fid in t.fields]
        # fields of primitive kinds are read inline (no call per field): the hot path
        kinds = [_INLINE.get(self.types[fid].kind, _CALL) for _, fid in t.fields]
        nf = len(names)
        label = t.label
        max_depth = self.limits.max_depth
        max_string = self.limits.max_string
        state = self

        def struct(b: bytes, p: int) -> tuple[Any, int]:
            depth = state.depth = state.depth + 1
            if depth > max_depth:
                raise GobError(f"values nested deeper than {max_depth}", offset=p)
            out: dict[Any, Any] = {}
            field = -1
            try:
                while True:
                    d = b[p]
                    if d < 0x80:
                        p += 1
                    else:
                        d, p = read_uint(b, p)
                    if d == 0:
                        break
                    field += d
                    if field >= nf:
                        raise GobError(f"field number {field} out of range ({label} has {nf} "
                                       "fields)", offset=p)
                    k = kinds[field]
                    if k == _CALL:
                        out[names[field]], p = decs[field](b, p)
                        continue
                    x = b[p]
                    if x < 0x80:
                        p += 1
                    elif x == 0xFE:
                        x = b[p + 1] << 8 | b[p + 2]
                        p += 3
                    else:
                        x, p = read_uint(b, p)
                    if k == _STR:
                        if x > max_string:
                            raise GobError(f"string of {x} bytes exceeds the limit of "
                                           f"{max_string}", offset=p)
                        e = p + x
                        if e > len(b):
                            raise GobError(f"string of {x} bytes runs past the end of its "
                                           "message", offset=p)
                        out[names[field]] = b[p:e].decode("utf-8", "replace")
                        p = e
                    elif k == _INT:
                        out[names[field]] = ~(x >> 1) if x & 1 else x >> 1
                    elif k == _UINT:
                        out[names[field]] = x
                    else:
                        out[names[field]] = x != 0
            except (_Fail, GobError, IndexError) as err:
                f = _fail(err, p)
                f.trail.append(f".{names[field]}" if 0 <= field < nf else f"({label})")
                if f.partial is not None and 0 <= field < nf:
                    out[names[field]] = f.partial
                f.partial = out
                raise f from None
            state.depth = depth - 1
            return out, p

        return struct

    def _slice_dec(self, t: WireType) -> Dec:
        et = self.types.get(t.elem)
        if et is None:
            raise GobError(f"type {t.label}: element type id {t.elem} is not defined")
        label = t.label
        is_array = t.kind == "array"
        length = t.length
        check = self._check_count
        max_depth = self.limits.max_depth
        state = self
        if et.kind in ("uint", "int", "bool"):
            # the common case (clocks, indexes): a tight loop, no per-element calls
            signed = et.kind == "int"
            boolean = et.kind == "bool"

            def numbers(b: bytes, p: int) -> tuple[Any, int]:
                n, p = read_uint(b, p)
                check(n, len(b) - p, t, p)
                if is_array and n != length:
                    raise GobError(f"array {label} has {n} elements, its type says {length}",
                                   offset=p)
                out: list[Any] = []
                append = out.append
                for _ in range(n):
                    x = b[p]
                    if x < 0x80:
                        p += 1
                    elif x == 0xFE:  # two bytes: clocks of busy machines, indexes
                        x = b[p + 1] << 8 | b[p + 2]
                        p += 3
                    elif x == 0xFF:
                        x = b[p + 1]
                        p += 2
                    else:
                        x, p = read_uint(b, p)
                    if signed:
                        x = ~(x >> 1) if x & 1 else x >> 1
                    elif boolean:
                        x = x != 0
                    append(x)
                return out, p

            return numbers
        if et.kind == "string":
            max_string = self.limits.max_string

            def strings(b: bytes, p: int) -> tuple[Any, int]:
                n, p = read_uint(b, p)
                check(n, len(b) - p, t, p)
                if is_array and n != length:
                    raise GobError(f"array {label} has {n} elements, its type says {length}",
                                   offset=p)
                out: list[Any] = []
                append = out.append
                for _ in range(n):
                    x = b[p]
                    if x < 0x80:
                        p += 1
                    else:
                        x, p = read_uint(b, p)
                        if x > max_string:
                            raise GobError(f"string of {x} bytes exceeds the limit of "
                                           f"{max_string}", offset=p)
                    e = p + x
                    if e > len(b):
                        raise GobError(f"string of {x} bytes runs past the end of its "
                                       "message", offset=p)
                    append(b[p:e].decode("utf-8", "replace"))
                    p = e
                return out, p

            return strings
        elem = self._compile(t.elem)

        def items(b: bytes, p: int) -> tuple[Any, int]:
            depth = state.depth = state.depth + 1
            if depth > max_depth:
                raise GobError(f"values nested deeper than {max_depth}", offset=p)
            n, p = read_uint(b, p)
            check(n, len(b) - p, t, p)
            if is_array and n != length:
                raise GobError(f"array {label} has {n} elements, its type says {length}",
                               offset=p)
            out: list[Any] = []
            append = out.append
            i = 0
            try:
                for i in range(n):  # noqa: B007 (i names the element in errors)
                    v, p = elem(b, p)
                    append(v)
            except (_Fail, GobError, IndexError) as err:
                f = _fail(err, p)
                f.trail.append(f"[{i}]")
                f.partial = out
                raise f from None
            state.depth = depth - 1
            return out, p

        return items

    def _map_dec(self, t: WireType) -> Dec:
        kt = self.types.get(t.key)
        if kt is None:
            raise GobError(f"type {t.label}: key type id {t.key} is not defined")
        if kt.kind not in ("bool", "int", "uint", "float", "string", "complex"):
            raise GobError(f"type {t.label}: map keys of kind {kt.kind} are not supported")
        key = self._compile(t.key)
        elem = self._compile(t.elem)
        check = self._check_count
        max_depth = self.limits.max_depth
        state = self

        def mapping(b: bytes, p: int) -> tuple[Any, int]:
            depth = state.depth = state.depth + 1
            if depth > max_depth:
                raise GobError(f"values nested deeper than {max_depth}", offset=p)
            n, p = read_uint(b, p)
            check(n, (len(b) - p) // 2, t, p)
            out: dict[Any, Any] = {}
            k: Any = None
            try:
                for _ in range(n):
                    k, p = key(b, p)
                    out[k], p = elem(b, p)
            except (_Fail, GobError, IndexError) as err:
                f = _fail(err, p)
                f.trail.append(f"[{k!r}]")
                raise f from None
            state.depth = depth - 1
            return out, p

        return mapping

    def _interface_dec(self) -> Dec:
        max_depth = self.limits.max_depth
        state = self

        def interface(b: bytes, p: int) -> tuple[Any, int]:
            n, p = read_uint(b, p)
            if n == 0:
                return None, p
            if n > 1024:
                raise GobError(f"interface type name of {n} bytes", offset=p)
            if p + n > len(b):
                raise IndexError
            name = b[p:p + n].decode("utf-8", "replace")
            p += n
            while True:  # type definitions may precede the concrete type id
                tid, p = read_int(b, p)
                if tid >= 0:
                    break
                p = state._define(-tid, b, p)
                _, p = read_uint(b, p)
            t = state.types.get(tid)
            if t is None:
                raise GobError(f"interface value of undefined type id {tid}", offset=p)
            size, p = read_uint(b, p)
            end = p + size
            if end > len(b):
                raise GobError(f"interface value of {size} bytes runs past its message",
                               offset=p)
            depth = state.depth = state.depth + 1
            if depth > max_depth:
                raise GobError(f"values nested deeper than {max_depth}", offset=p)
            if t.kind != "struct":
                if b[p] != 0:
                    raise GobError("interface value does not start with a zero field delta",
                                   offset=p)
                p += 1
            try:
                value, q = state._compile(tid)(b, p)
            except (_Fail, GobError, IndexError) as err:
                f = _fail(err, p)
                f.trail.append(f"({name})")
                raise f from None
            if q != end:
                raise GobError(f"interface value of {name} has {end - q} extra bytes",
                               offset=q)
            state.depth = depth - 1
            return GobInterface(name, tid, value), end

        return interface


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[tuple[int, Any]]:
    """Every top-level (type id, value) of a whole gob stream."""
    return list(Decoder(data, limits).values())


__all__ = ["Decoder", "GobInterface", "decode"]
