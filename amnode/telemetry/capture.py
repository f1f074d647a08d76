"""Turning live machine objects into record parts, on the machine's thread, cheaply.

Everything here runs inside a transition (from the recorder's tracer hooks), so the common case
runs as few Python operations as possible and leaves the per-element work to C:

- **Relation steps are encoded once.** The machine caches resolutions: transitions with the same
  mutation and active states share the very same `Step` objects (the plan's), followed by the
  steps made anew (handlers, late cancels). `memo()` stores the encoded plan part — mutation type,
  called states, and the leading relation/activation steps as msgpack bytes — in the first
  step's `memo` slot; later transitions of that plan reuse it after one identity check.
- **Steps made anew** are looked up, whole, in a per-machine cache keyed by all their fields
  but the duration (`step_key`, an `attrgetter`: C); durations go to a separate list of floats
  (outcome element OUT_STEP_TIMES), so no step is packed per transition.
- Log entries become `(level, text)` tuples through `attrgetter` (no Python loop); the
  machine-id prefix stays in the text and readers remove it (schema key `lp`).

The results are bytes, ints and strs only: what the recorder buffers is immutable and not tracked
by the cyclic GC, so holding it until the writer thread's next write costs the program nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from amnode.machine.log import render_value

from .format import (
    ARG_KEY_MAX,
    ARG_VALUE_MAX,
    ARGS_MAX_KEYS,
    FLAG_AUTO,
    FLAG_CHECK,
    FLAG_HEALTH,
    FLAG_PREPENDED,
    STEP_ENTER,
    STEP_FINAL,
    STEP_SELF,
    STEPS_MAX,
    array_header,
)
from .writer import EMPTY_ARRAY, TX_HEAD, MachineEncoder, packb

if TYPE_CHECKING:
    from amnode.machine import Machine, Mutation, Step

_HANDLER = 2
_CANCEL = 64
_join = b"".join

#: LogEntry -> (level, text), in C
log_tuple = attrgetter("level", "text")
#: Step -> everything its encoding depends on (all but the duration), in C
step_key = attrgetter("type", "handler", "from_state", "to_state", "is_final", "is_enter",
                      "is_self", "relation")
#: Step -> seconds spent in it (handler steps; 0.0 for others)
step_time = attrgetter("duration")


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
        if len(args) <= ARGS_MAX_KEYS:  # the common case: short string keys and values
            for key, value in args.items():
                if value.__class__ is str and len(value) <= max_len and "\n" not in value \
                        and key.__class__ is str and len(key) <= ARG_KEY_MAX:
                    out[key] = value
                else:
                    break
            else:
                return out
            out = {}
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


def mutation_flags(mut: Mutation) -> int:
    """AUTO / CHECK / HEALTH of a transition's mutation (ACCEPTED is the transition's)."""
    return ((FLAG_AUTO if mut.is_auto else 0) | (FLAG_CHECK if mut.is_check else 0)
            | (FLAG_HEALTH if mut.is_health else 0))


def step_bytes(enc: MachineEncoder, step: Step) -> bytes:
    """One step's encoding without its duration: `[type, from, to, relation]`, or for
    handler steps `[type, from, to, relation, flags, name]`; cached for steps made anew."""
    key = step_key(step)
    out = enc.steps.get(key)
    if out is None:
        index = enc.index
        frm, to, rel = step.from_state, step.to_state, step.relation
        fields: tuple[Any, ...] = (int(step.type), index.get(frm, frm), index.get(to, to),
                                   -1 if rel is None else int(rel))
        if step.type == _HANDLER:
            fields += ((STEP_FINAL if step.is_final else 0) | (STEP_ENTER if step.is_enter else 0)
                       | (STEP_SELF if step.is_self else 0), step.handler)
        out = packb(fields)
        if len(enc.steps) < 10_000:
            enc.steps[key] = out
    return out


def extra_steps(enc: MachineEncoder, steps: list[Step]) -> bytes:
    """Encoded `steps` (made anew in a transition), from the cache where possible."""
    get = enc.steps.__getitem__
    try:
        return _join(map(get, map(step_key, steps)))
    except KeyError:
        return _join([step_bytes(enc, s) for s in steps])


def memo(enc: MachineEncoder, mut: Mutation, steps: list[Step]) -> tuple[Any, ...] | None:
    """Encode and remember the shared part of `steps` on its first step (see module doc).

    The memo: (index, k, last shared step or None, plan bytes, shared steps bytes, flags,
    head when no step follows the shared ones, {keys of the later steps: head}); a head is
    TX_HEAD and the encoded mutation part (see MachineEncoder.transition_frame).
    """
    k = 0
    for s in steps:  # the plan's steps: everything before the first handler step ...
        if s.type == _HANDLER:
            break
        k += 1
    while k and steps[k - 1].type == _CANCEL:  # ... without cancels that may be per-transition
        k -= 1
    if not k:
        return None
    index = enc.index
    get = index.get
    plan = packb((int(mut.type), [get(n, n) for n in mut.called]))[1:]
    prefix = _join([step_bytes(enc, s) for s in steps[:k]])
    # the last shared step is checked by identity later; None when it is the memo's owner
    # (a Step -> memo -> same Step cycle would be work for the cyclic GC)
    last = steps[k - 1] if k > 1 else None
    whole = TX_HEAD + plan + array_header(k) + prefix
    out = (index, k, last, plan, prefix, mutation_flags(mut), whole, {(): whole})
    steps[0].memo = out
    return out


def plan_and_steps(enc: MachineEncoder, mut: Mutation, steps: list[Step]
                   ) -> tuple[bytes, list[float] | None, int]:
    """(head, step times, AUTO|CHECK|HEALTH flags) of a live transition; see `memo`."""
    if steps:
        m = steps[0].memo
        if m.__class__ is not tuple or m[0] is not enc.index:
            m = memo(enc, mut, steps)
        if m is not None:
            k = m[1]
            n = len(steps)
            # the plan's steps come first and are the same objects in every transition of it;
            # the identity check makes a stale memo (another recorder, odd steps) harmless
            if n >= k and (k == 1 or steps[k - 1] is m[2]) and n <= STEPS_MAX:
                if n == k:
                    return m[6], None, m[5]
                extra = steps[k:]
                return (_join((TX_HEAD, m[3], array_header(n), m[4], extra_steps(enc, extra))),
                        list(map(step_time, extra)), m[5])
    get = enc.index.get
    plan = TX_HEAD + packb((int(mut.type), [get(n, n) for n in mut.called]))[1:]
    if not steps:
        return plan + EMPTY_ARRAY, None, mutation_flags(mut)
    steps = steps[:STEPS_MAX]
    first = next((i for i, s in enumerate(steps) if s.type == _HANDLER), len(steps))
    return (plan + array_header(len(steps)) + _join([step_bytes(enc, s) for s in steps]),
            list(map(step_time, steps[first:])) or None, mutation_flags(mut))


def queued_frame(enc: MachineEncoder, mut: Mutation, wall_ns: int, tx_id: str,
                 args: dict[str, str] | None) -> bytes:
    """A queued-mutation frame for a live mutation."""
    flags = ((FLAG_AUTO if mut.is_auto else 0) | (FLAG_CHECK if mut.is_check else 0)
             | (FLAG_PREPENDED if mut.queue_tick == 0 else 0))
    src = mut.source
    get = enc.index.get
    return enc.queued_frame(wall_ns, flags, int(mut.type), [get(n, n) for n in mut.called],
                            mut.queue_tick, mut.queue_tick_now, mut.queue_len, tx_id, args,
                            (src.mach_id, src.tx_id, int(src.mach_time)) if src is not None
                            else None)


__all__ = [
    "SchemaSnapshot", "extra_steps", "log_tuple", "memo", "mutation_flags",
    "plan_and_steps", "queued_frame", "render_args", "schema_snapshot", "step_bytes",
    "step_key", "step_time",
]
