"""The am-dbg export layout: which Go structs and fields an export holds, checked per stream.

An export (`.gob.br`) holds one value of type `[]*Exportable`, where (field names as Go
writes them; gob matches fields by name, so older and newer layouts read alike):

    Exportable   {MsgStruct *DbgMsgStruct, MsgTxs []*DbgMsgTx, Version string}
    DbgMsgStruct {ID, StatesIndex, States map[string]State, Groups, GroupsOrder, Parent, Tags}
    State        {Auto, Multi, Require, Add, Remove, After, Tags}
    DbgMsgTx     {MachineID, ID, Clocks, QueueTick, MutQueueToken, MutQueueTick, Type,
                  CalledStates, CalledStatesIdxs, Steps, LogEntries, PreLogEntries, Queue,
                  Time, IsAuto, Accepted, IsCheck, IsQueued, Args, QueueDump, StackTrace}
    Step         {Type, RelType, IsFinal, IsSelf, IsEnter, FromState, FromStateIdx, ToState,
                  ToStateIdx, Data}
    LogEntry     {Level, Text}

`check_layout` reads the stream's own type definitions, finds these structs by position
(not by name: Go leaves some names empty), and reports fields it does not know or whose type
is not the expected one; such fields are ignored. `CURRENT_TYPES` is the layout written by
`amdbg export` (the one the current Go am-dbg writes and reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..gob.errors import GobError
from ..gob.types import OPAQUE_KINDS, WireType
from ..gob.wire import BOOL, INT, INTERFACE, STRING, UINT

#: role -> {field: expected shape}; shapes are written like Go types ("[]string", "struct")
FIELDS: dict[str, dict[str, str]] = {
    "Exportable": {"MsgStruct": "struct", "MsgTxs": "[]struct", "Version": "string"},
    "DbgMsgStruct": {"ID": "string", "StatesIndex": "[]string", "States": "map[string]struct",
                     "Groups": "map[string][]int", "GroupsOrder": "[]string",
                     "Parent": "string", "Tags": "[]string"},
    "State": {"Auto": "bool", "Multi": "bool", "Require": "[]string", "Add": "[]string",
              "Remove": "[]string", "After": "[]string", "Tags": "[]string"},
    "DbgMsgTx": {"MachineID": "string", "ID": "string", "Clocks": "[]uint", "QueueTick": "uint",
                 "MutQueueToken": "uint", "MutQueueTick": "uint", "Type": "int",
                 "CalledStates": "[]string", "CalledStatesIdxs": "[]int", "Steps": "[]struct",
                 "LogEntries": "[]struct", "PreLogEntries": "[]struct", "Queue": "int",
                 "Time": "opaque", "IsAuto": "bool", "Accepted": "bool", "IsCheck": "bool",
                 "IsQueued": "bool", "Args": "map[string]string", "QueueDump": "[]string",
                 "StackTrace": "string"},
    "Step": {"Type": "int", "RelType": "int", "IsFinal": "bool", "IsSelf": "bool",
             "IsEnter": "bool", "FromState": "string", "FromStateIdx": "int",
             "ToState": "string", "ToStateIdx": "int", "Data": "interface"},
    "LogEntry": {"Level": "int", "Text": "string"},
}
#: where each struct sits: role -> (parent role, field); Exportable is the top slice's element
PLACES: dict[str, tuple[str, str]] = {
    "DbgMsgStruct": ("Exportable", "MsgStruct"), "State": ("DbgMsgStruct", "States"),
    "DbgMsgTx": ("Exportable", "MsgTxs"), "Step": ("DbgMsgTx", "Steps"),
    "LogEntry": ("DbgMsgTx", "LogEntries"),
}


def shape(types: Mapping[int, WireType], tid: int, depth: int = 0) -> str:
    """A type written like Go would ("[]string", "map[string]struct", "opaque")."""
    t = types.get(tid)
    if t is None or depth > 8:
        return "?"
    if t.kind in ("slice", "array"):
        return "[]" + shape(types, t.elem, depth + 1)
    if t.kind == "map":
        return f"map[{shape(types, t.key, depth + 1)}]{shape(types, t.elem, depth + 1)}"
    if t.kind in OPAQUE_KINDS:
        return "opaque"
    return t.kind


def _struct_of(types: Mapping[int, WireType], tid: int) -> WireType | None:
    """The struct a field of type `tid` holds: itself, or the element of a slice / map."""
    t = types.get(tid)
    for _ in range(2):
        if t is None:
            return None
        if t.kind == "struct":
            return t
        t = types.get(t.elem) if t.kind in ("slice", "array", "map") else None
    return None


@dataclass(slots=True)
class Layout:
    """What one stream's type definitions say about the export's structs."""

    #: role -> field names present in the stream's definition (and of the expected type)
    fields: dict[str, frozenset[str]] = field(default_factory=dict)
    #: role -> fields to remove from values before use (unknown or of another type)
    ignored: dict[str, frozenset[str]] = field(default_factory=dict)
    #: one line per unknown or mistyped field
    warnings: list[str] = field(default_factory=list)

    def has(self, role: str, name: str) -> bool:
        """Whether the stream's `role` struct has field `name` (of the expected type)."""
        return name in self.fields.get(role, ())

    @property
    def version(self) -> str:
        """The layout line: "current" (indexes: CalledStatesIdxs, FromStateIdx) or "old"
        (state names: CalledStates, Step.Data)."""
        return "current" if self.has("DbgMsgTx", "CalledStatesIdxs") else "old"


def check_layout(types: Mapping[int, WireType], top: int) -> Layout:
    """Find the export's structs from the top-level type `top` and check their fields.

    Raises GobError when the stream is not an export at all (no slice of structs with a
    `MsgStruct` or `MsgTxs` field).
    """
    top_t = types.get(top)
    elem = _struct_of(types, top) if top_t is not None and top_t.kind in ("slice", "array") \
        else None
    if elem is None or not {"MsgStruct", "MsgTxs"} & {n for n, _ in elem.fields}:
        raise GobError(f"not an am-dbg export: the stream holds a {shape(types, top)}, "
                       "not a list of {MsgStruct, MsgTxs}")
    found: dict[str, WireType] = {"Exportable": elem}
    for role, (parent, name) in PLACES.items():
        p = found.get(parent)
        if p is None:
            continue
        fid = dict(p.fields).get(name)
        s = _struct_of(types, fid) if fid is not None else None
        if s is not None:
            found[role] = s
    out = Layout()
    for role, t in found.items():
        known = FIELDS[role]
        good, bad = set(), set()
        for name, fid in t.fields:
            want = known.get(name)
            got = shape(types, fid)
            if want is None:
                bad.add(name)
                out.warnings.append(f"unknown field {role}.{name} ({got}) ignored")
            elif got != want and not (want == "opaque" and got == "[]uint"):
                bad.add(name)
                out.warnings.append(f"field {role}.{name} is a {got}, expected {want}; ignored")
            else:
                good.add(name)
        out.fields[role] = frozenset(good)
        out.ignored[role] = frozenset(bad)
    return out


# ---------------------------------------------------------------------- the layout we write

def _s(tid: int, name: str, *fields: tuple[str, int]) -> WireType:
    return WireType(tid, "struct", name, fields=fields)


#: ids of the written layout (Go numbers user types from 65, in the order it meets them)
EXPORTS, EXPORTABLE, MSG_STRUCT, STATE_NAMES, STATE, SCHEMA, STRINGS, INTS, GROUPS = \
    range(64, 73)
TXS, TX, CLOCKS, STEPS, STEP, LOGS, LOG, TIME, ARGS = range(73, 82)

#: the current Go layout (asyncmachine-go v0.17 and later), as `amdbg export` writes it
CURRENT_TYPES: dict[int, WireType] = {
    EXPORTS: WireType(EXPORTS, "slice", "", elem=EXPORTABLE),
    EXPORTABLE: _s(EXPORTABLE, "Exportable", ("MsgStruct", MSG_STRUCT), ("MsgTxs", TXS),
                   ("Version", STRING)),
    MSG_STRUCT: _s(MSG_STRUCT, "DbgMsgStruct", ("ID", STRING), ("StatesIndex", STATE_NAMES),
                   ("States", SCHEMA), ("Groups", GROUPS), ("GroupsOrder", STRINGS),
                   ("Parent", STRING), ("Tags", STRINGS)),
    STATE_NAMES: WireType(STATE_NAMES, "slice", "S", elem=STRING),
    STATE: _s(STATE, "State", ("Auto", BOOL), ("Multi", BOOL), ("Require", STATE_NAMES),
              ("Add", STATE_NAMES), ("Remove", STATE_NAMES), ("After", STATE_NAMES),
              ("Tags", STRINGS)),
    SCHEMA: WireType(SCHEMA, "map", "Schema", key=STRING, elem=STATE),
    STRINGS: WireType(STRINGS, "slice", "[]string", elem=STRING),
    INTS: WireType(INTS, "slice", "[]int", elem=INT),
    GROUPS: WireType(GROUPS, "map", "map[string][]int", key=STRING, elem=INTS),
    TXS: WireType(TXS, "slice", "[]*dbg.DbgMsgTx", elem=TX),
    TX: _s(TX, "DbgMsgTx", ("MachineID", STRING), ("ID", STRING), ("Clocks", CLOCKS),
           ("QueueTick", UINT), ("MutQueueToken", UINT), ("MutQueueTick", UINT), ("Type", INT),
           ("CalledStates", STRINGS), ("CalledStatesIdxs", INTS), ("Steps", STEPS),
           ("LogEntries", LOGS), ("PreLogEntries", LOGS), ("Queue", INT), ("Time", TIME),
           ("IsAuto", BOOL), ("Accepted", BOOL), ("IsCheck", BOOL), ("IsQueued", BOOL),
           ("Args", ARGS), ("QueueDump", STRINGS), ("StackTrace", STRING)),
    CLOCKS: WireType(CLOCKS, "slice", "Time", elem=UINT),
    STEPS: WireType(STEPS, "slice", "[]*machine.Step", elem=STEP),
    STEP: _s(STEP, "Step", ("Type", INT), ("RelType", INT), ("IsFinal", BOOL), ("IsSelf", BOOL),
             ("IsEnter", BOOL), ("FromState", STRING), ("FromStateIdx", INT),
             ("ToState", STRING), ("ToStateIdx", INT), ("Data", INTERFACE)),
    LOGS: WireType(LOGS, "slice", "[]*machine.LogEntry", elem=LOG),
    LOG: _s(LOG, "LogEntry", ("Level", INT), ("Text", STRING)),
    TIME: WireType(TIME, "gob_encoder", "Time"),
    ARGS: WireType(ARGS, "map", "map[string]string", key=STRING, elem=STRING),
}

__all__ = ["CURRENT_TYPES", "EXPORTS", "FIELDS", "Layout", "check_layout", "shape"]
