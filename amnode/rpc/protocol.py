"""aRPC messages: envelopes, method ids and every body, with strict validation.

Envelopes are msgpack arrays: request `[0, seq, method, body]`, response `[1, seq, error, body]`
(`error` is nil or `[code, message]`) and notification `[2, method, body]`. Handshake bodies are
maps with short keys; hot-path bodies are positional arrays. See docs/arpc-protocol.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from amnode.machine import State

from .errors import ProtocolViolation

#: Version sent in Hello; a server refuses any other with error PROTOCOL_VERSION.
PROTOCOL_VERSION = 1

REQUEST = 0
RESPONSE = 1
NOTIFY = 2

#: Longest accepted state or machine name on the wire.
MAX_NAME = 1024
#: Most states a schema may have on the wire (indexes are uint16 in Go).
MAX_STATES = 65535
#: Longest schema hash (`sh`) and session secret (`sid`) accepted on the wire.
MAX_TOKEN = 64
#: Largest client nonce (`n`).
MAX_NONCE = (1 << 63) - 1
#: The longest heartbeat interval (`hb`, seconds) a peer's idle timeout is based on by default;
#: a longer announced one is clamped to it (`Limits.max_heartbeat`).
MAX_HEARTBEAT = 60.0


class Method(IntEnum):
    """Method ids; client->server below 64, server->client from 64."""

    HELLO = 1
    HANDSHAKE = 2
    ADD = 3
    ADD_NS = 4
    REMOVE = 5
    SET = 6
    SYNC = 7
    ARGS = 8
    BYE = 9
    PING = 10
    REMOVE_NS = 11
    SET_NS = 12

    SET_CLOCK = 64
    SET_CLOCK_MANY = 65
    SEND_PAYLOAD = 66
    SCHEMA_CHANGE = 67
    SERVER_BYE = 68
    SENDING_PAYLOAD = 69
    SERVER_PING = 70


#: client->server methods answered with a response
SERVER_CALLS = frozenset({Method.HELLO, Method.HANDSHAKE, Method.ADD, Method.REMOVE, Method.SET,
                          Method.SYNC, Method.ARGS})
#: client->server notifications
SERVER_NOTIFIES = frozenset({Method.ADD_NS, Method.REMOVE_NS, Method.SET_NS, Method.BYE,
                             Method.PING})
#: server->client methods answered with a response
CLIENT_CALLS = frozenset({Method.SEND_PAYLOAD})
#: server->client notifications
CLIENT_NOTIFIES = frozenset({Method.SET_CLOCK, Method.SET_CLOCK_MANY, Method.SCHEMA_CHANGE,
                             Method.SERVER_BYE, Method.SENDING_PAYLOAD, Method.SERVER_PING})

#: mutation method id -> mutation type (0 add, 1 remove, 2 set)
MUTATION_CALLS: dict[int, int] = {Method.ADD: 0, Method.REMOVE: 1, Method.SET: 2}
MUTATION_NOTIFIES: dict[int, int] = {Method.ADD_NS: 0, Method.REMOVE_NS: 1, Method.SET_NS: 2}


# --- envelope heads, read before the body is buffered or decoded ---

#: (kind, seq, method) of an envelope: seq 0 for notifications, method -1 for responses
Envelope = tuple[int, int, int]

#: Bytes that always hold an envelope's head: an array header and three integers.
ENVELOPE_HEAD = 32

_INT_SIZES = {0xcc: (1, False), 0xcd: (2, False), 0xce: (4, False), 0xcf: (8, False),
              0xd0: (1, True), 0xd1: (2, True), 0xd2: (4, True), 0xd3: (8, True)}


def _head_int(b: bytes, pos: int) -> tuple[int, int] | None:
    """A msgpack integer at `pos`: (value, next position), None if it is not one (or cut)."""
    if pos >= len(b):
        return None
    c = b[pos]
    if c < 0x80:
        return c, pos + 1
    if c >= 0xe0:
        return c - 0x100, pos + 1
    spec = _INT_SIZES.get(c)
    if spec is None:
        return None
    size, signed = spec
    end = pos + 1 + size
    if end > len(b):
        return None
    return int.from_bytes(b[pos + 1:end], "big", signed=signed), end


def peek_envelope(head: bytes) -> Envelope | None:
    """The kind, seq and method from the first bytes of a frame (`ENVELOPE_HEAD` are always
    enough), without decoding the rest; None if they are not the head of an envelope (see
    docs/arpc-protocol.md, 3. Envelopes)."""
    if not head:
        return None
    c = head[0]
    if 0x90 <= c <= 0x9f:
        size, pos = c - 0x90, 1
    elif c == 0xdc and len(head) >= 3:
        size, pos = int.from_bytes(head[1:3], "big"), 3
    elif c == 0xdd and len(head) >= 5:
        size, pos = int.from_bytes(head[1:5], "big"), 5
    else:
        return None
    first = _head_int(head, pos)
    if first is None:
        return None
    kind, pos = first
    if kind == NOTIFY and size == 3:
        method = _head_int(head, pos)
        return None if method is None else (kind, 0, method[0])
    if kind not in (REQUEST, RESPONSE) or size != 4:
        return None
    seq = _head_int(head, pos)
    if seq is None:
        return None
    if kind == RESPONSE:
        return kind, seq[0], -1
    method = _head_int(head, seq[1])
    return None if method is None else (kind, seq[0], method[0])


# --- validation helpers ---

def is_int(v: Any) -> bool:
    """True for a msgpack integer (bool excluded)."""
    return type(v) is int


def _str(v: Any, what: str, allow_empty: bool = False, max_len: int = MAX_NAME) -> str:
    if type(v) is not str or len(v) > max_len or (not allow_empty and not v):
        raise ProtocolViolation(f"{what}: expected a {'' if allow_empty else 'non-empty '}"
                                f"string of at most {max_len} characters")
    return v


def _names(v: Any, what: str) -> list[str]:
    if type(v) is not list or len(v) > MAX_STATES:
        raise ProtocolViolation(f"{what}: expected a list of state names")
    for s in v:
        _str(s, what)
    if len(set(v)) != len(v):
        raise ProtocolViolation(f"{what}: duplicate state names")
    return v


def _ints(v: Any, what: str, minimum: int | None = 0) -> list[int]:
    if type(v) is not list:
        raise ProtocolViolation(f"{what}: expected a list of integers")
    for x in v:
        if type(x) is not int or (minimum is not None and x < minimum):
            raise ProtocolViolation(f"{what}: expected integers >= {minimum}")
    return v


def _int(v: Any, what: str, minimum: int | None = 0, maximum: int | None = None) -> int:
    if (type(v) is not int or (minimum is not None and v < minimum)
            or (maximum is not None and v > maximum)):
        raise ProtocolViolation(f"{what}: expected an integer >= {minimum}"
                                + (f" and <= {maximum}" if maximum is not None else ""))
    return v


def _bool(v: Any, what: str) -> bool:
    if type(v) is not bool:
        raise ProtocolViolation(f"{what}: expected a boolean")
    return v


def _num(v: Any, what: str) -> float:
    if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
        raise ProtocolViolation(f"{what}: expected a finite number >= 0")
    return float(v)


def _compact(seconds: float) -> int | float:
    """Whole seconds as an int (1 byte on the wire instead of 9)."""
    return int(seconds) if float(seconds).is_integer() else seconds


# --- schema ---

_STATE_KEYS = ("auto", "multi", "require", "add", "remove", "after", "tags")


def schema_to_wire(schema: dict[str, State]) -> dict[str, dict[str, Any]]:
    """`{name: {key: value}}` keeping only set flags and non-empty relations."""
    out: dict[str, dict[str, Any]] = {}
    for name, st in schema.items():
        d: dict[str, Any] = {}
        if st.auto:
            d["auto"] = True
        if st.multi:
            d["multi"] = True
        for key in ("require", "add", "remove", "after", "tags"):
            val = getattr(st, key)
            if val:
                d[key] = list(val)
        out[name] = d
    return out


def schema_from_wire(v: Any, names: list[str]) -> dict[str, State]:
    """Validate a wire schema against the state names; raise ProtocolViolation."""
    if type(v) is not dict or len(v) > MAX_STATES:
        raise ProtocolViolation("schema: expected a map")
    known = set(names)
    if set(v) != known:
        raise ProtocolViolation("schema: states differ from the state names")
    out: dict[str, State] = {}
    for name, props in v.items():
        if type(props) is not dict:
            raise ProtocolViolation(f"schema: state {name} must be a map")
        kw: dict[str, Any] = {}
        for key, val in props.items():
            if key not in _STATE_KEYS:
                raise ProtocolViolation(f"schema: unknown property {key!r} of {name}")
            if key in ("auto", "multi"):
                kw[key] = _bool(val, f"schema {name}.{key}")
                continue
            if type(val) is not list:
                raise ProtocolViolation(f"schema: {name}.{key} must be a list")
            for s in val:
                _str(s, f"schema {name}.{key}")
                if key != "tags" and s not in known:
                    raise ProtocolViolation(f"schema: {name}.{key} names unknown state {s}")
            kw[key] = list(val)
        out[name] = State(**kw)
    return out


# --- handshake ---

@dataclass(slots=True)
class Hello:
    """Client -> server, first request of a connection (Go MsgCliHello)."""

    id: str
    version: int = PROTOCOL_VERSION
    sync_schema: bool = True
    schema_hash: str = ""
    sync_mutations: bool = False
    allowed: list[str] | None = None
    skipped: list[str] | None = None
    heartbeat: float = 0.0
    nonce: int = 0
    #: the session secret of an earlier Welcome ("" = a new session)
    session: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The wire form (a map; unset optional keys are omitted)."""
        d: dict[str, Any] = {"v": self.version, "id": self.id, "ss": self.sync_schema}
        if self.schema_hash:
            d["sh"] = self.schema_hash
        if self.sync_mutations:
            d["sm"] = True
        if self.allowed is not None:
            d["al"] = list(self.allowed)
        if self.skipped:
            d["sk"] = list(self.skipped)
        if self.heartbeat:
            d["hb"] = _compact(self.heartbeat)
        if self.nonce:
            d["n"] = self.nonce
        if self.session:
            d["sid"] = self.session
        return d

    @classmethod
    def from_wire(cls, v: Any) -> Hello:
        """Validate a Hello body, every field within its bounds (a server clamps `heartbeat` to
        its `Limits.max_heartbeat`); the version is checked by the caller."""
        if type(v) is not dict:
            raise ProtocolViolation("hello: expected a map")
        version = v.get("v")
        if type(version) is not int:
            raise ProtocolViolation("hello: protocol version missing")
        allowed = v.get("al")
        return cls(
            id=_str(v.get("id"), "hello.id"),
            version=version,
            sync_schema=_bool(v.get("ss", True), "hello.ss"),
            schema_hash=_str(v.get("sh", ""), "hello.sh", allow_empty=True, max_len=MAX_TOKEN),
            sync_mutations=_bool(v.get("sm", False), "hello.sm"),
            allowed=None if allowed is None else _names(allowed, "hello.al"),
            skipped=_names(v.get("sk", []), "hello.sk"),
            heartbeat=_num(v.get("hb", 0), "hello.hb"),
            nonce=_int(v.get("n", 0), "hello.n", 0, MAX_NONCE),
            session=_str(v.get("sid", ""), "hello.sid", allow_empty=True, max_len=MAX_TOKEN),
        )


@dataclass(slots=True)
class Welcome:
    """Server -> client: the Hello response and the SchemaChange body (Go MsgSrvHello)."""

    source_id: str
    names: list[str]
    time: list[int]
    queue_tick: int
    machine_tick: int = 0
    count: int = 0
    schema: dict[str, State] | None = None
    base: int = 0
    heartbeat: float = 0.0
    #: the session secret to present in the next Hello ("" in a SchemaChange)
    session: str = ""
    #: the only states the client may mutate (None = all)
    mutable: list[str] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The wire form (a map; unset optional keys are omitted)."""
        d: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": self.source_id, "names": self.names,
                             "time": self.time, "qt": self.queue_tick, "mt": self.machine_tick,
                             "count": self.count, "base": self.base}
        if self.schema is not None:
            d["schema"] = schema_to_wire(self.schema)
        if self.heartbeat:
            d["hb"] = _compact(self.heartbeat)
        if self.session:
            d["sid"] = self.session
        if self.mutable is not None:
            d["mu"] = list(self.mutable)
        return d

    @classmethod
    def from_wire(cls, v: Any) -> Welcome:
        """Validate a Hello response / SchemaChange body, every field within its bounds (a
        client clamps `heartbeat` to its `Limits.max_heartbeat`)."""
        if type(v) is not dict:
            raise ProtocolViolation("welcome: expected a map")
        if v.get("v") != PROTOCOL_VERSION:
            raise ProtocolViolation(f"welcome: protocol version {v.get('v')!r} not supported")
        names = _names(v.get("names"), "welcome.names")
        if not names:
            raise ProtocolViolation("welcome: states missing")
        time = _ints(v.get("time"), "welcome.time")
        if len(time) != len(names):
            raise ProtocolViolation("welcome: time and names differ in length")
        raw_schema = v.get("schema")
        mutable = v.get("mu")
        return cls(
            source_id=_str(v.get("id"), "welcome.id"),
            names=names,
            time=time,
            queue_tick=_int(v.get("qt"), "welcome.qt", 1),
            machine_tick=_int(v.get("mt", 0), "welcome.mt"),
            count=_int(v.get("count", len(names)), "welcome.count"),
            schema=None if raw_schema is None else schema_from_wire(raw_schema, names),
            base=_int(v.get("base", 0), "welcome.base"),
            heartbeat=_num(v.get("hb", 0), "welcome.hb"),
            session=_str(v.get("sid", ""), "welcome.sid", allow_empty=True, max_len=MAX_TOKEN),
            mutable=None if mutable is None else _names(mutable, "welcome.mu"),
        )


# --- mutations ---

def mutation_to_wire(states: list[int], mid: int, args: dict[str, Any] | None,
                     event: list[Any] | None) -> list[Any]:
    """`[states, mid, args?, event?]` with trailing nils dropped."""
    if event is not None:
        return [states, mid, args, event]
    if args:
        return [states, mid, args]
    return [states, mid]


def mutation_from_wire(v: Any) -> tuple[list[int], int, dict[str, Any] | None, list[Any] | None]:
    """Validate a mutation body; state indexes are range-checked by the server."""
    if type(v) is not list or not 2 <= len(v) <= 4:
        raise ProtocolViolation("mutation: expected [states, mid, args?, event?]")
    states = _ints(v[0], "mutation.states")
    if not states:
        raise ProtocolViolation("mutation: no states")
    mid = _int(v[1], "mutation.mid")
    args = v[2] if len(v) > 2 else None
    if args is not None and type(args) is not dict:
        raise ProtocolViolation("mutation.args: expected a map")
    event = v[3] if len(v) > 3 else None
    if event is not None and (type(event) is not list or len(event) != 3
                              or type(event[0]) is not str or type(event[1]) is not str
                              or type(event[2]) is not int):
        raise ProtocolViolation("mutation.event: expected [machine_id, tx_id, machine_time]")
    return states, mid, args, event


# --- clock updates ---

#: An update as it travels: `[pairs, dq, checksum, base]` or `[pairs, dq, checksum, base, dm]`.
Update = list


def update_to_wire(pairs: list[int], dq: int, checksum: int, base: int, dm: int) -> list[Any]:
    """Positional update; `dm` (machine tick diff) is omitted when 0."""
    if dm:
        return [pairs, dq, checksum, base, dm]
    return [pairs, dq, checksum, base]


def update_from_wire(v: Any) -> tuple[list[int], int, int, int, int]:
    """Validate an update: (pairs, dq, checksum, base, dm)."""
    if type(v) is not list or not 4 <= len(v) <= 5:
        raise ProtocolViolation("update: expected [pairs, dq, checksum, base, dm?]")
    pairs = _ints(v[0], "update.pairs", None)
    if len(pairs) % 2:
        raise ProtocolViolation("update.pairs: odd length")
    for i in range(0, len(pairs), 2):
        if pairs[i] < 0:
            raise ProtocolViolation("update.pairs: negative index")
    dq = _int(v[1], "update.dq", None)
    checksum = _int(v[2], "update.checksum")
    if checksum > 255:
        raise ProtocolViolation("update.checksum: out of range")
    base = _int(v[3], "update.base")
    dm = _int(v[4], "update.dm", None) if len(v) == 5 else 0
    return pairs, dq, checksum, base, dm


def mut_update_from_wire(v: Any) -> tuple[int, list[int], tuple[list[int], int, int, int, int]]:
    """Validate one SetClockMany element `[mutation_type, called, update]`."""
    if type(v) is not list or len(v) != 3:
        raise ProtocolViolation("mutation update: expected [type, called, update]")
    mtype = _int(v[0], "mutation update.type")
    if mtype > 2:
        raise ProtocolViolation("mutation update.type: out of range")
    return mtype, _ints(v[1], "mutation update.called"), update_from_wire(v[2])


def mutation_resp_from_wire(v: Any) -> tuple[int, Any, Any]:
    """Validate `[result, update?, muts?]`; update/muts are validated when applied."""
    if type(v) is not list or not 1 <= len(v) <= 3 or type(v[0]) is not int or v[0] < 0:
        raise ProtocolViolation("mutation response: expected [result, update?, muts?]")
    return v[0], v[1] if len(v) > 1 else None, v[2] if len(v) > 2 else None


def sync_resp_from_wire(v: Any) -> tuple[list[int], int, int, int]:
    """Validate a Sync response `[time, qt, mt, base]`."""
    if type(v) is not list or len(v) != 4:
        raise ProtocolViolation("sync response: expected [time, qt, mt, base]")
    return (_ints(v[0], "sync.time"), _int(v[1], "sync.qt", 1), _int(v[2], "sync.mt"),
            _int(v[3], "sync.base"))


# --- payloads ---

@dataclass(slots=True)
class Payload:
    """Data sent by a server to its client, delivered to the consumer's `ServerPayload`."""

    name: str
    data: Any = None
    dest: str = ""
    token: str = ""
    source: str = ""
    source_tx: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The wire form (a map; unset optional keys are omitted)."""
        return {"name": self.name, "dest": self.dest, "data": self.data, "token": self.token,
                "src": self.source, "src_tx": self.source_tx}

    @classmethod
    def from_wire(cls, v: Any) -> Payload:
        """Validate a payload body."""
        if type(v) is not dict:
            raise ProtocolViolation("payload: expected a map")
        return cls(name=_str(v.get("name"), "payload.name"),
                   data=v.get("data"),
                   dest=_str(v.get("dest", ""), "payload.dest", allow_empty=True),
                   token=_str(v.get("token", ""), "payload.token", allow_empty=True),
                   source=_str(v.get("src", ""), "payload.src", allow_empty=True),
                   source_tx=_str(v.get("src_tx", ""), "payload.src_tx", allow_empty=True))


__all__ = [
    "CLIENT_CALLS", "CLIENT_NOTIFIES", "ENVELOPE_HEAD", "MAX_HEARTBEAT", "MAX_NAME", "MAX_NONCE",
    "MAX_STATES", "MAX_TOKEN", "MUTATION_CALLS",
    "MUTATION_NOTIFIES", "NOTIFY", "PROTOCOL_VERSION", "REQUEST", "RESPONSE", "SERVER_CALLS",
    "SERVER_NOTIFIES", "Envelope", "Hello", "Method", "Payload", "Update", "Welcome", "is_int",
    "mut_update_from_wire", "mutation_from_wire", "mutation_resp_from_wire", "mutation_to_wire",
    "peek_envelope", "schema_from_wire", "schema_to_wire", "sync_resp_from_wire",
    "update_from_wire", "update_to_wire",
]
