"""Changes that come from outside the machine: a clock mirrored from a remote source.

A network mirror (amnode.rpc) does not resolve relations or negotiate: it receives the source's
ticks and shows them as one transition, so tracers, final handlers (`FooEnd`, `FooState`,
`AnyState`), state contexts, `on_change` and waits behave as on a local machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .clock import Time
from .errors import MachineError
from .log import LogLevel
from .mutation import Mutation, MutationType, MutSource
from .schema import ANY, SUFFIX_END, SUFFIX_STATE
from .steps import Step, StepType
from .transition import Transition

if TYPE_CHECKING:
    from .machine import Machine

_CHANGES = int(LogLevel.CHANGES)


def apply_clock(m: Machine, time: Sequence[int] | Mapping[str, int], *,
                called: Sequence[str] | None = None,
                mutation_type: MutationType = MutationType.SET,
                active: Iterable[str] | None = None, source: MutSource | None = None,
                queue_tick: int | None = None, machine_tick: int | None = None,
                label: str = "remote") -> Transition | None:
    """Make `m` show the given ticks as one accepted transition; None when nothing changed.

    `time` is a full list in state order or a mapping of changed ticks by name. `active`
    overrides which states are active (default: the odd ticks). A queue tick lower than the
    current one (a restarted source) releases every `when_queue` wait.
    """
    m._own()
    if m._disposing:
        return None
    if m._processing:
        raise MachineError(f"{m.id}: apply_clock during a transition of the same machine")
    names = m._names
    before = Time(m._ticks)
    after = Time(before)
    if isinstance(time, Mapping):
        index = m._index
        for name, tick in time.items():
            after[index[name]] = int(tick)
    else:
        for i, tick in enumerate(time[:len(after)]):
            after[i] = int(tick)
    changed = [names[i] for i, (a, b) in enumerate(zip(after, before, strict=True)) if a != b]
    old_qt = m._queue_tick
    if not changed:
        _set_queue_ticks(m, queue_tick, machine_tick, old_qt)
        return None
    now = list(active) if active is not None else [
        n for n, t in zip(names, after, strict=True) if t & 1]
    now_set = set(now)
    before_set = m._active_set
    states_before = m._active
    changed_set = set(changed)
    enters = [s for s in now if s not in before_set or s in changed_set]
    exits = [s for s in states_before if s not in now_set]
    mut = Mutation(mutation_type, list(now if called is None else called), None, source=source)
    if queue_tick is not None:
        mut.queue_tick = queue_tick
    t = Transition(m, mut, resolve=False)
    t._targets, t._enters, t._exits = now, enters, exits
    t._act, t._deact = enters, exits
    if t._steps_on:
        t.steps = [*(Step(StepType.CALLED, "", s) for s in mut.called),
                   *(Step(StepType.ACTIVATE, "", s) for s in enters),
                   *(Step(StepType.DEACTIVATE, "", s) for s in exits)]
    # mutations made meanwhile (e.g. the Exception of a failing handler) queue up and run
    # after this transition, never inside it
    m._processing = True
    try:
        for tracer in m._tr_init:
            tracer.transition_init(t)
        for tracer in m._tr_start:
            tracer.transition_start(t)
        m._ticks[:] = after
        m._active = tuple(now)
        m._active_set = now_set
        if m._lvl >= _CHANGES:
            msg = (" +" + " +".join(enters) if enters else "") + \
                  (" -" + " -".join(exits) if exits else "")
            m._log(_CHANGES, "[%s]%s", label, msg or " ticks")
        if m._subs.ctxs:
            m._subs.cancel_state_ctxs(changed, ())
        t._time_after = Time(after)
        for tracer in m._tr_finals:
            tracer.transition_finals(t)
        d = m._dispatcher
        if d.index:
            # the change is the source's and already shown: a failing handler cannot undo it,
            # so every final handler runs
            for s in exits:
                d.handle(t, s + SUFFIX_END, s, True, False)
            for s in enters:
                d.handle(t, s + SUFFIX_STATE, s, True, False)
            d.handle(t, "AnyState", ANY, True, False)
        for fn in m._on_change:
            fn(m, t.time_before, t.time_after)
        if m._log_buffer:
            t.pre_log_entries = m._log_buffer
            m._log_buffer = []
        t.completed = True
        # tracers (e.g. a server re-exporting this mirror) see the new queue tick
        if machine_tick is not None:
            m.machine_tick = machine_tick
        if queue_tick is not None:
            m._queue_tick = queue_tick
        for tracer in m._tr_end:
            tracer.transition_end(t)
    finally:
        m._tx = None
        m._processing = False
    subs = m._subs
    if subs.when_active or subs.when_inactive or subs.when_time or subs.when_query:
        subs.process(t)
    _set_queue_ticks(m, queue_tick, machine_tick, old_qt)
    if m._queue:
        m._process_queue()
    elif m._dispose_pending:
        m._finish_dispose()
    return t


def _set_queue_ticks(m: Machine, queue_tick: int | None, machine_tick: int | None,
                     old_qt: int) -> None:
    if machine_tick is not None:
        m.machine_tick = machine_tick
    if queue_tick is None:
        return
    m._queue_tick = queue_tick
    if m._subs.when_queue:
        # a lower queue tick means the source restarted: release every queue wait
        m._subs.process_queue_tick(queue_tick if queue_tick >= old_qt else 1 << 62)
