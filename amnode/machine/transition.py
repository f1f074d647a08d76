"""One transition: resolving a mutation, negotiating with handlers, applying it (Go transition.go).

The phases and the handler order are Go's: docs/machine.md §2.7 (phases) and §3 (handler order).
Handlers are called only through the machine's `HandlerDispatcher`; a handler that raises marks
the transition `failed`, and every handler loop here stops at a failed transition. Of the
machine, a transition reads its clock and schema, its log, tracers, resolver (and plan cache),
subscriptions and queue, and applies targets with `Machine._apply`.

A transition replays a cached `Plan` (resolution, handler calls, clock change; see
`amnode.machine.plan`) whenever one exists for its mutation and the active states, and
resolves relations only otherwise: docs/machine.md §7 says where the time goes.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from .clock import Time
from .failure import RELATIONS, Failure
from .log import LogEntry, LogLevel
from .mutation import CANCELED, EXECUTED, Mutation, MutationType, Result
from .plan import (
    ANY_ENTER,
    PAIR,
    REPLAY_UNKNOWN,
    SELF,
    Apply,
    Call,
    Final,
    Plan,
    classify,
    final_calls,
    make_apply,
    negotiation_calls,
)
from .schema import ANY, SUFFIX_END, SUFFIX_STATE
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
_RELATION = StepType.RELATION
_rand = random.Random()
_mono = time.monotonic_ns
#: shared empty defaults of a transition's lists; never appended to (the machine replaces them
#: with a list of their own when it has something to put in)
_EMPTY: list[Any] = []
_NO_LOG: list[LogEntry] = []
_NO_STEPS: list[Step] = []
_handler_step = Step.handler_step

#: A list of state names as the machine keeps it: a plan's tuple, or a list made for one
#: transition (never changed in place either way).
Names = tuple[str, ...] | list[str]


def new_id() -> str:
    """A random 16-hex-digit id, like Go's randId(16)."""
    return "%016x" % _rand.getrandbits(64)


def seed_ids(seed: int | None) -> None:
    """Make machine, transition and binding ids reproducible (e.g. for sample recordings and
    tests); `None` reseeds from the OS."""
    _rand.seed(seed)


class Transition:
    """A mutation being executed; what handlers (`e.transition`) and tracers see.

    The name lists (`targets`, `exits`, `enters`, `activated`, `deactivated`) are the
    transition's own lists, made on first access from what the machine works with (shared,
    immutable sequences of its cached plan): changing them cannot affect the machine.
    """

    __slots__ = (
        "_act", "_applied", "_before_set", "_deact", "_enters", "_exits", "_fplan", "_id",
        "_id_num",
        "_latest_enter", "_latest_to", "_plan", "_pub", "_steps_on", "_targets", "_time_after",
        "accepted", "completed", "failed", "failure", "log_entries", "machine", "mutation",
        "pre_log_entries", "queue_len", "start_ns", "states_before", "steps", "time_before",
    )

    def __init__(self, machine: Machine, mutation: Mutation, plan: Plan | None = None,
                 key: tuple[Any, ...] | None = None, *, resolve: bool = True) -> None:
        """Start a transition; with `resolve=False` (a replayed, external change) the caller sets
        `targets`, `enters` and `exits` and runs the tracer hooks itself. `key` and `plan` are
        the plan cache key and its entry (None: not cached) when the drain of a machine that
        nobody observes looked them up (Machine._process_queue)."""
        m = machine
        self._id = ""
        self._id_num = 0
        self.machine = m
        self.mutation = mutation
        self.time_before = Time(m._ticks)
        #: None until computed: predicted before the change is applied, then made from
        #: `time_before` and `_applied` when first asked for
        self._time_after: Time | None = None
        self._applied: Apply | None = None
        # the machine replaces (never mutates) its active tuple and set, so sharing them is safe
        self.states_before: tuple[str, ...] = m._active
        self._before_set: set[str] | frozenset[str] = m._active_set
        self.completed = False
        #: a handler raised (docs/machine.md §4.7): a local transition is canceled as a whole,
        #: never partially accepted, and `Exception` is prepended; a mirrored change (made by
        #: `apply_clock`) stays applied
        self.failed = False
        #: why it was canceled, as data (amnode.machine.failure), at every log level; None
        #: while it is not canceled
        self.failure: Failure | None = None
        self._act: Names = ()
        self._deact: Names = ()
        self._targets: Names
        self._exits: Names
        self._enters: Names
        self._pub: dict[str, list[str]] | None = None
        self.log_entries: list[LogEntry] = _NO_LOG
        self.pre_log_entries: list[LogEntry] = _NO_LOG
        self.queue_len = 0
        self.steps: list[Step] = _NO_STEPS
        #: when it started (time.monotonic_ns), stamped while a tracer asks for it
        #: (`Tracer.start_time`); 0 otherwise
        self.start_ns = _mono() if m._start_time else 0
        # assign early to catch the logs
        m._tx = self
        if key is not None and plan is not None:
            # found by the drain of a machine nobody observes: no log, steps or tracers
            self._steps_on = False
            self._plan = self._fplan = plan
            self._targets = plan.targets
            self._exits = plan.exits
            self._enters = plan.enters
            self.accepted = plan.accepted
            return
        steps_on = self._steps_on = m._collect_steps and (
            not mutation.is_check or m._collect_check_steps)
        if not resolve:
            self.accepted = True
            self._targets = self._exits = self._enters = ()
            return
        lvl = m._lvl
        if lvl >= _OPS:
            self._log_mutation()
        # relations are a pure function of the mutation, the active states and what is being
        # recorded (steps, log level): resolve once, then replay the result and its output
        if key is None:
            key = (mutation.type, *mutation.called, None, *m._active, mutation.is_auto,
                   mutation.is_check, steps_on, lvl)
            plan = m._plans.get(key)
        if plan is None:
            plan = m._store_plan(key, self._resolve)
        else:
            if steps_on:
                self.steps = list(plan.steps)
            for level, text in plan.log:
                m._log(level, text)
        self._plan = self._fplan = plan
        self._targets = plan.targets
        self._exits = plan.exits
        self._enters = plan.enters
        self.accepted = plan.accepted
        for tracer in m._tr_init:
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

    def _resolve(self) -> Plan:
        """Resolve relations and acceptance (the plan's fields; `Machine._store_plan` adds the
        log lines emitted meanwhile)."""
        m = self.machine
        called = self.mutation.called
        steps: list[Step] | None = None
        if self._steps_on:
            steps = self.steps = [Step(StepType.CALLED, "", s) for s in called]
        to_set = self._states_to_set(self.mutation.type, called)
        self._targets = targets = m._resolver.target_states(self, to_set)
        if m._lvl >= _OPS:
            implied = [s for s in targets if s not in to_set]
            if implied:
                m._log(_OPS, "[implied] %s", " ".join(implied))
        self.accepted = True
        self._exits = self._enters = ()
        self._setup_accepted()
        if self.accepted:
            self._setup_exit_enter()
        if steps is not None:
            self.steps = steps = _dedupe_steps(self.steps)
        # the plan's steps are shared by every replay; this transition appends to its own list
        return Plan(targets, self.accepted, self._exits, self._enters, steps or (), ())

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

    def _own_list(self, name: str, items: Any) -> list[str]:
        """This transition's own copy of one of its name lists (made once, until it changes)."""
        pub = self._pub
        if pub is None:
            pub = self._pub = {}
        out = pub.get(name)
        if out is None:
            out = pub[name] = list(items)
        return out

    @property
    def targets(self) -> list[str]:
        """Target states, in handler order (Go TargetStates)."""
        return self._own_list("targets", self._targets)

    @targets.setter
    def targets(self, value: list[str]) -> None:
        self._targets = list(value)
        self._pub = None

    @property
    def exits(self) -> list[str]:
        """Active states this transition deactivates, in exit handler order."""
        return self._own_list("exits", self._exits)

    @exits.setter
    def exits(self, value: list[str]) -> None:
        self._exits = list(value)
        self._pub = None

    @property
    def enters(self) -> list[str]:
        """States this transition activates (and called active Multi states), in target order."""
        return self._own_list("enters", self._enters)

    @enters.setter
    def enters(self, value: list[str]) -> None:
        self._enters = list(value)
        self._pub = None

    @property
    def activated(self) -> list[str]:
        """What really changed to active (after apply; empty until then or when canceled)."""
        return self._own_list("activated", self._act)

    @activated.setter
    def activated(self, value: list[str]) -> None:
        self._act = list(value)
        self._pub = None

    @property
    def deactivated(self) -> list[str]:
        """What really changed to inactive (after apply; empty until then or when canceled)."""
        return self._own_list("deactivated", self._deact)

    @deactivated.setter
    def deactivated(self, value: list[str]) -> None:
        self._deact = list(value)
        self._pub = None

    @property
    def time_after(self) -> Time:
        """Ticks after the transition: predicted during negotiation, exact from the final phase
        on, equal to `time_before` when canceled."""
        after = self._time_after
        if after is None:
            a = self._applied
            if a is not None:
                after = Time(self.time_before)
                for i, delta in a.deltas:
                    after[i] += delta
            elif self.mutation.is_check:
                return self.time_before
            else:
                after = self._predict_time(self.mutation.called, self._targets)
            self._time_after = after
        return after

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

    def _predict_time(self, called: list[str], targets: Any) -> Time:
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
        targets = self._targets
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
        targets = self._targets
        active = m._active
        if active:
            tset = set(targets)
            exits = [s for s in active if s not in tset]
            m._resolver.sort_states(exits)
        else:
            exits = []
        self._exits = exits
        active_set = m._active_set
        called = self.mutation.called
        schema = m._schema
        self._enters = [s for s in targets
                        if s not in active_set or (s in called and schema[s].multi)]

    # --- execution ---

    def emit(self) -> int:
        """Run the negotiation and final phases; return the result (Go emitEvents)."""
        m = self.machine
        mut = self.mutation
        plan = self._plan
        result: Result = EXECUTED if self.accepted else CANCELED
        is_auto = mut.is_auto
        for tracer in m._tr_start:
            tracer.transition_start(self)
        d = m._dispatcher
        dispatch = bool(d.index) or m._lvl >= _EVERYTHING

        # NEGOTIATION (cancellable); a failed transition returns CANCELED from every loop
        if dispatch and result != CANCELED:
            calls = plan.calls
            if calls is None:
                calls = plan.calls = negotiation_calls(
                    m, mut.type == _REMOVE, plan.targets, plan.exits, plan.enters,
                    self.states_before)
            if calls:
                result = self._negotiate_auto(d, calls) if is_auto else \
                    self._negotiate(d, calls)

        if mut.is_check:
            if result == CANCELED:
                if not self.accepted and self.failure is None:
                    self.failure = Failure(RELATIONS, states=tuple(
                        s for s in mut.called if s not in plan.targets))
                self.accepted = False
            return self._end(result)
        a: Apply | None = None
        if is_auto:
            a = self._re_resolve_auto()
        if result == CANCELED:
            if not self.accepted and self.failure is None:
                self.failure = Failure(RELATIONS, states=tuple(
                    s for s in mut.called if s not in plan.targets))
            self._time_after = self.time_before
            for fn in m._on_change:
                fn(m, self.time_before, self.time_after)
            self.accepted = False
            return self._end(CANCELED)

        if a is None:
            if is_auto:  # a handler dropped a state: not cached
                a = make_apply(m, mut.called, self._targets, True)
            else:
                a = plan.apply
                if a is None:
                    a = plan.apply = make_apply(m, mut.called, plan.targets, False)
        m._apply(a)
        if is_auto:
            self._act, self._deact = a.activated, a.deactivated
        else:
            self._act, self._deact = self._enters, self._exits
        subs = m._subs
        if subs.ctxs:
            subs.cancel_state_ctxs(self._act, self._deact)
        # exact from now on, computed when asked for (drops a prediction)
        self._applied = a
        self._time_after = None
        for tracer in m._tr_finals:
            tracer.transition_finals(self)
        if subs.when_args:
            result = self._emit_finals(d, d.index, m._lvl >= _EVERYTHING)
        elif dispatch:
            fplan = self._fplan
            finals = fplan.finals
            if finals is None:
                finals = fplan.finals = final_calls(m, fplan.exits, fplan.enters)
            if finals:
                result = self._run_finals(d, finals)
        return self._after_finals(result, a)

    def emit_plain(self) -> int:
        """`emit` of a `REPLAY_FINALS` plan (amnode.machine.plan) while nobody observes the
        machine: only final handlers can run, so apply the cached change and run them, skipping
        the checks for everything else. Whatever a handler changed that `emit` would have to
        look at (a failure, a tracer, a log level, `on_change`, an `AnyState` handler) is
        handled by the same code as in `emit`."""
        m = self.machine
        plan = self._plan
        a: Apply = plan.apply  # type: ignore[assignment]
        ticks = m._ticks
        for i, delta in a.deltas:
            ticks[i] += delta
        m._active = a.active
        m._active_set = a.active_set
        self._act = self._enters
        self._deact = self._exits
        self._applied = a
        d = m._dispatcher
        result = self._run_finals(d, plan.finals)  # type: ignore[arg-type]
        if result == CANCELED or m._tracers or m._lvl or m._on_change or "AnyState" in d.index:
            return self._after_finals(result, a)
        if plan.queue_auto:
            m._queue_auto(a)
        self.queue_len = len(m._queue)
        self.completed = True
        return plan.result

    def _after_finals(self, result: Result, a: Apply) -> int:
        """After the final handlers of an applied change: roll back a failed final phase, run
        `AnyState`, call `on_change`, queue the Auto states, end the transition."""
        m = self.machine
        d = m._dispatcher
        if result == CANCELED:
            self._roll_back_finals()
            self._time_after = Time(m._ticks)
            changed = self._time_after != self.time_before
        else:
            changed = bool(a.deltas)
            if m._lvl >= _EVERYTHING or "AnyState" in d.index:
                result = self._emit(d, ANY, ANY, "AnyState", ANY, True, True)
        for fn in m._on_change:
            fn(m, self.time_before, self.time_after)
        mut = self.mutation
        if result == CANCELED:
            self.accepted = False
        elif changed and not mut.is_auto and m._auto_states and not m._disposing and \
                not mut.is_health:
            m._queue_auto(a)
        return self._end(result)

    def _end(self, result: Result) -> int:
        """Complete the transition (log lines, tracers) and return its result."""
        m = self.machine
        if m._log_buffer:
            self.pre_log_entries = m._log_buffer
            m._log_buffer = []
        self.queue_len = len(m._queue)
        self.completed = True
        if self.accepted and self.failure is not None:
            self.failure = None  # an Auto state's veto that dropped only that state
        for tracer in m._tr_end:
            tracer.transition_end(self)
        plan = self._plan
        if plan.replay == REPLAY_UNKNOWN:
            classify(m, plan, self)

        if result == CANCELED:
            return CANCELED
        mut = self.mutation
        if mut.is_check:
            return result
        active = m._active_set
        if mut.type == _REMOVE:
            for s in mut.called:
                if s in active:
                    return CANCELED
            return EXECUTED
        if mut.is_auto:
            return EXECUTED if len(self._targets) > len(self.states_before) else CANCELED
        for s in self._targets:
            if s not in active:
                return CANCELED
        return EXECUTED

    def _negotiate(self, d: HandlerDispatcher, calls: tuple[Call, ...]) -> Result:
        """Negotiation of a non-Auto transition: the first veto, raise or timeout cancels."""
        handle = d.handle
        steps_on = self._steps_on
        for call in calls:
            _phase, name, from_state, to_state, state, is_enter, is_self = call
            res, ran, duration = handle(self, name, state, False, is_self)
            if ran and steps_on:
                self.steps.append(_handler_step(from_state, to_state, name, False, is_enter,
                                                is_self, duration, call))
            if res == CANCELED:
                return CANCELED
        return EXECUTED

    def _negotiate_auto(self, d: HandlerDispatcher, calls: tuple[Call, ...]) -> Result:
        """Negotiation of an Auto transition: a veto about an entering Auto state drops only
        that state (docs/machine.md §2.3). The `XX` and `XY` loops iterate the targets as they
        were when the loop started, so a state dropped before it is skipped there."""
        handle = d.handle
        steps_on = self._steps_on
        schema = self.machine._schema
        phase_targets: set[str] = set()
        current = -1
        for call in calls:
            phase, name, from_state, to_state, state, is_enter, is_self = call
            if phase != current:
                current = phase
                if phase in (SELF, PAIR):
                    phase_targets = set(self._targets)
                elif phase == ANY_ENTER and not self._targets:
                    return CANCELED
            if phase in (SELF, PAIR) and to_state not in phase_targets:
                continue
            res, ran, duration = handle(self, name, state, False, is_self)
            if ran and steps_on:
                self.steps.append(_handler_step(from_state, to_state, name, False, is_enter,
                                                is_self, duration, call))
            if res != CANCELED:
                continue
            if phase == PAIR:
                if not self.failed and schema[to_state].auto:
                    # a state already dropped by another pair stays dropped
                    if to_state in self._targets:
                        self._targets = [s for s in self._targets if s != to_state]
                        self._pub = None
                    continue
                return CANCELED
            if phase == ANY_ENTER or not self._drop_auto(state):
                return CANCELED
        if not self._targets:
            return CANCELED
        return EXECUTED

    def _run_finals(self, d: HandlerDispatcher, finals: tuple[Final, ...]) -> Result:
        """`XEnd` of the exits, then `XState` of the enters; the first failure stops them."""
        handle = d.handle
        steps_on = self._steps_on
        for final in finals:
            name, state, is_enter = final
            self._latest_to = state
            self._latest_enter = is_enter
            res, ran, duration = handle(self, name, state, True, False)
            if ran and steps_on:
                self.steps.append(_handler_step("", state, name, True, is_enter, False, duration,
                                                final))
            if res == CANCELED:
                return CANCELED
        return EXECUTED

    def _re_resolve_auto(self) -> Apply | None:
        """Re-resolve an auto transition without the states vetoed by handlers or relations, so
        that what they Add is dropped too (Go does this for every auto transition). Returns the
        clock change for the new targets when it is cached (None: make it).

        Unlike Go, the relation steps are not recorded a second time; only the states this
        re-resolution drops are, as cancel steps.
        """
        m = self.machine
        plan = self._plan
        before = self._targets
        unchanged = before is plan.targets
        a: Apply | None = None
        if unchanged and plan.reauto is not None:
            # no handler dropped a state: the re-resolution of this plan, cached with it
            rplan, a = plan.reauto
            for level, text in rplan.log:
                m._log(level, text)
        else:
            rplan = self._auto_plan(before)
            if unchanged:
                a = make_apply(m, self.mutation.called, rplan.targets, True)
                plan.reauto = (rplan, a)
        self._fplan = rplan
        self._targets = rplan.targets
        self._exits = rplan.exits
        self._enters = rplan.enters
        self._pub = None
        if self._steps_on:
            kept = set(rplan.targets)
            self.steps.extend(Step(StepType.CANCEL, "", s) for s in before if s not in kept)
        return a

    def _auto_plan(self, targets: Any) -> Plan:
        """The re-resolution of an Auto transition's mutation with only `targets` called."""
        m = self.machine
        kept = set(targets)
        clean = [s for s in self.mutation.called if s in kept]
        key = ("auto", *clean, None, *m._active, m._lvl)
        rplan = m._plans.get(key)
        if rplan is not None:
            for level, text in rplan.log:
                m._log(level, text)
            return rplan
        steps_on = self._steps_on

        def resolve() -> Plan:
            self._steps_on = False
            try:
                self._targets = m._resolver.target_states(
                    self, self._states_to_set(_ADD, clean))
                self._setup_exit_enter()
            finally:
                self._steps_on = steps_on
            return Plan(self._targets, True, self._exits, self._enters, (), ())

        return m._store_plan(key, resolve)

    def _emit(self, d: HandlerDispatcher, from_state: str, to_state: str, name: str, state: str,
              is_final: bool, is_enter: bool, is_self: bool = False) -> Result:
        """Dispatch one handler name to every binding and record a step if any ran."""
        self._latest_to = to_state
        self._latest_enter = is_enter
        res, ran, duration = d.handle(self, name, state, is_final, is_self)
        if ran and self._steps_on:
            self.steps.append(_handler_step(from_state, to_state, name, is_final, is_enter,
                                            is_self, duration, None))
        return res

    def _drop_auto(self, state: str) -> bool:
        """Partial acceptance: drop a vetoed Auto state from the targets; False if the veto
        cancels the whole transition (not Auto, or a handler raised: the transition failed)."""
        if self.failed or not self.mutation.is_auto or not self.machine._schema[state].auto:
            return False
        if state not in self._targets:
            # Go crashes here (an exiting Auto state vetoed its Exit: docs/machine.md §6,
            # row 5); the intended behaviour is to cancel the whole auto transition
            return False
        self._targets = [s for s in self._targets if s != state]
        self._pub = None
        return True

    def _emit_finals(self, d: HandlerDispatcher, index: dict[str, Any], everything: bool
                     ) -> Result:
        """The final handlers while `when_args` waits exist: each entered state's waits are
        matched right after its `XState` handler."""
        subs = self.machine._subs
        when_args = subs.when_args
        args = self.mutation.args
        for s in self._exits:
            name = s + SUFFIX_END
            if (everything or name in index) and \
                    self._emit(d, "", s, name, s, True, False) == CANCELED:
                return CANCELED
        for s in self._enters:
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
        finals = [*self._exits, *self._enters]
        n_exits = len(self._exits)
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


def _dedupe_steps(steps: list[Step]) -> list[Step]:
    """Keep each resolution step once. The resolver checks Require twice and applies Add in
    two passes (like Go), so a debugger would show every `X require Y`, every `X add Y` and
    the `activate Y` of an Add target twice, and a state reached by two relations (or called
    and added) would be activated twice in one transition."""
    seen: set[tuple[object, str, str, object]] = set()
    out: list[Step] = []
    for step in steps:
        key = (step.type, step.from_state, step.to_state, step.relation)
        if key in seen:
            continue
        seen.add(key)
        out.append(step)
    return out
