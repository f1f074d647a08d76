"""One transition: resolving a mutation, negotiating with handlers, applying it (Go transition.go).

The phases and the handler order are Go's: docs/machine.md §2.7 (phases) and §3 (handler order).
Handlers are called only through the machine's `HandlerDispatcher`; a handler that raises marks
the transition `failed`, and every handler loop here stops at a failed transition. Of the
machine, a transition reads its clock and schema, its log, tracers, resolver (and plan cache),
subscriptions and queue, and applies targets with `Machine._set_active_states`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from .clock import Time
from .log import LogEntry, LogLevel
from .mutation import CANCELED, EXECUTED, Mutation, MutationType, Result
from .schema import (
    ANY,
    SUFFIX_END,
    SUFFIX_ENTER,
    SUFFIX_EXIT,
    SUFFIX_STATE,
)
from .steps import Step, StepType

if TYPE_CHECKING:
    from .handlers import HandlerDispatcher
    from .machine import Machine

_ADD = MutationType.ADD
_REMOVE = MutationType.REMOVE
_SET = MutationType.SET
_CHANGES = int(LogLevel.CHANGES)
_OPS = int(LogLevel.OPS)
_DECISIONS = int(LogLevel.DECISIONS)
_EVERYTHING = int(LogLevel.EVERYTHING)
_rand = random.Random()
_EMPTY: list[str] = []  # shared empty defaults; never mutated
_NO_LOG: list[LogEntry] = []


def new_id() -> str:
    """A random 16-hex-digit id, like Go's randId(16)."""
    return "%016x" % _rand.getrandbits(64)


def seed_ids(seed: int | None) -> None:
    """Make machine, transition and binding ids reproducible (e.g. for sample recordings and
    tests); `None` reseeds from the OS."""
    _rand.seed(seed)


class Transition:
    """A mutation being executed; what handlers (`e.transition`) and tracers see."""

    __slots__ = (
        "_before_set", "_id", "_id_num", "_latest_enter", "_latest_to",
        "_steps_on", "_time_after", "accepted", "activated", "completed", "deactivated", "enters",
        "exits", "failed",
        "log_entries", "machine", "mutation", "pre_log_entries", "queue_len", "states_before",
        "steps", "targets", "time_before",
    )

    def __init__(self, machine: Machine, mutation: Mutation, *, resolve: bool = True) -> None:
        """Start a transition; with `resolve=False` (a replayed, external change) the caller sets
        `targets`, `enters` and `exits` and runs the tracer hooks itself."""
        m = machine
        self._id = ""
        self._id_num = 0
        self.machine = m
        self.mutation = mutation
        self.time_before = Time(m._ticks)
        self._time_after: Time | None = None
        # the machine replaces (never mutates) its active list and set, so sharing them is safe
        self.states_before: tuple[str, ...] = m._active
        self._before_set: set[str] | frozenset[str] = m._active_set
        self.completed = False
        #: a handler raised (docs/machine.md §4.7): a local transition is canceled as a whole,
        #: never partially accepted, and `Exception` is prepended; a mirrored change (made by
        #: `apply_clock`) stays applied
        self.failed = False
        self.activated: list[str] = _EMPTY
        self.deactivated: list[str] = _EMPTY
        self.log_entries: list[LogEntry] = []
        self.pre_log_entries: list[LogEntry] = _NO_LOG
        self.queue_len = 0
        self._latest_to = ""
        self._latest_enter = False
        self._steps_on = m._collect_steps and (not mutation.is_check or m._collect_check_steps)
        self.steps: list[Step] = []

        # assign early to catch the logs
        m._tx = self
        if not resolve:
            self.accepted = True
            self.targets, self.exits, self.enters = [], [], []
            return
        lvl = m._lvl
        if lvl >= _OPS:
            self._log_mutation()
        # relations are a pure function of the mutation, the active states and what is being
        # recorded (steps, log level): resolve once, then replay the result and its output
        key = (mutation.type, *mutation.called, None, *m._active, mutation.is_auto,
               mutation.is_check, self._steps_on, lvl)
        plan = m._plans.get(key)
        if plan is None:
            plan = m._store_plan(key, self._resolve)
        else:
            if plan[4]:
                self.steps = list(plan[4])
            for level, text in plan[5]:
                m._log(level, text)
        # copies: a tracer or handler mutating its transition must not poison the cache
        self.targets = list(plan[0])
        self.accepted = plan[1]
        self.exits = list(plan[2])
        self.enters = list(plan[3])
        for tracer in m._tracers:
            tracer.transition_init(self)

    def _log_mutation(self) -> None:
        m = self.machine
        mutation = self.mutation
        called = " ".join(mutation.called)
        args = mutation.log_args(m.args_mapper)
        if mutation.is_auto:
            m._log(_DECISIONS, "[%s:auto] %s%s", mutation.type, called, args)
        else:
            m._log(_OPS, "[%s] %s%s", mutation.type, called, args)
        src = mutation.source
        if src is not None:
            m._log(_OPS, "[source] %s/%s/%d", src.mach_id, src.tx_id, src.mach_time)

    def _resolve(self) -> tuple[Any, ...]:
        """Resolve relations and acceptance: (targets, accepted, exits, enters, steps)."""
        m = self.machine
        called = self.mutation.called
        if self._steps_on:
            self.steps.extend(Step(StepType.CALLED, "", s) for s in called)
        to_set = self._states_to_set(self.mutation.type, called)
        self.targets = m._resolver.target_states(self, to_set)
        if m._lvl >= _OPS:
            implied = [s for s in self.targets if s not in to_set]
            if implied:
                m._log(_OPS, "[implied] %s", " ".join(implied))
        self.accepted = True
        self.exits = self.enters = _EMPTY
        self._setup_accepted()
        if self.accepted:
            self._setup_exit_enter()
        if self._steps_on:
            self._dedupe_relation_steps()
        return self.targets, self.accepted, self.exits, self.enters, tuple(self.steps)

    def _dedupe_relation_steps(self) -> None:
        """Keep each relation step once: the resolver checks Require twice (like Go), which
        would show every `X require Y` twice in a debugger."""
        seen: set[tuple[str, str, object]] = set()
        out: list[Step] = []
        for step in self.steps:
            if step.type == StepType.RELATION:
                key = (step.from_state, step.to_state, step.relation)
                if key in seen:
                    continue
                seen.add(key)
            out.append(step)
        self.steps = out

    # --- read-only views ---

    @property
    def id(self) -> str:
        """Random 16-hex-digit id, made on first use (most transitions are never asked)."""
        if not self._id:
            self._id = "%016x" % self.id_num
        return self._id

    @property
    def id_num(self) -> int:
        """The id as a 64-bit int (what recorders store, without formatting and parsing)."""
        if not self._id_num:
            self._id_num = _rand.getrandbits(64) or 1
        return self._id_num

    @property
    def time_after(self) -> Time:
        """Ticks after the transition: predicted during negotiation, exact from the final phase
        on, equal to `time_before` when canceled."""
        if self._time_after is None:
            if self.mutation.is_check:
                return self.time_before
            self._time_after = self._predict_time(self.mutation.called, self.targets)
        return self._time_after

    @property
    def called(self) -> list[str]:
        """States explicitly passed to the mutation."""
        return self.mutation.called

    @property
    def args(self) -> dict[str, Any]:
        """The mutation's args (the same dict every handler sees)."""
        return self.mutation.args

    @property
    def type(self) -> MutationType:
        """add, remove or set."""
        return self.mutation.type

    @property
    def is_auto(self) -> bool:
        """True for a transition made by Auto states; it never triggers another auto one."""
        return self.mutation.is_auto

    @property
    def is_check(self) -> bool:
        """True for `can_add`/`can_remove`: negotiation only, nothing applied."""
        return self.mutation.is_check

    @property
    def is_health(self) -> bool:
        """True for an add of exactly `Heartbeat` or `Healthcheck` (no auto states follow)."""
        return self.mutation.is_health

    @property
    def target_states(self) -> list[str]:
        """Alias of `targets` (Go TargetStates)."""
        return self.targets

    def clock_before(self) -> dict[str, int]:
        """Ticks by name before the transition."""
        return dict(zip(self.machine._names, self.time_before, strict=False))

    def clock_after(self) -> dict[str, int]:
        """Ticks by name after the transition (predicted until the final phase)."""
        return dict(zip(self.machine._names, self.time_after, strict=False))

    def __repr__(self) -> str:
        return f"Transition({self.id} {self.mutation.describe()} accepted={self.accepted})"

    def __str__(self) -> str:
        """`tx#<id>`, the mutation, the source and the steps, one per line (Go String)."""
        lines = [f"tx#{self.id}", self.mutation.describe()]
        src = self.mutation.source
        if src is not None:
            lines.append(f"source: {src.mach_id}/{src.tx_id}/t{src.mach_time}")
        lines.extend(f"- {step}" for step in self.steps)
        return "\n".join(lines)

    # --- setup ---

    def _states_to_set(self, mtype: MutationType, called: list[str]) -> list[str]:
        m = self.machine
        active = m._active
        steps = self.steps if self._steps_on else None
        if mtype == _ADD:
            if steps is not None:
                steps.extend(Step(StepType.ACTIVATE, "", s) for s in called
                             if s not in m._active_set)
            return [*called, *active] if active else called
        if mtype == _REMOVE:
            if steps is not None:
                steps.extend(Step(StepType.DEACTIVATE, "", s) for s in called)
            return [s for s in active if s not in called]
        if steps is not None:
            steps.extend(Step(StepType.ACTIVATE, "", s) for s in called if s not in m._active_set)
            steps.extend(Step(StepType.DEACTIVATE, "", s) for s in active if s not in called)
        return called

    def _predict_time(self, called: list[str], targets: list[str]) -> Time:
        m = self.machine
        after = Time(self.time_before)
        index = m._index
        before = self._before_set
        schema = m._schema
        for name in targets:
            if name not in before:
                after[index[name]] += 1
            elif name in called and schema[name].multi:
                after[index[name]] += 2
        if len(before) > 0:
            tset = set(targets)
            for name in before:
                if name not in tset:
                    after[index[name]] += 1
        return after

    def _setup_accepted(self) -> None:
        mut = self.mutation
        if mut.type == _REMOVE:
            return
        called = mut.called
        targets = self.targets
        not_accepted = [s for s in called if s not in targets]
        if mut.is_auto:
            if len(not_accepted) < len(called):
                return  # partially accepted
            self.accepted = False
        if not not_accepted:
            return
        m = self.machine
        if mut.is_check and any(m._schema[s].multi for s in called):
            return
        self.accepted = False
        if m._lvl >= _OPS:
            m._log(_OPS, "[cancel:reject] %s", " ".join(not_accepted))
        if self._steps_on:
            self.steps.extend(Step(StepType.CANCEL, "", s) for s in not_accepted)

    def _setup_exit_enter(self) -> None:
        m = self.machine
        targets = self.targets
        active = m._active
        if active:
            tset = set(targets)
            exits = [s for s in active if s not in tset]
            m._resolver.sort_states(exits)
        else:
            exits = []
        self.exits = exits
        active_set = m._active_set
        called = self.mutation.called
        schema = m._schema
        self.enters = [s for s in targets
                       if s not in active_set or (s in called and schema[s].multi)]

    # --- execution ---

    def emit(self) -> int:
        """Run the negotiation and final phases; return the result (Go emitEvents)."""
        m = self.machine
        mut = self.mutation
        result: Result = EXECUTED if self.accepted else CANCELED
        called = mut.called
        is_auto = mut.is_auto
        tracers = m._tracers
        for tracer in tracers:
            tracer.transition_start(self)
        d = m._dispatcher
        index = d.index
        everything = m._lvl >= _EVERYTHING
        dispatch = bool(index) or everything

        # NEGOTIATION (cancellable); a failed transition returns CANCELED from every loop
        if dispatch:
            if result != CANCELED and self.exits:
                result = self._emit_exits(d, index, everything)
            if result != CANCELED and self.enters:
                result = self._emit_enters(d, index, everything)
            if result != CANCELED and mut.type != _REMOVE:
                result = self._emit_self(d, index, everything)
            if result != CANCELED and (d.pairs or everything):
                result = self._emit_state_state(d, index, everything)
            if is_auto and not self.targets:
                result = CANCELED
            if result != CANCELED and (everything or "AnyEnter" in index):
                result = self._emit(d, ANY, ANY, "AnyEnter", ANY, False, True)

        if not mut.is_check:
            changed = False
            if is_auto:
                self._re_resolve_auto()
            if result != CANCELED:
                m._set_active_states(called, self.targets, is_auto)
                if is_auto:
                    before = self._before_set
                    now = m._active_set
                    self.activated = [s for s in m._active if s not in before]
                    self.deactivated = [s for s in self.states_before if s not in now]
                else:
                    self.activated = self.enters
                    self.deactivated = self.exits
                subs = m._subs
                if subs.ctxs:
                    subs.cancel_state_ctxs(self.activated, self.deactivated)
                self._time_after = Time(m._ticks)
                for tracer in tracers:
                    tracer.transition_finals(self)
                if dispatch or subs.when_args:
                    result = self._emit_finals(d, index, everything)
                    if result == CANCELED:
                        self._roll_back_finals()
                        self._time_after = Time(m._ticks)
                changed = self._time_after != self.time_before
            else:
                self._time_after = self.time_before
            if result != CANCELED and (everything or "AnyState" in index):
                result = self._emit(d, ANY, ANY, "AnyState", ANY, True, True)
            if m._on_change:
                for fn in m._on_change:
                    fn(m, self.time_before, self._time_after)
            if result == CANCELED:
                self.accepted = False
            elif changed and not is_auto and m._auto_states and not m._disposing and \
                    not mut.is_health:
                auto = m._resolver.new_auto_mutation()
                if auto is not None:
                    if m._lvl >= _OPS:
                        m._log(_OPS, "[auto] %s", " ".join(auto.called))
                    m._prepend(auto)
        elif result == CANCELED:
            self.accepted = False

        if m._log_buffer:
            self.pre_log_entries = m._log_buffer
            m._log_buffer = []
        self.queue_len = len(m._queue)
        self.completed = True
        for tracer in tracers:
            tracer.transition_end(self)

        if result == CANCELED:
            return CANCELED
        if mut.is_check:
            return result
        active = m._active_set
        if mut.type == _REMOVE:
            for s in called:
                if s in active:
                    return CANCELED
            return EXECUTED
        if is_auto:
            return EXECUTED if len(self.targets) > len(self.states_before) else CANCELED
        for s in self.targets:
            if s not in active:
                return CANCELED
        return EXECUTED

    def _re_resolve_auto(self) -> None:
        """Re-resolve an auto transition without the states vetoed by handlers or relations, so
        that what they Add is dropped too (Go does this for every auto transition).

        Unlike Go, the relation steps are not recorded a second time; only the states this
        re-resolution drops are, as cancel steps.
        """
        m = self.machine
        before = self.targets
        targets = set(before)
        clean = [s for s in self.mutation.called if s in targets]
        key = ("auto", *clean, None, *m._active, m._lvl)
        plan = m._plans.get(key)
        if plan is None:
            steps_on = self._steps_on

            def resolve() -> tuple[Any, ...]:
                self._steps_on = False
                try:
                    self.targets = m._resolver.target_states(
                        self, self._states_to_set(_ADD, clean))
                    self._setup_exit_enter()
                finally:
                    self._steps_on = steps_on
                return self.targets, self.exits, self.enters

            plan = m._store_plan(key, resolve)
        else:
            for level, text in plan[3]:
                m._log(level, text)
        self.targets = list(plan[0])
        self.exits = list(plan[1])
        self.enters = list(plan[2])
        if self._steps_on:
            kept = set(self.targets)
            self.steps.extend(Step(StepType.CANCEL, "", s) for s in before if s not in kept)

    def _emit(self, d: HandlerDispatcher, from_state: str, to_state: str, name: str, state: str,
              is_final: bool, is_enter: bool, is_self: bool = False) -> Result:
        """Dispatch one handler name to every binding and record a step if any ran."""
        self._latest_to = to_state
        self._latest_enter = is_enter
        res, ran, duration = d.handle(self, name, state, is_final, is_self)
        if ran and self._steps_on:
            step = Step(StepType.HANDLER, from_state, to_state)
            step.is_final = is_final
            step.is_enter = is_enter
            step.is_self = is_self
            step.handler = name
            step.duration = duration
            self.steps.append(step)
        return res

    def _drop_auto(self, state: str) -> bool:
        """Partial acceptance: drop a vetoed Auto state from the targets; False if the veto
        cancels the whole transition (not Auto, or a handler raised: the transition failed)."""
        if self.failed or not self.mutation.is_auto or not self.machine._schema[state].auto:
            return False
        if state not in self.targets:
            # Go crashes here (an exiting Auto state vetoed its Exit: docs/machine.md §6,
            # row 5); the intended behaviour is to cancel the whole auto transition
            return False
        self.targets = [s for s in self.targets if s != state]
        return True

    def _emit_exits(self, d: HandlerDispatcher, index: dict[str, Any], everything: bool
                    ) -> Result:
        for s in self.exits:
            name = s + SUFFIX_EXIT
            if (everything or name in index) and \
                    self._emit(d, s, "", name, s, False, False) == CANCELED and \
                    not self._drop_auto(s):
                return CANCELED
        return EXECUTED

    def _emit_enters(self, d: HandlerDispatcher, index: dict[str, Any], everything: bool
                     ) -> Result:
        for s in self.enters:
            name = s + SUFFIX_ENTER
            if (everything or name in index) and \
                    self._emit(d, "", s, name, s, False, True) == CANCELED and \
                    not self._drop_auto(s):
                return CANCELED
        return EXECUTED

    def _emit_self(self, d: HandlerDispatcher, index: dict[str, Any], everything: bool
                   ) -> Result:
        active = self.machine._active_set
        # iterates a copy: unlike Go, a dropped Auto state does not skip the next one's handler
        for s in list(self.targets):
            if s not in active:
                continue
            name = s + s
            if (everything or name in index) and \
                    self._emit(d, "", s, name, s, False, False, True) == CANCELED and \
                    not self._drop_auto(s):
                return CANCELED
        return EXECUTED

    def _emit_state_state(self, d: HandlerDispatcher, index: dict[str, Any], everything: bool
                          ) -> Result:
        pairs = d.pairs
        schema = self.machine._schema
        after = list(self.targets)
        for b in self.states_before:
            if not everything and b not in pairs:
                continue
            for a in after:
                if a == b:
                    continue
                name = b + a
                if not everything and name not in index:
                    continue
                if self._emit(d, b, a, name, a, False, False) != CANCELED:
                    continue
                if not self.failed and self.mutation.is_auto and schema[a].auto:
                    # a state already dropped by another pair stays dropped
                    if a in self.targets:
                        self.targets = [s for s in self.targets if s != a]
                    continue
                return CANCELED
        return EXECUTED

    def _emit_finals(self, d: HandlerDispatcher, index: dict[str, Any], everything: bool
                     ) -> Result:
        subs = self.machine._subs
        when_args = subs.when_args
        args = self.mutation.args
        for s in self.exits:
            name = s + SUFFIX_END
            if (everything or name in index) and \
                    self._emit(d, "", s, name, s, True, False) == CANCELED:
                return CANCELED
        for s in self.enters:
            name = s + SUFFIX_STATE
            if (everything or name in index) and \
                    self._emit(d, "", s, name, s, True, True) == CANCELED:
                return CANCELED
            if when_args and s in when_args:
                subs.process_when_args(s, args)
        return EXECUTED

    def _roll_back_finals(self) -> None:
        """A final handler failed or timed out: deactivate the enters whose `State` handler did
        not complete (Go recoverFinalPhase).

        Unlike Go, exited states stay exited, enters after a failed `End` are rolled back too,
        and Multi states are not re-ticked (docs/machine.md §6, row 11).
        """
        m = self.machine
        finals = self.exits + self.enters
        n_exits = len(self.exits)
        pos = -1
        for i, s in enumerate(finals):
            if s == self._latest_to and (i >= n_exits) == self._latest_enter:
                pos = i
                break
        if pos < 0:
            return
        drop = set(finals[max(pos, n_exits):])
        target = [s for s in m._active if s not in drop]
        m._log(_OPS, "[recover] partial final states as (%s)", " ".join(target))
        m._set_active_states([], target, self.mutation.is_auto)
