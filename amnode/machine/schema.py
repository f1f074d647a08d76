"""Schemas: the `State` definition, parsing rules and pure helpers (Go schema.go + S helpers)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SchemaError

#: Reserved state names (Go StateException, StateAny, ...).
EXCEPTION = "Exception"
ANY = "Any"
HEARTBEAT = "Heartbeat"
HEALTHCHECK = "Healthcheck"
START = "Start"
READY = "Ready"
DISPOSING = "Disposing"
MACHINE_RESTORED = "MachineRestored"
#: Prefix of error states by convention (Go PrefixErr); such states should Require `Exception`.
PREFIX_ERR = "Err"
#: Tag meaning "this state needs args" (Go TagArgsReq); informative only.
TAG_ARGS_REQ = "ArgsReq"

#: Handler name suffixes (Go SuffixEnter, ...).
SUFFIX_ENTER = "Enter"
SUFFIX_EXIT = "Exit"
SUFFIX_STATE = "State"
SUFFIX_END = "End"

RELATION_FIELDS = ("require", "add", "remove", "after")

StatesArg = str | Iterable[str]


def as_states(states: StatesArg | None) -> list[str]:
    """Normalise "one name or a list of names" into a new list."""
    if states is None:
        return []
    if isinstance(states, str):
        return [states]
    return list(states)


@dataclass(slots=True)
class State:
    """One state's properties; relations only name other states (Go am.State)."""

    auto: bool = False
    multi: bool = False
    require: list[str] = field(default_factory=list)
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.require = as_states(self.require)
        self.add = as_states(self.add)
        self.remove = as_states(self.remove)
        self.after = as_states(self.after)
        self.tags = as_states(self.tags)

    def clone(self) -> State:
        """Deep copy (the lists are new)."""
        return State(self.auto, self.multi, list(self.require), list(self.add),
                     list(self.remove), list(self.after), list(self.tags))

    def extend(self, overlay: State) -> State:
        """Union of relations and tags; flags only ever turn on (Go State.Extend)."""
        return State(
            self.auto or overlay.auto,
            self.multi or overlay.multi,
            s_add(self.require, overlay.require),
            s_add(self.add, overlay.add),
            s_add(self.remove, overlay.remove),
            s_add(self.after, overlay.after),
            s_add(self.tags, overlay.tags),
        )

    def set_rels(self, overlay: State) -> State:
        """Replace non-empty relations from `overlay`, keep flags (Go State.SetRels)."""
        ret = self.clone()
        for name in (*RELATION_FIELDS, "tags"):
            value = getattr(overlay, name)
            if value:
                setattr(ret, name, list(value))
        return ret

    def has_tag(self, tag: str) -> bool:
        """True for an exact tag or a "tag:value" tag."""
        return any(t == tag or t.startswith(tag + ":") for t in self.tags)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form used on the wire and in recordings."""
        return {"auto": self.auto, "multi": self.multi, "require": list(self.require),
                "add": list(self.add), "remove": list(self.remove), "after": list(self.after),
                "tags": list(self.tags)}

    @classmethod
    def from_any(cls, value: State | Mapping[str, Any] | None) -> State:
        """Accept a `State`, a plain dict (lower or Go CamelCase keys) or None."""
        if value is None:
            return cls()
        if isinstance(value, State):
            return value.clone()
        if not isinstance(value, Mapping):
            raise SchemaError(f"schema error: a state must be a State or a dict, got {value!r}")
        known = {"auto", "multi", *RELATION_FIELDS, "tags"}
        kw: dict[str, Any] = {}
        for key, val in value.items():
            low = str(key).lower()
            if low not in known:
                raise SchemaError(f"schema error: unknown state property {key!r}")
            kw[low] = val
        return cls(**kw)


Schema = dict[str, State]
SchemaLike = Mapping[str, State | Mapping[str, Any] | None]


def is_state_name(name: object) -> bool:
    """True for a valid state name: a printable identifier (`Foo`, `Err_Net2`, `Zustand`).

    Names become handler method names and are printed by logs, recordings and the debugger,
    so control characters, spaces and punctuation are refused at parse time.
    """
    return isinstance(name, str) and name.isidentifier() and name.isprintable()


def _check_name(name: object, where: str) -> None:
    if not is_state_name(name):
        # repr() escapes control characters, so a hostile name cannot reach a terminal raw
        raise SchemaError(f"schema error: {where} {name!r} is not a state name (a printable "
                          "identifier: letters, digits and _, not starting with a digit)")


def normalize_schema(schema: SchemaLike) -> Schema:
    """Copy a schema, turning dicts into `State` objects; raise SchemaError for a name (of a
    state or in a relation) that is not a printable identifier."""
    if not isinstance(schema, Mapping):
        raise SchemaError(f"schema error: a schema must be a mapping, got {type(schema).__name__}")
    out: Schema = {}
    for name, state in schema.items():
        _check_name(name, "state name")
        parsed = State.from_any(state)
        for rel in RELATION_FIELDS:
            for target in getattr(parsed, rel):
                if not is_state_name(target):
                    _check_name(target, f"{rel} of {name}:")
        out[name] = parsed
    return out


def parse_schema(schema: SchemaLike) -> tuple[Schema, list[str]]:
    """Apply Go's parse rules (docs/machine.md §2.1; §8, row 2) to a copy; return it with the
    error messages found.

    The parsed schema is usable even when errors are returned (Go keeps it and adds Exception).
    """
    parsed = normalize_schema(schema)
    errors: list[str] = []
    for name, state in parsed.items():
        state.remove = [s for s in state.remove if s != name]
        adds: list[str] = []
        for target in state.add:
            if target in state.remove:
                state.remove = [s for s in state.remove if s != target]
            if target in parsed:  # Go keeps an unknown Add target that was in Remove; we don't
                adds.append(target)
        state.add = _uniq(adds)
        state.after = [s for s in state.after if s != name]
        conflicts = [r for r in state.require if r in state.remove]
        for c in conflicts:
            errors.append(f"schema error: require-remove conflict for {name} to {c}")
        state.remove = _uniq(s for s in state.remove if s in parsed)
        state.after = _uniq(s for s in state.after if s in parsed)
        state.require = _uniq(state.require)
    return parsed, errors


def schema_merge(*schemas: SchemaLike) -> Schema:
    """Merge schemas; a later schema replaces whole state entries (Go Schema.Merge)."""
    out: Schema = {}
    for schema in schemas:
        out.update(normalize_schema(schema))
    return out


def schema_prefix(schema: SchemaLike, prefix: str, remove_dups: bool = False,
                  allowlist: Iterable[str] | None = None,
                  skiplist: Iterable[str] | None = None) -> Schema:
    """Prefix state names and every relation target (Go Schema.Prefix)."""
    allow = None if allowlist is None else set(allowlist)
    skip = set(skiplist or ())

    def rename(name: str) -> str:
        if name in skip or (allow is not None and name not in allow):
            return name
        if remove_dups and name.startswith(prefix):
            return name
        return prefix + name

    out: Schema = {}
    for name, state in normalize_schema(schema).items():
        new = state.clone()
        for rel in RELATION_FIELDS:
            setattr(new, rel, [rename(s) for s in getattr(new, rel)])
        out[rename(name)] = new
    return out


def filter_by_tag(schema: SchemaLike, tag: str) -> Schema:
    """States carrying exactly `tag` (Go Schema.FilterByTag)."""
    return {k: v for k, v in normalize_schema(schema).items() if tag in v.tags}


def states_by_tag(schema: SchemaLike, tag: str) -> list[str]:
    """Names of states tagged `tag` or `tag:*` (Go StatesByTag), in schema order."""
    return [k for k, v in normalize_schema(schema).items() if v.has_tag(tag)]


def adjacent_states(schema: SchemaLike, name: str) -> list[str]:
    """Add + After + Require + Remove targets of one state (Go Schema.AdjacentStates)."""
    state = normalize_schema(schema)[name]
    return _uniq([*state.add, *state.after, *state.require, *state.remove])


def schema_hash(schema: SchemaLike, names: Iterable[str]) -> str:
    """A stable hash of a schema and its state order, used to skip schema transfer over RPC."""
    norm = normalize_schema(schema)
    h = hashlib.sha256()
    for name in names:
        st = norm[name]
        h.update(name.encode())
        h.update(b"\x00%d%d" % (st.auto, st.multi))
        for rel in (*RELATION_FIELDS, "tags"):
            h.update(("\x01" + "\x02".join(getattr(st, rel))).encode())
    return h.hexdigest()[:16]


# --- state list helpers (Go S methods and the deprecated free functions) ---


def _uniq(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def s_add(*lists: StatesArg) -> list[str]:
    """Concatenate lists of states and drop duplicates, keeping the first position (Go SAdd)."""
    out: list[str] = []
    for lst in lists:
        out.extend(as_states(lst))
    return _uniq(out)


def s_rem(states: StatesArg, *remove: StatesArg) -> list[str]:
    """`states` without any of `remove` (Go SRem / S.Sub)."""
    drop = {s for r in remove for s in as_states(r)}
    return [s for s in as_states(states) if s not in drop]


def s_shared(a: StatesArg, b: StatesArg) -> list[str]:
    """States of `a` also in `b`, in `a`'s order (Go StatesShared)."""
    bs = set(as_states(b))
    return [s for s in as_states(a) if s in bs]


def s_equal(a: StatesArg, b: StatesArg) -> bool:
    """Set equality of two state lists (Go StatesEqual)."""
    return set(as_states(a)) == set(as_states(b))
