"""Decoding and validating record bodies: from whitelisted msgpack to the value types.

The scanner (`scan.py`) finds frames and hands their bytes here; the reader model (`reader.py`)
asks for decoded records. Everything in a body is checked against the layout of
docs/recording-format.md §5 before use: a body that does not fit raises ValueError, which the
callers turn into a `RecordingError` naming the file and offset. Nothing here touches a file.
"""

from __future__ import annotations

from typing import Any

from .format import (
    MU_REQUIRED,
    OUT_FIELDS,
    OUT_REQUIRED,
    STEP_ENTER,
    STEP_FINAL,
    STEP_SELF,
    TX_REQUIRED,
    TX_TRUNCATED,
    Kind,
    unpack_body,
)
from .records import (
    MUTATION_TYPES,
    RELATIONS,
    STEP_TYPES,
    FailureRecord,
    LogLine,
    ProcessInfo,
    SchemaVersion,
    Source,
    StepRecord,
)

_TX = int(Kind.TRANSITION)
_MISSING = object()

# a transition body, flattened (see `flat_tx_body`): mutation part, then outcome part, then
# the truncated flag
TX_MT, TX_CALLED, TX_STEPS = 0, 1, 2
(TX_STEP_TIMES, TX_DURATION, TX_QT, TX_MQ, TX_QL, TX_K, TX_KB, TX_LOG, TX_PRELOG, TX_ARGS,
 TX_SRC, TX_ID, TX_FAIL) = range(3, 3 + OUT_FIELDS)
TX_FLAT_TRUNCATED = 3 + OUT_FIELDS


def decode_body(kind: int, data: bytes | memoryview) -> Any:
    """A frame body under the whitelist: a flat padded list for transitions (`flat_tx_body`),
    a map for the other kinds. Raises ValueError."""
    body = unpack_body(data)
    if kind == _TX:
        return flat_tx_body(body)
    if not isinstance(body, dict):
        raise ValueError("record body is not a map")
    return body


def field(body: dict[str, Any], key: str, typ: type | tuple[type, ...],
          default: Any = _MISSING) -> Any:
    """`body[key]` checked against `typ` (bools are not ints); `default` when absent."""
    value = body.get(key, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise ValueError(f"missing field {key!r}")
        return default
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ValueError(f"field {key!r} has type {type(value).__name__}")
    return value


def int_list(value: Any, key: str) -> list[int]:
    """A list of ints, else ValueError naming `key`."""
    if not isinstance(value, list) or not all(type(x) is int for x in value):
        raise ValueError(f"field {key!r} must be a list of integers")
    return value


def str_list(value: Any, key: str) -> list[str]:
    """A list of strings, else ValueError naming `key`."""
    if not isinstance(value, list) or not all(type(x) is str for x in value):
        raise ValueError(f"field {key!r} must be a list of strings")
    return value


def str_map(value: Any, key: str) -> dict[str, str]:
    """A map of strings to strings (args), else ValueError naming `key`."""
    if not isinstance(value, dict) or not all(type(v) is str for v in value.values()):
        raise ValueError(f"field {key!r} must map strings to strings")
    return value


def log_lines(value: Any, key: str, prefix: str = "") -> list[LogLine]:
    """Log lines `[level, text]`, the machine's id prefix (schema `lp`) removed."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"field {key!r} must be a list")
    out = []
    plen = len(prefix)
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                and type(item[1]) is str):
            raise ValueError(f"field {key!r} holds a malformed log line")
        text = item[1]
        if plen and text.startswith(prefix):
            text = text[plen:]
        out.append(LogLine(item[0], text))
    return out


def flat_tx_body(body: Any) -> list[Any]:
    """A transition body `[mutation, outcome(, truncated)]` as one flat list (TX_* above),
    padded with None so that every known position can be read."""
    if not isinstance(body, list) or len(body) < TX_REQUIRED:
        raise ValueError(f"transition body is not an array of at least {TX_REQUIRED} elements")
    mu, out = body[0], body[1]
    if not isinstance(mu, list) or len(mu) < MU_REQUIRED:
        raise ValueError("transition mutation part is malformed")
    if not isinstance(out, list) or len(out) < OUT_REQUIRED:
        raise ValueError("transition outcome part is malformed")
    flat = mu[:3]
    flat.extend([None] * (3 - len(flat)))
    flat.extend(out[:OUT_FIELDS])
    flat.extend([None] * (3 + OUT_FIELDS - len(flat)))
    flat.append(body[TX_TRUNCATED] if len(body) > TX_TRUNCATED else None)
    return flat


def element(body: list[Any], pos: int, typ: type, default: Any = _MISSING) -> Any:
    """Element `pos` of a flat transition body, type-checked; nil gives `default`."""
    value = body[pos]
    if value is None:
        if default is _MISSING:
            raise ValueError(f"transition element {pos} is missing")
        return default
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ValueError(f"transition element {pos} has type {type(value).__name__}")
    return value


def source(value: Any) -> Source | None:
    """A mutation's source `[machine id, tx id, machine time]`, or None."""
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is str
            and type(value[1]) is str and type(value[2]) is int):
        raise ValueError("field 'src' is malformed")
    return Source(value[0], value[1], value[2])


#: failure flags (docs/recording-format.md §5.2)
_FAIL_FINAL, _FAIL_ASYNC = 0x01, 0x02


def failure(value: Any) -> FailureRecord | None:
    """The optional failure map of a transition (`fail`), checked; unknown keys are ignored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("field 'fail' must be a map")

    def get(key: str, typ: type, default: Any) -> Any:
        v = value.get(key, default)
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise ValueError(f"field 'fail.{key}' has type {type(v).__name__}")
        return v

    flags = get("f", int, 0)
    seconds = value.get("s", 0.0)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise ValueError("field 'fail.s' must be a number")
    return FailureRecord(
        kind=get("k", str, ""), handler=get("h", str, ""), final=bool(flags & _FAIL_FINAL),
        error_type=get("et", str, ""), message=get("em", str, ""),
        traceback=get("tb", str, ""), seconds=float(seconds),
        states=tuple(str_list(value.get("st", []), "fail.st")),
        is_async=bool(flags & _FAIL_ASYNC))


def tx_id(hdr: tuple[int, ...], body: list[Any]) -> str:
    """A transition's id: the body's, or (nil) the header's hint as 16 lowercase hex digits."""
    value = body[TX_ID]
    if value is None:
        return "%016x" % hdr[7]
    if type(value) is not str:
        raise ValueError("transition id must be a string")
    return value


def mutation_type(value: int) -> str:
    """The name of a mutation type ("add", ...), or its number when unknown."""
    return MUTATION_TYPES[value] if 0 <= value < len(MUTATION_TYPES) else str(value)


class StateNames:
    """Resolves state references: an int index, -1 for none, or a literal str name."""

    __slots__ = ("names",)

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def __call__(self, ref: Any) -> str:
        if type(ref) is int:
            if 0 <= ref < len(self.names):
                return self.names[ref]
            if ref == -1:
                return ""
            raise ValueError(f"state index {ref} out of range")
        if type(ref) is str:
            return ref
        raise ValueError(f"bad state reference {ref!r}")


def steps(value: Any, times: Any, name: StateNames) -> list[StepRecord]:
    """Steps (`[type, from, to, relation(, flags, handler)]`) with the durations of the last
    len(times) of them (float seconds)."""
    if not isinstance(value, list):
        raise ValueError("step list must be an array")
    if times is None:
        times = ()
    elif not isinstance(times, list) or len(times) > len(value) or \
            not all((type(x) is float or type(x) is int) and 0 <= x < 1e9 for x in times):
        raise ValueError("step times must be an array of seconds, one per last step")
    first = len(value) - len(times)
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, list) or len(s) < 4 or type(s[0]) is not int or \
                type(s[3]) is not int:
            raise ValueError("malformed step")
        stype = STEP_TYPES.get(s[0], str(s[0]))
        rel = RELATIONS[s[3]] if 0 <= s[3] < len(RELATIONS) else None
        ns = round(times[i - first] * 1e9) if i >= first else 0
        if len(s) >= 6:
            if type(s[4]) is not int or type(s[5]) is not str:
                raise ValueError("malformed handler step")
            out.append(StepRecord(stype, name(s[1]), name(s[2]), rel, s[5],
                                  bool(s[4] & STEP_FINAL), bool(s[4] & STEP_ENTER),
                                  bool(s[4] & STEP_SELF), ns))
        else:
            out.append(StepRecord(stype, name(s[1]), name(s[2]), rel, duration_ns=ns))
    return out


def schema_version(body: dict[str, Any], first: int, wall_ns: int,
                   unverified: bool = False) -> SchemaVersion:
    """A schema record's body (docs/recording-format.md §5.1) as the version that applies
    from transition `first`."""
    names = str_list(field(body, "names", list), "names")
    states_raw = field(body, "states", dict)
    schema: dict[str, dict[str, Any]] = {}
    for state, props in states_raw.items():
        if not isinstance(props, dict):
            raise ValueError(f"state {state!r} is malformed")
        schema[state] = {
            "auto": bool(props.get("auto", False)), "multi": bool(props.get("multi", False)),
            **{rel: str_list(props.get(rel, []), rel)
               for rel in ("require", "add", "remove", "after", "tags")},
        }
    groups_raw = field(body, "groups", dict, {})
    groups = {k: int_list(v, "groups") for k, v in groups_raw.items()}
    order = str_list(field(body, "go", list, list(groups)), "go")
    return SchemaVersion(first, wall_ns, field(body, "parent", str, ""),
                         str_list(field(body, "tags", list, []), "tags"), names, schema, groups,
                         order, field(body, "lp", str, ""), unverified)


#: segment header keys that `ProcessInfo` has fields for (the rest go to `extra`)
_PROCESS_KEYS = ("host", "pid", "argv0", "start_ns", "format", "major", "minor")


def process_info(head: dict[str, Any], file: str, offset: int,
                 version: tuple[int, int]) -> ProcessInfo:
    """A segment header body (docs/recording-format.md §3) as the process that wrote the segment."""
    return ProcessInfo(
        host=field(head, "host", str, ""), pid=field(head, "pid", int, 0),
        argv0=field(head, "argv0", str, ""), start_ns=field(head, "start_ns", int, 0),
        file=file, offset=offset, version=version,
        extra={k: v for k, v in head.items() if k not in _PROCESS_KEYS})


__all__ = [
    "TX_ARGS", "TX_CALLED", "TX_DURATION", "TX_FLAT_TRUNCATED", "TX_ID", "TX_K", "TX_KB",
    "TX_LOG", "TX_MQ", "TX_MT", "TX_PRELOG", "TX_QL", "TX_QT", "TX_SRC", "TX_STEPS",
    "TX_STEP_TIMES", "StateNames", "decode_body", "element", "field", "flat_tx_body", "int_list",
    "log_lines", "mutation_type", "process_info", "schema_version", "source", "steps",
    "str_list", "str_map", "tx_id",
]
