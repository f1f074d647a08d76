"""Resolved transitions, cached: what a transition replays instead of resolving relations again.

A transition's resolution (targets, acceptance, exits, enters, and the steps and log lines it
produced) is a pure function of the mutation (type, called states, Auto and check flags), the
active states in order, whether steps are collected and the log level (docs/machine.md §7). A
`Plan` holds one resolution; what executing it needs is derived from it once, on first use, and
kept with it: the negotiation handler calls (`calls`), the final handler calls (`finals`), the
clock change (`Apply`) and, for an Auto transition, its re-resolution without the states the
resolver rejected. Everything here is derived from the plan's own fields, the schema, the state
order and the bound handlers, so the machine drops every plan when any of those changes.

Once a plan was executed in full, `classify` decides how the machine may replay it while nobody
can observe a transition (no tracer, log level, `on_change` callback, wait or state context;
see `Machine._process_queue`): a plan under which no handler runs is replayed without a
`Transition` at all (`REPLAY_LEAN`: the clock change and the Auto states it allows are all
there is), one where only final handlers run skips every other phase (`REPLAY_FINALS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .log import LogLevel
from .mutation import CANCELED, EXECUTED, MutationType
from .schema import ANY, SUFFIX_END, SUFFIX_ENTER, SUFFIX_EXIT, SUFFIX_STATE
from .steps import Step

if TYPE_CHECKING:
    from .machine import Machine
    from .transition import Transition

_CHANGES = int(LogLevel.CHANGES)
_DECISIONS = int(LogLevel.DECISIONS)

#: `Apply.auto` before it was looked up
UNKNOWN: Any = object()

#: `Plan.replay`: not classified yet; the general path; only final handlers run; no handler
#: runs (see `classify`)
REPLAY_UNKNOWN, REPLAY_FULL, REPLAY_FINALS, REPLAY_LEAN = range(4)

#: Negotiation phases of a handler call (docs/machine.md §3): they tell how a veto in an Auto
#: transition is handled and which calls a dropped Auto state skips.
EXIT, ENTER, SELF, PAIR, ANY_ENTER = range(5)

#: One negotiation call: (phase, handler name, from state, to state, state, is_enter, is_self).
Call = tuple[int, str, str, str, str, bool, bool]
#: One final call: (handler name, state, is_enter).
Final = tuple[str, str, bool]


class Apply:
    """The clock change of an accepted transition: the new active states, the tick increments
    (by state index) and the `[state]` log text without args; `auto` caches the Auto states
    this leads to (None: none) once looked up."""

    __slots__ = ("activated", "active", "active_set", "auto", "deactivated", "deltas", "text")

    def __init__(self, active: tuple[str, ...], active_set: frozenset[str],
                 deltas: tuple[tuple[int, int], ...], text: str,
                 activated: tuple[str, ...], deactivated: tuple[str, ...]) -> None:
        self.active = active
        self.active_set = active_set
        self.deltas = deltas
        self.text = text
        #: what an Auto transition reports as changed: newly active states (Multi re-entries
        #: excluded) and deactivated ones, in active order
        self.activated = activated
        self.deactivated = deactivated
        self.auto: tuple[str, ...] | None = UNKNOWN


def make_apply(m: Machine, called: Sequence[str], targets: Sequence[str],
               is_auto: bool) -> Apply:
    """The change that makes `targets` the active states of `m` (Go setActiveStates): +1 for a
    newly active state, +2 for a called active Multi state, +1 for a deactivated one."""
    prev = m._active_set
    index = m._index
    multi_states = m._multi
    new: list[str] = []
    multi: list[str] = []
    deltas: list[tuple[int, int]] = []
    for s in targets:
        if s not in prev:
            deltas.append((index[s], 1))
            new.append(s)
        elif called and s in called and s in multi_states:
            deltas.append((index[s], 2))
            multi.append(s)
    tset = frozenset(targets)
    removed = [s for s in m._active if s not in tset]
    for s in removed:
        deltas.append((index[s], 1))
    text = ""
    lvl = m._lvl
    if lvl >= _CHANGES:
        msg = ""
        changed = new + multi
        if changed:
            msg += " +" + " +".join(changed)
        if removed:
            msg += " -" + " -".join(removed)
        if lvl > _DECISIONS:
            same = [s for s in targets if s in prev]
            if same:
                msg += " " + " ".join(same)
        if msg:
            text = ("[auto_]" if is_auto else "[state]") + msg
    return Apply(tuple(targets), tset, tuple(deltas), text, tuple(new), tuple(removed))


class Plan:
    """One cached resolution and what was derived from it (see the module docstring).

    `steps` are shared by every transition replaying the plan (a tracer may memoise on them);
    `log` are the (level, text) lines the resolution emitted, replayed in order.
    """

    __slots__ = ("accepted", "apply", "calls", "enters", "exits", "finals", "lean_apply", "log",
                 "queue_auto", "reauto", "replay", "result", "steps", "targets")

    def __init__(self, targets: Sequence[str], accepted: bool, exits: Sequence[str],
                 enters: Sequence[str], steps: Sequence[Step],
                 log: Sequence[tuple[int, str]]) -> None:
        self.targets = tuple(targets)
        self.accepted = accepted
        self.exits = tuple(exits)
        self.enters = tuple(enters)
        self.steps = tuple(steps)
        self.log = tuple(log)
        #: negotiation calls, built on first use
        self.calls: tuple[Call, ...] | None = None
        #: final calls (`XEnd`, `XState`), built on first use
        self.finals: tuple[Final, ...] | None = None
        #: the clock change when accepted as resolved (not for Auto transitions)
        self.apply: Apply | None = None
        #: Auto transitions: (re-resolution, its clock change) when no handler dropped a state
        self.reauto: tuple[Plan, Apply | None] | None = None
        #: how an unobserved machine replays this plan (REPLAY_*), set by `classify`
        self.replay = REPLAY_UNKNOWN
        #: REPLAY_LEAN and REPLAY_FINALS: the result when no handler cancels
        self.result = CANCELED
        #: REPLAY_LEAN: the clock change to apply (None: canceled, nothing changes)
        self.lean_apply: Apply | None = None
        #: REPLAY_LEAN and REPLAY_FINALS: the applied change queues the Auto states it allows
        self.queue_auto = False


def classify(m: Machine, plan: Plan, t: Transition) -> None:
    """Decide once how `plan`, just executed in full by `t`, may be replayed while nobody
    observes the machine (`Plan.replay`), and what such a replay returns and does.

    Nothing may be logged or collected. REPLAY_LEAN: no handler would be called (none is bound
    for its negotiation calls, its final calls and `AnyState`, or relations cancel it).
    REPLAY_FINALS: a non-Auto, accepted plan whose only handlers are final ones. A plan whose
    clock change is not cached yet stays REPLAY_UNKNOWN.
    """
    mut = t.mutation
    before = t.states_before
    plan.replay = REPLAY_FULL
    if m._lvl or mut.is_check or t._steps_on:
        return
    index = m._dispatcher.index
    a: Apply | None = None
    fplan = plan
    finals: tuple[Final, ...] = ()
    if plan.accepted:
        if mut.is_auto:
            if plan.reauto is None or plan.reauto[1] is None:
                plan.replay = REPLAY_UNKNOWN
                return
            fplan, a = plan.reauto
        else:
            a = plan.apply
            if a is None:
                plan.replay = REPLAY_UNKNOWN
                return
        if index:
            calls = plan.calls
            if calls is None:
                calls = plan.calls = negotiation_calls(
                    m, mut.type == MutationType.REMOVE, plan.targets, plan.exits, plan.enters,
                    before)
            if calls or "AnyState" in index:
                return
            finals = fplan.finals if fplan.finals is not None else final_calls(
                m, fplan.exits, fplan.enters)
            fplan.finals = finals
            if finals and mut.is_auto:
                return
    # the result `Transition.emit` returns when no handler cancels
    if a is None:
        result = CANCELED
    elif mut.type == MutationType.REMOVE:
        result = CANCELED if any(s in a.active_set for s in mut.called) else EXECUTED
    elif mut.is_auto:
        result = EXECUTED if len(a.active) > len(before) else CANCELED
    else:
        result = EXECUTED if all(s in a.active_set for s in plan.targets) else CANCELED
    plan.result = result
    plan.queue_auto = a is not None and bool(a.deltas) and not mut.is_auto and \
        bool(m._auto_states) and not mut.is_health
    if finals:
        plan.replay = REPLAY_FINALS
    else:
        plan.lean_apply = a
        plan.replay = REPLAY_LEAN


def negotiation_calls(m: Machine, mtype_remove: bool, targets: Sequence[str],
                      exits: Sequence[str], enters: Sequence[str],
                      before: Sequence[str]) -> tuple[Call, ...]:
    """The negotiation handler calls of a transition in Go's order (docs/machine.md §3): `XExit`,
    `XEnter`, `XX` (add/set), `XY`, `AnyEnter` — only names some binding has, unless the log
    level is EVERYTHING (every name is dispatched, so that each is logged)."""
    d = m._dispatcher
    index = d.index
    everything = m._lvl >= LogLevel.EVERYTHING
    calls: list[Call] = []
    for s in exits:
        name = s + SUFFIX_EXIT
        if everything or name in index:
            calls.append((EXIT, name, s, "", s, False, False))
    for s in enters:
        name = s + SUFFIX_ENTER
        if everything or name in index:
            calls.append((ENTER, name, "", s, s, True, False))
    if not mtype_remove:
        active = m._active_set
        for s in targets:
            if s in active:
                name = s + s
                if everything or name in index:
                    calls.append((SELF, name, "", s, s, False, True))
    pairs = d.pairs
    if pairs or everything:
        for b in before:
            if not everything and b not in pairs:
                continue
            for a in targets:
                if a == b:
                    continue
                name = b + a
                if everything or name in index:
                    calls.append((PAIR, name, b, a, a, False, False))
    if everything or "AnyEnter" in index:
        calls.append((ANY_ENTER, "AnyEnter", ANY, ANY, ANY, True, False))
    return tuple(calls)


def final_calls(m: Machine, exits: Sequence[str], enters: Sequence[str]) -> tuple[Final, ...]:
    """The final handler calls `XEnd` (exits) then `XState` (enters) that exist (all of them
    at log level EVERYTHING)."""
    index = m._dispatcher.index
    everything = m._lvl >= LogLevel.EVERYTHING
    out: list[Final] = []
    for s in exits:
        name = s + SUFFIX_END
        if everything or name in index:
            out.append((name, s, False))
    for s in enters:
        name = s + SUFFIX_STATE
        if everything or name in index:
            out.append((name, s, True))
    return tuple(out)


__all__ = ["ANY_ENTER", "ENTER", "EXIT", "PAIR", "REPLAY_FINALS", "REPLAY_FULL", "REPLAY_LEAN",
           "REPLAY_UNKNOWN", "SELF", "Apply", "Call", "Final", "Plan", "classify", "final_calls",
           "make_apply", "negotiation_calls"]
