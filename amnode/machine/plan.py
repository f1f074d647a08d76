"""Resolved transitions, cached: what a transition replays instead of resolving relations again.

A transition's resolution (targets, acceptance, exits, enters, and the steps and log lines it
produced) is a pure function of the mutation (type, called states, Auto and check flags), the
active states in order, whether steps are collected and the log level (docs/machine.md §7). A
`Plan` holds one resolution; what executing it needs is derived from it once, on first use, and
kept with it: the negotiation handler calls (`calls`), the final handler calls (`finals`), the
clock change (`Apply`) and, for an Auto transition, its re-resolution without the states the
resolver rejected. Everything here is derived from the plan's own fields, the schema, the state
order and the bound handlers, so the machine drops every plan when any of those changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .log import LogLevel
from .schema import ANY, SUFFIX_END, SUFFIX_ENTER, SUFFIX_EXIT, SUFFIX_STATE
from .steps import Step

if TYPE_CHECKING:
    from .machine import Machine

_CHANGES = int(LogLevel.CHANGES)
_DECISIONS = int(LogLevel.DECISIONS)

#: `Apply.auto` before it was looked up
UNKNOWN: Any = object()

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

    __slots__ = ("accepted", "apply", "calls", "enters", "exits", "finals", "log", "reauto",
                 "steps", "targets")

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


__all__ = ["ANY_ENTER", "ENTER", "EXIT", "PAIR", "SELF", "Apply", "Call", "Final", "Plan",
           "final_calls", "make_apply", "negotiation_calls"]
