"""Turning live machine objects into record values: schema snapshots, bounded args, steps, logs.

The recorder's tracer runs `render_args` and `schema_snapshot` on the machine's thread (args may
be mutated after the transition and a hostile `__repr__` must not run on another thread); the
rest runs on the writer thread, reading the fields of a `Transition` and its `Mutation`, which
the machine no longer changes once `transition_end` / `mutation_queued` fired.

Buffered items are plain tuples (cheap to build on the hot path):

- `(ITEM_SCHEMA, tracer, snapshot, mono_ns)`
- `(ITEM_TX, tracer, seq, start_mono_ns, end_mono_ns, machine_queue_tick, args, tx_id,
  accepted, mutation_type, called, is_auto, is_check, source, mutation_queue_tick, queue_len,
  time_after, time_before, steps, log_entries, pre_log_entries)`
- `(ITEM_QUEUED, tracer, mutation, mono_ns, running_tx_id, args)`
- `(ITEM_DISPOSE, tracer, mono_ns, log_entries)`
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from amnode.machine.log import LogEntry, render_value
from amnode.machine.schema import HEALTHCHECK, HEARTBEAT

from .format import (
    ARG_KEY_MAX,
    ARG_VALUE_MAX,
    ARGS_MAX_KEYS,
    FLAG_ACCEPTED,
    FLAG_AUTO,
    FLAG_CHECK,
    FLAG_HEALTH,
    FLAG_PREPENDED,
    LOG_LINE_MAX,
    LOG_LINES_MAX,
    STEP_ENTER,
    STEP_FINAL,
    STEP_SELF,
    STEPS_MAX,
)

if TYPE_CHECKING:
    from amnode.machine import Machine, Mutation

    from .writer import RecordWriter

ITEM_SCHEMA = 1
ITEM_TX = 2
ITEM_QUEUED = 3
ITEM_DISPOSE = 4

_HANDLER = 2
_HEALTH_STATES = (HEARTBEAT, HEALTHCHECK)  # Transition.is_health, for the fields we keep


class SchemaSnapshot(NamedTuple):
    """What a schema record holds, copied on the machine's thread."""

    id: str
    parent: str
    tags: tuple[str, ...]
    names: tuple[str, ...]
    states: dict[str, dict[str, Any]]
    groups: dict[str, list[int]]
    groups_order: tuple[str, ...]


def schema_snapshot(machine: Machine) -> SchemaSnapshot:
    """Copy a machine's id, parent, tags, state order, schema and groups."""
    states: dict[str, dict[str, Any]] = {}
    for name, st in machine.schema.items():
        states[name] = {"auto": st.auto, "multi": st.multi, "require": list(st.require),
                        "add": list(st.add), "remove": list(st.remove),
                        "after": list(st.after), "tags": list(st.tags)}
    groups, order = machine.groups()
    return SchemaSnapshot(machine.id, machine.parent_id or "", tuple(machine.tags),
                          tuple(machine.state_names), states, groups, tuple(order))


def render_args(args: Mapping[Any, Any], max_len: int = ARG_VALUE_MAX) -> dict[str, str]:
    """Render every arg to a bounded string (keys too); never raises, never keeps objects.

    Values longer than `max_len` characters are cut and end with "..."; at most
    `ARGS_MAX_KEYS` keys are kept, the rest are counted under the key "...".
    """
    out: dict[str, str] = {}
    try:
        items = list(args.items())
    except Exception as err:
        return {"...": render_value(err, max_len)}
    for n, (key, value) in enumerate(items):
        if n >= ARGS_MAX_KEYS:
            out["..."] = f"{len(items) - n} more"
            break
        name = key if type(key) is str else render_value(key, ARG_KEY_MAX)
        out[name[:ARG_KEY_MAX]] = render_value(value, max_len)
    return out


def encode_steps(steps: Sequence[Any], index: Mapping[str, int]) -> list[list[Any]]:
    """Steps as compact lists: states become indexes (-1 none, a str when not in the schema)."""
    get = index.get
    out: list[list[Any]] = []
    for s in steps[:STEPS_MAX]:
        rel = s.relation
        frm = s.from_state
        to = s.to_state
        if s.type == _HANDLER:
            flags = ((STEP_FINAL if s.is_final else 0) | (STEP_ENTER if s.is_enter else 0)
                     | (STEP_SELF if s.is_self else 0))
            out.append([_HANDLER, get(frm, frm), get(to, to), -1 if rel is None else int(rel),
                        flags, s.handler, int(s.duration * 1e9)])
        else:
            out.append([int(s.type), get(frm, frm), get(to, to), -1 if rel is None else int(rel)])
    return out


def log_lines(entries: Sequence[LogEntry], prefix: str) -> list[list[Any]]:
    """Log entries as `[level, text]`, without the machine-id prefix, each line bounded."""
    plen = len(prefix)
    out: list[list[Any]] = []
    for e in entries[:LOG_LINES_MAX]:
        text = e.text
        if plen and text.startswith(prefix):
            text = text[plen:]
        out.append([e.level, text[:LOG_LINE_MAX]])
    if len(entries) > LOG_LINES_MAX:
        out.append([0, f"... {len(entries) - LOG_LINES_MAX} more lines not recorded"])
    return out


def _called(names: Iterable[str], index: Mapping[str, int]) -> list[Any]:
    get = index.get
    return [get(n, n) for n in names]


def write_transition(w: RecordWriter, mno: int, item: tuple[Any, ...], anchor: int,
                     prefix: str) -> None:
    """Encode one `ITEM_TX` into `w` (`anchor` turns monotonic ns into wall ns)."""
    (_, _, seq, t0, t1, queue_tick, args, tx_id, accepted, mtype, called, is_auto, is_check,
     src, mut_queue_tick, queue_len, after, before, steps, log, prelog) = item
    index = w.index(mno)
    get = index.get
    flags = FLAG_ACCEPTED if accepted else 0
    if is_auto:
        flags |= FLAG_AUTO
    if is_check:
        flags |= FLAG_CHECK
    if mtype == 0 and len(called) == 1 and called[0] in _HEALTH_STATES:
        flags |= FLAG_HEALTH
    w.transition(
        mno, seq, anchor + (t0 or t1), anchor + t1, tx_id, flags, mtype,
        [get(n, n) for n in called], queue_tick, mut_queue_tick, queue_len, after, before,
        encode_steps(steps, index) if steps else None,
        log_lines(log, prefix) if log else None,
        log_lines(prelog, prefix) if prelog else None,
        args,
        [src.mach_id, src.tx_id, int(src.mach_time)] if src is not None else None,
    )


def write_queued(w: RecordWriter, mno: int, item: tuple[Any, ...], anchor: int) -> None:
    """Encode one `ITEM_QUEUED` into `w`."""
    mut: Mutation
    _, _, mut, mono, tx_id, args = item
    flags = ((FLAG_AUTO if mut.is_auto else 0) | (FLAG_CHECK if mut.is_check else 0)
             | (FLAG_PREPENDED if mut.queue_tick == 0 else 0))
    src = mut.source
    w.queued(mno, anchor + mono, flags, int(mut.type), _called(mut.called, w.index(mno)),
             mut.queue_tick, mut.queue_tick_now, mut.queue_len, tx_id, args,
             [src.mach_id, src.tx_id, int(src.mach_time)] if src is not None else None)


__all__ = [
    "ITEM_DISPOSE", "ITEM_QUEUED", "ITEM_SCHEMA", "ITEM_TX", "SchemaSnapshot", "encode_steps",
    "log_lines", "render_args", "schema_snapshot", "write_queued", "write_transition",
]
