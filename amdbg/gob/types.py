"""Gob type descriptions: the built-in types and the `wireType` definitions a stream carries.

A gob stream is self-describing: before a value of a user type is sent, the stream defines
that type (a struct's field names and field type ids, a slice's element type, ...). `WireType`
is one such definition; `BUILTIN_TYPES` are the ones every stream knows, including the
`wireType` struct itself, so type definitions are read by the ordinary struct decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import GobError
from .wire import (
    ARRAY_TYPE,
    BOOL,
    BYTES,
    COMMON_TYPE,
    COMPLEX,
    FIELD_TYPE,
    FIELD_TYPE_SLICE,
    FLOAT,
    GOB_ENCODER_TYPE,
    INT,
    INTERFACE,
    MAP_TYPE,
    SLICE_TYPE,
    STRING,
    STRUCT_TYPE,
    UINT,
    WIRE_TYPE,
)

#: kinds of types; the last three are values that encode themselves (Go's GobEncoder,
#: BinaryMarshaler, TextMarshaler), sent as opaque bytes
PRIMITIVE_KINDS = ("bool", "int", "uint", "float", "bytes", "string", "complex")
OPAQUE_KINDS = ("gob_encoder", "binary_marshaler", "text_marshaler")
#: wireType's fields, in order, and the kind each one defines
WIRE_FIELDS = (("ArrayT", "array"), ("SliceT", "slice"), ("StructT", "struct"),
               ("MapT", "map"), ("GobEncoderT", "gob_encoder"),
               ("BinaryMarshalerT", "binary_marshaler"), ("TextMarshalerT", "text_marshaler"))


@dataclass(frozen=True, slots=True)
class WireType:
    """One type: its id, kind, Go name, and what it is made of (by type id)."""

    id: int
    kind: str
    name: str = ""
    #: element type (array, slice, map)
    elem: int = 0
    #: key type (map)
    key: int = 0
    #: number of elements (array)
    length: int = 0
    #: (name, type id) of each field, in field-number order (struct)
    fields: tuple[tuple[str, int], ...] = ()
    #: the id written inside the definition when it differs from `id` (0: the same); Go's
    #: encoder does so for self-encoding types, and re-encoding keeps it
    inner_id: int = 0

    @property
    def label(self) -> str:
        """A readable name for messages: the Go name, or the kind and id."""
        return self.name or f"{self.kind}#{self.id}"

    def refs(self) -> tuple[int, ...]:
        """Type ids this type refers to."""
        if self.kind == "struct":
            return tuple(t for _, t in self.fields)
        if self.kind == "map":
            return (self.key, self.elem)
        if self.kind in ("array", "slice"):
            return (self.elem,)
        return ()


def _struct(tid: int, name: str, *fields: tuple[str, int]) -> WireType:
    return WireType(tid, "struct", name, fields=fields)


BUILTIN_TYPES: dict[int, WireType] = {
    BOOL: WireType(BOOL, "bool", "bool"),
    INT: WireType(INT, "int", "int"),
    UINT: WireType(UINT, "uint", "uint"),
    FLOAT: WireType(FLOAT, "float", "float"),
    BYTES: WireType(BYTES, "bytes", "[]byte"),
    STRING: WireType(STRING, "string", "string"),
    COMPLEX: WireType(COMPLEX, "complex", "complex"),
    INTERFACE: WireType(INTERFACE, "interface", "interface"),
    WIRE_TYPE: _struct(WIRE_TYPE, "wireType", ("ArrayT", ARRAY_TYPE), ("SliceT", SLICE_TYPE),
                       ("StructT", STRUCT_TYPE), ("MapT", MAP_TYPE),
                       ("GobEncoderT", GOB_ENCODER_TYPE),
                       ("BinaryMarshalerT", GOB_ENCODER_TYPE),
                       ("TextMarshalerT", GOB_ENCODER_TYPE)),
    ARRAY_TYPE: _struct(ARRAY_TYPE, "arrayType", ("CommonType", COMMON_TYPE), ("Elem", INT),
                        ("Len", INT)),
    COMMON_TYPE: _struct(COMMON_TYPE, "CommonType", ("Name", STRING), ("Id", INT)),
    SLICE_TYPE: _struct(SLICE_TYPE, "sliceType", ("CommonType", COMMON_TYPE), ("Elem", INT)),
    STRUCT_TYPE: _struct(STRUCT_TYPE, "structType", ("CommonType", COMMON_TYPE),
                         ("Field", FIELD_TYPE_SLICE)),
    FIELD_TYPE: _struct(FIELD_TYPE, "fieldType", ("Name", STRING), ("Id", INT)),
    FIELD_TYPE_SLICE: WireType(FIELD_TYPE_SLICE, "slice", "[]*fieldType", elem=FIELD_TYPE),
    MAP_TYPE: _struct(MAP_TYPE, "mapType", ("CommonType", COMMON_TYPE), ("Key", INT),
                      ("Elem", INT)),
    GOB_ENCODER_TYPE: _struct(GOB_ENCODER_TYPE, "gobEncoderType", ("CommonType", COMMON_TYPE)),
}

#: the largest id a definition may use (Go's type ids are int32)
MAX_TYPE_ID = (1 << 31) - 1


def from_wire(tid: int, wire: dict[str, Any], max_fields: int) -> WireType:
    """The `WireType` a decoded `wireType` struct describes, for type id `tid`.

    Exactly one of its fields must be set; referenced ids must be positive. Whether they are
    defined is checked when a value of the type is read (definitions may refer forward).
    """
    present = [(f, kind) for f, kind in WIRE_FIELDS if f in wire]
    if len(present) != 1:
        names = ", ".join(f for f, _ in present) or "none"
        raise GobError(f"type definition {tid} must set exactly one kind (sets {names})")
    field, kind = present[0]
    body = wire[field]
    common = body.get("CommonType") or {}
    name = common.get("Name", "")
    label = name or f"{kind}#{tid}"
    inner = common.get("Id", tid)
    inner_id = inner if isinstance(inner, int) and inner != tid else 0

    def ref(key: str) -> int:
        value = body.get(key, 0)
        if not isinstance(value, int) or not 0 < value <= MAX_TYPE_ID:
            raise GobError(f"type {label}: {key} refers to invalid type id {value}")
        return value

    if kind == "struct":
        fields = body.get("Field") or []
        if len(fields) > max_fields:
            raise GobError(f"type {label} has {len(fields)} fields (limit {max_fields})")
        out = []
        for i, f in enumerate(fields):
            fid = f.get("Id", 0)
            if not isinstance(fid, int) or not 0 < fid <= MAX_TYPE_ID:
                raise GobError(f"type {label}: field {i} refers to invalid type id {fid}")
            out.append((str(f.get("Name", "")), fid))
        return WireType(tid, kind, name, fields=tuple(out), inner_id=inner_id)
    if kind == "slice":
        return WireType(tid, kind, name, elem=ref("Elem"), inner_id=inner_id)
    if kind == "array":
        length = body.get("Len", 0)
        if not isinstance(length, int) or length < 0:
            raise GobError(f"type {label}: negative array length {length}")
        return WireType(tid, kind, name, elem=ref("Elem"), length=length, inner_id=inner_id)
    if kind == "map":
        return WireType(tid, kind, name, key=ref("Key"), elem=ref("Elem"), inner_id=inner_id)
    return WireType(tid, kind, name, inner_id=inner_id)


def to_wire(t: WireType) -> dict[str, Any]:
    """The `wireType` struct value (as the encoder takes it) describing `t`."""
    common: dict[str, Any] = {}
    if t.name:
        common["Name"] = t.name
    common["Id"] = t.inner_id or t.id
    kind_field = next(f for f, kind in WIRE_FIELDS if kind == t.kind)
    body: dict[str, Any] = {"CommonType": common}
    if t.kind == "struct":
        body["Field"] = [{"Name": n, "Id": i} for n, i in t.fields]
    elif t.kind in ("slice", "array"):
        body["Elem"] = t.elem
        if t.kind == "array":
            body["Len"] = t.length
    elif t.kind == "map":
        body["Key"] = t.key
        body["Elem"] = t.elem
    return {kind_field: body}


__all__ = ["BUILTIN_TYPES", "MAX_TYPE_ID", "OPAQUE_KINDS", "PRIMITIVE_KINDS", "WIRE_FIELDS",
           "WireType", "from_wire", "to_wire"]
