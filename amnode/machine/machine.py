"""The machine: schema, clocks and the mutation queue (Go machine.go).

It is composed of a `Resolver` (relations), a `HandlerDispatcher` (handler bindings and calls)
and `Subscriptions` (waits and state contexts); a `Transition` executes one mutation.

Mutations are synchronous and need no event loop: the first caller drains the queue, handlers run
inline on that thread, and a mutation issued while a drain is running returns its queue tick.
Waits (`when*`) are awaitables and need a running loop. A machine belongs to the thread that
created it; see `Machine.threadsafe` for other threads.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

from . import handlers as _handlers
from .clock import Time
from .errors import (
    DisposedError,
    EvalTimeoutError,
    NestedEvalError,
    SchemaError,
    StateUnknownError,
    WrongThreadError,
)
from .external import apply_clock
from .failure import raised
from .handlers import Event, HandlerDispatcher, current_event
from .log import ArgsMapper, LogEntry, LogLevel
from .mutation import (
    ARG_EXCEPTION,
    CANCELED,
    EXECUTED,
    QUEUED,
    AException,
    Mutation,
    MutationType,
    MutSource,
)
from .plan import REPLAY_FINALS, REPLAY_LEAN, UNKNOWN, Apply, Plan, make_apply
from .relations import Resolver
from .schema import (
    EXCEPTION,
    MACHINE_RESTORED,
    START,
    Schema,
    SchemaLike,
    State,
    StatesArg,
    parse_schema,
)
from .subscriptions import StateCtx, Subscriptions, Wait, done
from .tracer import HOT_HOOKS, Tracer, overrides
from .transition import _NO_LOG, Transition, new_id

_ADD = MutationType.ADD
_REMOVE = MutationType.REMOVE
_SET = MutationType.SET
_EXTERNAL = int(LogLevel.EXTERNAL)
_CHANGES = int(LogLevel.CHANGES)
_OPS = int(LogLevel.OPS)
_DECISIONS = int(LogLevel.DECISIONS)
_EVERYTHING = int(LogLevel.EVERYTHING)
_get_ident = threading.get_ident

#: Called with every new machine at the end of its constructor; `amnode.telemetry` registers the
#: `AMNODE_RECORD` recorder here (the machine package itself does no I/O).
MACHINE_INIT_HOOKS: list[Callable[[Machine], None]] = []


#: the machine's per-hook tracer lists, in the order of `HOT_HOOKS`
_HOOK_LISTS = ("_tr_init", "_tr_start", "_tr_finals", "_tr_end", "_tr_queued",
               "_tr_handler_start", "_tr_handler_end", "_tr_queue_end")


#: `handler_timeout` when the constructor is not given one and AMNODE_HANDLER_TIMEOUT is unset
DEFAULT_HANDLER_TIMEOUT = 0.1


class _DefaultTimeout(float):
    """The constructor's default `handler_timeout` (0.1), told apart from an explicit 0.1."""


_DEFAULT_TIMEOUT = _DefaultTimeout(DEFAULT_HANDLER_TIMEOUT)


def _env_handler_timeout() -> float | None:
    """AMNODE_HANDLER_TIMEOUT: seconds (> 0) or `none`; unset or invalid: the default.

    It replaces only the default, never a `handler_timeout` passed to the constructor: a test
    suite sets a generous value so that a stalled CI machine trips no timeout by accident.
    """
    raw = os.environ.get("AMNODE_HANDLER_TIMEOUT", "").strip()
    if raw.lower() == "none":
        return None
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_HANDLER_TIMEOUT
    return value if 0 < value < float("inf") else DEFAULT_HANDLER_TIMEOUT


def _env_debug() -> bool:
    return os.environ.get("AMNODE_DEBUG", "") not in ("", "0", "false")


def _env_log_level() -> LogLevel:
    raw = os.environ.get("AMNODE_LOG", "")
    try:
        return LogLevel(max(0, min(5, int(raw)))) if raw else LogLevel.NOTHING
    except ValueError:
        return LogLevel.NOTHING


def _default_logger(level: int, line: str) -> None:
    print(line, file=sys.stderr)


class Machine:
    """A clock-based state machine (Go am.Machine); see docs/machine.md."""

    def __init__(
        self,
        schema: SchemaLike,
        id: str | None = None,
        parent: Machine | str | None = None,
        tags: Iterable[str] = (),
        handlers: object | None = None,
        tracers: Iterable[Tracer] = (),
        log_level: LogLevel | int | None = None,
        handler_timeout: float | None = _DEFAULT_TIMEOUT,
        queue_limit: int = 1000,
        *,
        handler_deadline: float | None = 10.0,
        handler_backoff: float = 3.0,
        panic_to_exception: bool = True,
        log_stack_trace: bool = True,
        args_mapper: ArgsMapper | None = None,
        logger: Callable[[int, str], None] | None = None,
        detect_eval: bool = False,
        eval_timeout: float = 1.0,
    ) -> None:
        self.id: str = id or new_id()
        if isinstance(parent, Machine):
            self.parent_id: str = parent.id
        else:
            self.parent_id = parent or ""
        self.tags: list[str] = list(dict.fromkeys(tags))
        debug = _env_debug()
        if handler_timeout is _DEFAULT_TIMEOUT:
            handler_timeout = _env_handler_timeout()
        #: handlers running longer are treated as timed out (None or AMNODE_DEBUG=1: never)
        self.handler_timeout: float | None = None if debug else handler_timeout
        #: handlers running longer also clear the queue and start the backoff
        self.handler_deadline = None if debug else handler_deadline
        self.handler_backoff = handler_backoff
        self.queue_limit = queue_limit
        self.panic_to_exception = panic_to_exception
        self.log_stack_trace = log_stack_trace
        self.args_mapper: ArgsMapper | None = args_mapper
        self.logger: Callable[[int, str], None] = logger or _default_logger
        #: prefix log lines with the first 5 characters of the id
        self.log_id = True
        self.detect_eval = detect_eval or os.environ.get("AMNODE_DETECT_EVAL", "") == "1"
        self.eval_timeout = eval_timeout
        self._lvl = int(_env_log_level() if log_level is None else log_level)
        #: last error passed to add_err*/caught from a handler (Go Err())
        self.err: BaseException | None = None
        #: handler and eval timeouts, newest last (Go ErrInternal, buffer of 10)
        self.err_internal: deque[BaseException] = deque(maxlen=10)
        #: set by `import_data` (Go MachineTick)
        self.machine_tick = 0

        self._thread_id = _get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

        parsed, schema_errors = parse_schema(schema)
        self._exception_auto = EXCEPTION not in parsed
        if self._exception_auto:
            parsed[EXCEPTION] = State(multi=True)
        self._schema: Schema = parsed
        self._names: list[str] = sorted(parsed)
        self._index: dict[str, int] = {}
        #: the one clock of this machine, shared with subscriptions (fixes Go: docs/machine.md
        #: §6, row 8)
        self._ticks: list[int] = [0] * len(self._names)
        #: active states in the last target order; a tuple, so transitions can share it
        self._active: tuple[str, ...] = ()
        #: the same as a set; replaced, never changed in place (transitions share it too)
        self._active_set: set[str] | frozenset[str] = frozenset()
        self._auto_states: list[str] = []
        self._verified = False
        self._multi: frozenset[str] = frozenset()
        #: resolved relations by (mutation, active states); see Transition.__init__ and
        #: amnode.machine.plan
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self._capture: list[tuple[int, str]] | None = None
        #: group name -> state names (indexes are computed by `groups()`, so reordering is safe)
        self._groups: dict[str, list[str]] = {}
        self._groups_order: list[str] = []

        self._resolver = Resolver(self)
        self._subs = Subscriptions(self)
        self._machine_ctx = StateCtx("", 0)

        self._queue: deque[Mutation] = deque()
        self._queue_tick = 1
        self._ticks_pending = 0
        self._processing = False
        self._tx: Transition | None = None
        self._log_buffer: list[LogEntry] = []

        #: bound handlers and the calls into them
        self._dispatcher = HandlerDispatcher(self)

        self._tracers: list[Tracer] = []
        #: per hot hook, the tracers overriding it (changed in place by `_update_tracer_flags`,
        #: so a loop running over one sees a tracer bound or detached meanwhile, as before)
        self._tr_init: list[Tracer] = []
        self._tr_start: list[Tracer] = []
        self._tr_finals: list[Tracer] = []
        self._tr_end: list[Tracer] = []
        self._tr_queued: list[Tracer] = []
        self._tr_handler_start: list[Tracer] = []
        self._tr_handler_end: list[Tracer] = []
        self._tr_queue_end: list[Tracer] = []
        #: tracers whose `mutation_queued` wants mutations that run at once (queued_immediate)
        self._tr_queued_now: list[Tracer] = []
        self._collect_steps = False
        self._collect_check_steps = False
        #: a tracer asks for `Transition.start_ns`
        self._start_time = False

        #: dispose() was called: new mutations are canceled
        self._closing = False
        #: teardown running: the queue stops, handlers don't run, reads see nothing
        self._disposing = False
        self._disposed = False
        self._dispose_pending = False
        self._on_dispose: list[Callable[[str], None]] = []
        self._on_change: list[Callable[[Machine, Time, Time], None]] = []
        self._on_error: Callable[[Machine, BaseException], None] | None = None
        self._last_deadline: float | None = None
        self._breakpoints: list[tuple[list[str], list[str], bool]] = []
        #: called when a breakpoint matches (Go's "set your IDE breakpoint here")
        self.breakpoint_hook: Callable[[Machine, list[str], list[str]], None] | None = None

        self._reindex()
        self._resolver.new_schema()

        for tracer in tracers:
            self._tracers.append(tracer)
        self._update_tracer_flags()
        if isinstance(parent, Machine):
            for tracer in list(parent._tracers):
                tracer.new_submachine(parent, self)
        for tracer in list(self._tracers):
            tracer.machine_init(self)
        for hook in list(MACHINE_INIT_HOOKS):
            hook(self)
        if handlers is not None:
            self.bind_handlers(handlers)
        if schema_errors:
            self.add_err(SchemaError("; ".join(schema_errors)))

    # ------------------------------------------------------------------ schema and order

    def _store_plan(self, key: tuple[Any, ...], resolve: Callable[[], Plan]) -> Plan:
        """Run `resolve`, capturing the log lines it emits, and cache the result with them."""
        capture: list[tuple[int, str]] = []
        self._capture = capture
        try:
            plan = resolve()
        finally:
            self._capture = None
        plan.log = tuple(capture)
        if len(self._plans) >= 4096:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _reindex(self, old_names: list[str] | None = None) -> None:
        """Rebuild the name index (reordering the shared tick list in place) and the caches."""
        if old_names is not None:
            old = dict(zip(old_names, self._ticks, strict=False))
            self._ticks[:] = [old.get(n, 0) for n in self._names]
        self._index = {name: i for i, name in enumerate(self._names)}
        self._auto_states = [n for n in self._names if self._schema[n].auto]
        self._multi = frozenset(n for n in self._names if self._schema[n].multi)
        self._plans.clear()

    @property
    def schema(self) -> Schema:
        """A deep copy of the parsed schema (Go Schema())."""
        return {k: v.clone() for k, v in self._schema.items()}

    @property
    def state_names(self) -> list[str]:
        """States in the machine's order (sorted until `verify_states`)."""
        return list(self._names)

    @property
    def states_verified(self) -> bool:
        """True once `verify_states` fixed the order."""
        return self._verified

    @property
    def schema_version(self) -> int:
        """Number of states; grows with `set_schema` (Go SchemaVer)."""
        return len(self._names)

    def has(self, states: StatesArg) -> bool:
        """True if every state is defined (Go Has)."""
        if isinstance(states, str):
            return states in self._index
        return all(s in self._index for s in states)

    def index(self, state: str) -> int:
        """Position of a state in `state_names`, -1 when unknown (Go Index1)."""
        return self._index.get(state, -1)

    def verify_states(self, names: Iterable[str]) -> None:
        """Fix the state order to `names` (Go VerifyStates); every state must be listed.

        An auto-added `Exception` may be left out; it is appended.
        """
        self._own()
        names = list(dict.fromkeys(names))  # Go checks before dedupe; we don't (docs/machine.md §6)
        unknown = [n for n in names if n not in self._schema]
        if unknown:
            raise StateUnknownError("; ".join(
                f"state {n} not defined in schema for {self.id}" for n in unknown))
        if self._exception_auto and EXCEPTION not in names:
            names.append(EXCEPTION)
        missing = [n for n in self._names if n not in names]
        if missing:
            raise StateUnknownError(
                f"trying to verify less states than registered for {self.id}; missing: "
                + " ".join(missing))
        old_names, self._names = self._names, names
        self._verified = True
        self._reindex(old_names)
        self._resolver.new_schema()
        for tracer in list(self._tracers):
            tracer.verify_states(self)

    def set_schema(self, schema: SchemaLike, names: Iterable[str]) -> None:
        """Replace the schema with a larger one and fix its order (Go SetSchema)."""
        parsed, names, errors = self._new_schema(schema, names)
        if len(parsed) <= len(self._schema):
            raise SchemaError("schema error: new schema too short")
        self._install_schema(parsed, names, errors)

    def replace_schema(self, schema: SchemaLike, names: Iterable[str]) -> None:
        """Swap in any schema, e.g. of a restarted remote source; unlike `set_schema` it may
        shrink. Ticks of kept states survive; removed states are dropped from the active set."""
        parsed, names, errors = self._new_schema(schema, names)
        self._install_schema(parsed, names, errors)

    def _new_schema(self, schema: SchemaLike, names: Iterable[str]
                    ) -> tuple[Schema, list[str], list[str]]:
        """Parse a schema for `set_schema`/`replace_schema`; check it matches `names`."""
        self._own()
        if self._tx is not None:
            raise SchemaError("schema error: cannot change the schema during a transition")
        names = list(dict.fromkeys(names))
        parsed, errors = parse_schema(schema)
        if EXCEPTION not in parsed:
            parsed[EXCEPTION] = State(multi=True)
            if EXCEPTION not in names:
                names.append(EXCEPTION)
        unknown = [n for n in names if n not in parsed]
        if unknown:
            raise StateUnknownError(
                f"state {' '.join(unknown)} not defined in schema for {self.id}")
        if len(names) != len(parsed):
            raise SchemaError("schema error: names and schema differ in length")
        return parsed, names, errors

    def _install_schema(self, parsed: Schema, names: list[str], errors: list[str]) -> None:
        old, old_names = self._schema, self._names
        gone = [n for n in old_names if n not in parsed]
        self._schema = parsed
        self._names = names
        self._verified = True
        if gone:
            self._active = tuple(n for n in self._active if n in parsed)
            self._active_set = set(self._active)
        self._reindex(old_names)
        self._resolver.new_schema()
        self._dispatcher.rescan(self._names)
        if gone:
            self._subs.cancel_state_ctxs(gone, ())
        for tracer in list(self._tracers):
            tracer.schema_change(self, old)
        for tracer in list(self._tracers):
            tracer.verify_states(self)
        if errors:
            self.add_err(SchemaError("; ".join(errors)))

    def apply_clock(self, time: Sequence[int] | Mapping[str, int], *,
                    called: Sequence[str] | None = None,
                    mutation_type: MutationType = _SET, active: Iterable[str] | None = None,
                    source: MutSource | None = None, queue_tick: int | None = None,
                    machine_tick: int | None = None, label: str = "remote") -> Transition | None:
        """Show ticks received from elsewhere as one transition (no relations, no negotiation);
        see `amnode.machine.external.apply_clock`. Used by network mirrors."""
        return apply_clock(self, time, called=called, mutation_type=mutation_type,
                           active=active, source=source, queue_tick=queue_tick,
                           machine_tick=machine_tick, label=label)

    def set_groups(self, groups: Mapping[str, Iterable[str]], order: Iterable[str] | None = None
                   ) -> None:
        """Name groups of states (Go SetGroupsString); tracers see it as a schema change."""
        self._own()
        out: dict[str, list[str]] = {}
        for name, states in groups.items():
            out[name] = self._parse(list(states))
        self._groups = out
        self._groups_order = list(order) if order is not None else list(out)
        for tracer in list(self._tracers):
            tracer.schema_change(self, self._schema)

    def groups(self) -> tuple[dict[str, list[int]], list[str]]:
        """The groups as indexes into the current `state_names`, and their order (Go Groups)."""
        index = self._index
        return ({k: [index[s] for s in v if s in index] for k, v in self._groups.items()},
                list(self._groups_order))

    def _parse(self, states: StatesArg) -> list[str]:
        """Validate names, dedupe keeping order; raise on unknown ones (Go mustParseStates)."""
        index = self._index
        if type(states) is str:
            if states in index:
                return [states]
            states = [states]
        elif isinstance(states, str):
            states = [states]
        else:
            states = list(dict.fromkeys(states))
            for s in states:
                if s not in index:
                    break
            else:
                return states
        unknown = [s for s in states if s not in index]
        raise StateUnknownError("; ".join(
            f"state {s} not defined in schema for {self.id}" for s in unknown))

    def parse_states(self, states: StatesArg) -> list[str]:
        """Known states of `states`, deduped, in the given order (Go ParseStates, ordered)."""
        names = [states] if isinstance(states, str) else states
        return [s for s in dict.fromkeys(names) if s in self._index]

    # ------------------------------------------------------------------ threads

    @property
    def owner_thread_id(self) -> int:
        """`threading.get_ident()` of the thread that owns this machine."""
        return self._thread_id

    def _own(self) -> None:
        """Raise WrongThreadError unless called from the owner thread."""
        if self._thread_id != _get_ident():
            raise self._wrong_thread()

    def _wrong_thread(self) -> WrongThreadError:
        return WrongThreadError(
            f"machine {self.id} belongs to thread {self._thread_id}; mutate it from that thread "
            f"or through machine.threadsafe (called from thread {_get_ident()})")

    def bind_thread(self) -> None:
        """Make the calling thread (and its running loop, if any) the owner of this machine."""
        if self._processing:
            raise self._wrong_thread()
        self._thread_id = _get_ident()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @property
    def threadsafe(self) -> Any:
        """A proxy whose mutations are safe from any thread (scheduled on the owner's loop)."""
        from .threadsafe import ThreadsafeMachine

        return ThreadsafeMachine(self)

    # ------------------------------------------------------------------ mutations

    def _refused(self, names: list[str], *, backoff: bool = True, queue: bool = True,
                 exempt: MutationType | None = None) -> bool:
        """The guards every mutation shares (Go's pre-checks): raise from a foreign thread;
        True when it must return CANCELED (disposing, backoff, full queue). A full queue still
        takes an `Exception` add while not erroring, or its removal while erroring (`exempt`)."""
        if self._thread_id != _get_ident():
            raise self._wrong_thread()
        if self._closing or (backoff and self._last_deadline is not None and self.backoff):
            return True
        if not queue or len(self._queue) < self.queue_limit:
            return False
        if exempt is not None and EXCEPTION in names:
            return (EXCEPTION in self._active_set) == (exempt == _ADD)
        return True

    def add(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: Event | MutSource | None = None) -> int:
        """Activate states (Go Add). Returns EXECUTED, CANCELED or a queue tick (>= 2)."""
        if type(states) is str and states in self._index:
            names = [states]
        else:
            names = self._parse(states)
        if (self._thread_id != _get_ident() or self._closing or self._last_deadline is not None
                or len(self._queue) >= self.queue_limit) and \
                self._refused(names, exempt=_ADD):
            return CANCELED
        return self._run(_ADD, names, args, event)

    add1 = add

    def remove(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: Event | MutSource | None = None) -> int:
        """Deactivate states (Go Remove). Returns EXECUTED, CANCELED or a queue tick."""
        if type(states) is str and states in self._index:
            names = [states]
        else:
            names = self._parse(states)
        if (self._thread_id != _get_ident() or self._closing or self._last_deadline is not None
                or len(self._queue) >= self.queue_limit) and \
                self._refused(names, exempt=_REMOVE):
            return CANCELED
        active = self._active_set
        if self._tx is not None and not self._queue and not any(s in active for s in names):
            return EXECUTED
        return self._run(_REMOVE, names, args, event)

    remove1 = remove

    def set(self, states: StatesArg, args: dict[str, Any] | None = None, *,
            event: Event | MutSource | None = None) -> int:
        """Make exactly these states active, relations permitting (Go Set)."""
        if type(states) is str and states in self._index:
            names = [states]
        else:
            names = self._parse(states)
        if (self._thread_id != _get_ident() or self._closing
                or len(self._queue) >= self.queue_limit) and \
                self._refused(names, backoff=False):
            return CANCELED
        return self._run(_SET, names, args, event)

    def toggle(self, states: StatesArg, args: dict[str, Any] | None = None, *,
               event: Event | MutSource | None = None) -> int:
        """Remove the states if all are active, else add them (Go Toggle)."""
        names = self._parse(states)
        if self._closing:
            return CANCELED
        if all(s in self._active_set for s in names):
            return self.remove(names, args, event=event)
        return self.add(names, args, event=event)

    toggle1 = toggle

    def add_err(self, err: BaseException | None, args: dict[str, Any] | None = None, *,
                event: Event | MutSource | None = None) -> int:
        """Activate `Exception` with `err` in its args (Go AddErr)."""
        return self.add_err_state(EXCEPTION, err, args, event=event)

    def add_err_state(self, state: str, err: BaseException | None,
                      args: dict[str, Any] | None = None, *,
                      event: Event | MutSource | None = None) -> int:
        """Activate an error state and `Exception` (Go AddErrState)."""
        names = self._parse(state)
        if self._refused(names) or err is None or isinstance(err, asyncio.CancelledError):
            return CANCELED
        self.err = err
        trace = ""
        if self.log_stack_trace and err.__traceback__ is not None:
            trace = "".join(traceback.format_exception(err))
        if self._on_error is not None:
            self._on_error(self, err)
        merged = dict(args) if args else {}
        given = merged.get(ARG_EXCEPTION)
        if isinstance(given, AException):
            # keep what the caller described (e.g. the transition a deadline broke)
            merged[ARG_EXCEPTION] = AException(
                err=err, trace=trace or given.trace, handler=given.handler,
                called_states=given.called_states, states_before=given.states_before,
                target_states=given.target_states, tx_id=given.tx_id, failure=given.failure)
        else:
            merged[ARG_EXCEPTION] = AException(err=err, trace=trace)
        if names[0] != EXCEPTION:
            names.append(EXCEPTION)
        return self._run(_ADD, names, merged, event)

    def _report_error(self, err: BaseException, args: dict[str, Any] | None = None, *,
                      event: Event | MutSource | None = None) -> None:
        """An error the machine caught itself (a failing eval or forked task, a handler past
        its deadline): `add_err` here; a subclass that must not mutate (a network mirror)
        overrides this."""
        self.add_err(err, args, event=event)

    def can_add(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Would adding be accepted? Runs negotiation, applies nothing (Go CanAdd)."""
        return self._check(_ADD, states, args)

    def can_remove(self, states: StatesArg, args: dict[str, Any] | None = None) -> int:
        """Would removing be accepted? Runs negotiation, applies nothing (Go CanRemove)."""
        return self._check(_REMOVE, states, args)

    def _check(self, mtype: MutationType, states: StatesArg, args: dict[str, Any] | None) -> int:
        names = self._parse(states)
        if self._refused(names, queue=False):
            return CANCELED
        return self._prepend(Mutation(mtype, names, args, is_check=True, source=self._source(None)))

    def eval(self, fn: Callable[[], Any], source: str, timeout: float | None = None) -> bool:
        """Run `fn` on the machine's queue, between transitions (Go Eval).

        From another thread it blocks until the owner ran it (up to `timeout`, default
        `eval_timeout`). From a handler it cannot wait for itself: it returns False (and, with
        `detect_eval`, adds NestedEvalError) instead of deadlocking like Go.
        """
        if not source:
            raise ValueError("eval needs a non-empty source")
        if self._closing:
            return False
        if self._thread_id != _get_ident():
            fut = self.threadsafe.eval(fn, source)
            try:
                return bool(fut.result(self.eval_timeout if timeout is None else timeout))
            except TimeoutError:
                fut.cancel()
                self.err_internal.append(EvalTimeoutError(f"eval timeout: {source}"))
                return False
        if self._processing:
            self._log(_OPS, "[eval] nested eval from %s skipped", source)
            if self.detect_eval:
                self._report_error(NestedEvalError(f"nested eval: {source}"))
            return False
        if self._lvl >= _OPS:
            self._log(_OPS, "[eval] %s", source)
        mut = Mutation(MutationType.EVAL, [], None)
        mut.eval_fn = fn
        mut.eval_source = source
        self._prepend(mut)
        return True

    # --- queue internals ---

    def _source(self, event: Event | MutSource | None) -> MutSource | None:
        """The cause of a mutation: `event=` (an Event, or a MutSource for mutations arriving from
        elsewhere, e.g. over RPC), else the handler running in this context, if any."""
        if isinstance(event, MutSource):
            return event
        ev = event if event is not None else current_event.get()
        if ev is None:
            return None
        return MutSource(ev.machine.id, ev.transition.id, sum(ev.transition.time_before))

    def _run(self, mtype: MutationType, names: list[str], args: dict[str, Any] | None,
             event: Event | MutSource | None) -> int:
        """Queue a mutation and drain the queue unless a drain is already running."""
        queue = self._queue
        if not args and queue:
            last = queue[-1]
            schema = self._schema
            lc = last.called
            if (last.type == mtype and not last.args and not last.is_check
                    and (lc == names or (len(lc) == len(names) and set(lc) == set(names)))
                    and not any(schema[s].multi for s in names)):
                # a duplicate of the mutation right before it (called states compare as sets,
                # like Go's); dropping it is a no-op. Go also drops it when counter-mutations
                # sit in between, losing them (docs/machine.md §6, row 2)
                if self._lvl >= _OPS:
                    self._log(_OPS, "[queue:skipped] Duplicate detected for [%s] %s", mtype,
                              " ".join(names))
                return EXECUTED
        if event is None:
            ev = current_event.get()
            source = None if ev is None else MutSource(
                ev.machine.id, ev.transition.id, sum(ev.transition.time_before))
        else:
            source = self._source(event)
        mut = Mutation(mtype, names, args)  # keyword args make a class call several times slower
        if source is not None:
            mut.source = source
        if not queue and not self._processing and not self._tr_queued_now \
                and not self._breakpoints:
            # nothing queued, no drain running, nobody looking at the queue: this caller drains,
            # starting with `mut`, which needs no trip through the queue
            now = self._queue_tick
            qt = mut.queue_tick = now + self._ticks_pending + 1
            mut.queue_tick_now = now
            mut.queue_len = 1
            if self._lvl >= _OPS:
                self._log(_OPS, "[queue:%s] %s%s", mtype, " ".join(names),
                          mut.log_args(self.args_mapper))
            return self._process_queue(mut)
        queue.append(mut)
        pending = self._ticks_pending = self._ticks_pending + 1
        now = self._queue_tick
        qt = mut.queue_tick = now + pending
        mut.queue_tick_now = now
        mut.queue_len = len(queue)
        if self._lvl >= _OPS:
            self._log(_OPS, "[queue:%s] %s%s", mtype, " ".join(names),
                      mut.log_args(self.args_mapper))
        for tracer in self._tr_queued:
            tracer.mutation_queued(self, mut)
        if self._breakpoints and mtype in (_ADD, _REMOVE):
            self._breakpoint(names if mtype == _ADD else [], names if mtype == _REMOVE else [])
        res = self._process_queue()
        return qt if res == QUEUED else res

    def _prepend(self, mut: Mutation) -> int:
        """Put a mutation at the queue's front, without a queue tick (Go PrependMut)."""
        self._queue.appendleft(mut)
        if mut.type != MutationType.EVAL:
            if self._lvl >= _OPS:
                self._log(_OPS, "[prepend:%s] %s%s", mut.type, " ".join(mut.called),
                          mut.log_args(self.args_mapper))
            for tracer in self._tr_queued:
                tracer.mutation_queued(self, mut)
        return self._process_queue()

    def _process_queue(self, head: Mutation | None = None) -> int:
        """Drain the queue on this thread; QUEUED if a drain is running (Go processQueue).

        `head`: a mutation with a queue tick to run first, as if it had been queued and taken
        from the queue (the caller checked that no drain runs and the queue is empty).

        While nobody can observe a transition (`_unobserved`), a mutation whose cached plan is
        `REPLAY_LEAN` (amnode.machine.plan) is replayed without a `Transition`: its clock
        change is applied and the Auto states it allows are queued, which is all a full run
        would do; one whose plan is `REPLAY_FINALS` runs only the final phase.
        """
        queue = self._queue
        if head is None:
            if not queue or self._disposing:
                return CANCELED
            if self._processing:
                if self._lvl >= _OPS:
                    n = len(queue)
                    self._log(_OPS, "[postpone] queue running (%d %s)", n,
                              "item" if n == 1 else "items")
                return QUEUED
        self._processing = True
        first: int | None = None
        subs = self._subs
        plans = self._plans
        lean = self._unobserved()
        try:
            while True:
                if head is not None:
                    mut = head
                    head = None
                    self._queue_tick += 1
                elif queue and not self._disposing:
                    mut = queue.popleft()
                    if mut.queue_tick:
                        self._ticks_pending -= 1
                        self._queue_tick += 1
                else:
                    break
                if mut.eval_fn is not None:
                    self._run_eval(mut)
                    lean = self._unobserved()
                    continue
                plan = key = None
                plain = False
                if lean and not mut.is_check:
                    key = (mut.type, *mut.called, None, *self._active, mut.is_auto, False,
                           False, 0)
                    plan = plans.get(key)
                    if plan is not None:
                        replay = plan.replay
                        if replay == REPLAY_LEAN:
                            res: int = plan.result
                            a = plan.lean_apply
                            if a is not None:
                                ticks = self._ticks
                                for i, delta in a.deltas:
                                    ticks[i] += delta
                                self._active = a.active
                                self._active_set = a.active_set
                                if plan.queue_auto:
                                    self._queue_auto(a)
                            if first is None:
                                first = res
                            if subs.when_queue:
                                subs.process_queue_tick(self._queue_tick)
                            continue
                        plain = replay == REPLAY_FINALS
                t = Transition(self, mut, plan, key)
                res = t.emit_plain() if plain else t.emit()
                if first is None:
                    first = res
                if t.accepted and not mut.is_check and (
                        subs.when_active or subs.when_inactive or subs.when_time
                        or subs.when_query):
                    subs.process(t)
                if subs.when_queue:
                    subs.process_queue_tick(self._queue_tick)
                if queue:  # handlers ran: they may have bound an observer
                    lean = self._unobserved()
        finally:
            self._tx = None
            self._processing = False
        for tracer in self._tr_queue_end:
            tracer.queue_end(self)
        if subs.when_queue_ends:
            subs.queue_ended()
        if self._dispose_pending:
            self._finish_dispose()
        return CANCELED if first is None else first

    def _unobserved(self) -> bool:
        """True while no transition can be observed: no tracer, log level or pending log line,
        `on_change` callback, wait that a transition resolves, or state context."""
        subs = self._subs
        return not (self._tracers or self._lvl or self._on_change or self._log_buffer
                    or subs.ctxs or subs.when_args or subs.when_active or subs.when_inactive
                    or subs.when_time or subs.when_query)

    def _queue_auto(self, a: Apply) -> None:
        """Prepend the Auto states the applied change `a` allows (Go's auto mutation); which
        ones is a function of the new active states, so it is looked up once per change."""
        names = a.auto
        if names is UNKNOWN:
            found = self._resolver.auto_states_to_add()
            names = None if found is None else tuple(found)
            if self._lvl < _EVERYTHING:  # at EVERYTHING the lookup logs: repeat it every time
                a.auto = names
        if names is None:
            return
        if self._lvl >= _OPS:
            self._log(_OPS, "[auto] %s", " ".join(names))
        mut = Mutation(_ADD, list(names))
        mut.is_auto = True
        self._prepend(mut)

    def _run_eval(self, mut: Mutation) -> None:
        assert mut.eval_fn is not None
        try:
            mut.eval_fn()
        except Exception as err:
            if not self.panic_to_exception:
                raise
            self._log(_OPS, "[eval] %s failed: %r", mut.eval_source, err)
            self._report_error(err)
        if self._lvl >= _OPS:
            self._log(_OPS, "[eval:end] %s", mut.eval_source)

    def _breakpoint(self, added: list[str], removed: list[str]) -> None:
        for bp_added, bp_removed, strict in self._breakpoints:
            if added and bp_added != added:
                continue
            if removed and bp_removed != removed:
                continue
            if strict and ((bp_added and self.is_active(bp_added))
                           or (bp_removed and self.is_inactive(bp_removed))):
                continue
            self._log(_CHANGES, "[breakpoint] Machine.breakpoint")
            if self.breakpoint_hook is not None:
                self.breakpoint_hook(self, added, removed)
            return

    def add_breakpoint(self, added: StatesArg | None = None, removed: StatesArg | None = None,
                       strict: bool = False) -> None:
        """Log and call `breakpoint_hook` when these exact states are queued (Go AddBreakpoint)."""
        a = self._parse(added) if added else []
        r = self._parse(removed) if removed else []
        self._breakpoints.append((a, r, strict))

    # ------------------------------------------------------------------ handlers

    def bind_handlers(self, obj: object, id: str | None = None,
                      state_prefix: str | None = None) -> str:
        """Bind an object's handler methods; returns the binding id (Go HandlersBind)."""
        self._own()
        if obj is None or isinstance(obj, (str, bytes, int, float, bool, dict, list, tuple)):
            raise TypeError(f"handlers must be an object with handler methods, got {obj!r}")
        first = not self._dispatcher.bound_any
        binding = self._dispatcher.bind(obj, id, state_prefix)
        self._log(_OPS, "[handlers] bind %d:%s", binding.num, binding.id)
        if first and EXCEPTION in self._active_set and self.err is not None:
            self._report_error(self.err)
        return binding.id

    def detach_handlers(self, id: str) -> None:
        """Unbind handlers by binding id (Go HandlersDetach)."""
        self._own()
        self._dispatcher.detach(id)

    def handlers(self) -> list[str]:
        """Ids of bound handler objects, in bind order."""
        return self._dispatcher.ids()

    def fork(self, coro: Coroutine[Any, Any, Any], state: str | None = None, *,
             handler: str = "") -> asyncio.Task[Any]:
        """Run `coro` as a task cancelled when `state`'s tick changes (or on dispose).

        An exception raised by the task (other than cancellation) is added with `add_err`;
        `handler` names the `async def` handler the task runs (its `AException` says so).
        """
        loop = asyncio.get_running_loop()
        ctx = self._subs.state_ctx(state) if state else self._machine_ctx
        task = loop.create_task(coro)
        if ctx.cancelled:
            task.cancel()
            return task
        ctx._tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            ctx._tasks.discard(task)
            if task.cancelled() or self._disposing:
                return
            exc = task.exception()
            if exc is not None and isinstance(exc, Exception):
                self._log(_OPS, "[fork] %s failed: %r", handler or state or "machine", exc)
                if self._thread_id == _get_ident():
                    if handler:
                        failure = raised(handler, True, exc, is_async=True)
                        self._report_error(exc, {ARG_EXCEPTION: AException(
                            err=exc, trace=failure.traceback, handler=handler,
                            failure=failure)})
                    else:
                        self._report_error(exc)

        task.add_done_callback(done)
        return task

    def _recover_to_err(self, t: Transition, name: str, exc: Exception) -> None:
        """A handler raised and `t` failed: prepend `Exception` (Go recoverToErr). A subclass
        that must not mutate (a network mirror) overrides this."""
        self._dispatcher.recover_to_err(t, name, exc)

    def _clear_queue(self) -> None:
        """Drop every queued mutation (disposal from a handler, a handler past its deadline)."""
        self._queue.clear()
        self._ticks_pending = 0

    def _set_active_states(self, called: list[str], targets: list[str], is_auto: bool) -> None:
        """Apply targets and tick the clocks (Go setActiveStates)."""
        self._apply(make_apply(self, called, targets, is_auto))

    def _apply(self, a: Apply) -> None:
        """Make a computed (often cached) change: ticks, active states, the `[state]` line."""
        if self._disposing:
            return
        ticks = self._ticks
        for i, delta in a.deltas:
            ticks[i] += delta
        self._active = a.active
        self._active_set = a.active_set
        if a.text:
            t = self._tx
            self._log(_CHANGES, a.text + t.mutation.log_args(self.args_mapper)
                      if t is not None else a.text)

    # ------------------------------------------------------------------ tracers and hooks

    def bind_tracer(self, tracer: Tracer) -> None:
        """Add a tracer (Go TracerBind)."""
        self._own()
        if not isinstance(tracer, Tracer):
            raise TypeError(f"tracers must subclass amnode.Tracer, got {type(tracer).__name__}")
        self._tracers.append(tracer)
        self._update_tracer_flags()
        self._log(_OPS, "[tracers] bind %s", tracer.tracer_id)

    def detach_tracer(self, tracer: Tracer) -> None:
        """Remove a tracer (Go TracerDetach)."""
        self._own()
        try:
            self._tracers.remove(tracer)
        except ValueError:
            raise KeyError(f"tracer not bound: {tracer.tracer_id}") from None
        self._update_tracer_flags()

    @property
    def tracers(self) -> list[Tracer]:
        """Bound tracers (a copy)."""
        return list(self._tracers)

    def _update_tracer_flags(self) -> None:
        """Recompute what the bound tracers ask for: steps, and per hot hook who overrides it."""
        tracers = self._tracers
        self._collect_steps = any(t.collect_steps for t in tracers)
        self._collect_check_steps = any(t.collect_check_steps for t in tracers)
        self._start_time = any(t.start_time for t in tracers)
        for hook, attr in zip(HOT_HOOKS, _HOOK_LISTS, strict=True):
            # in place: a hook loop running right now sees the change, as it saw `_tracers`'
            getattr(self, attr)[:] = [t for t in tracers if overrides(t, hook)]
        self._tr_queued_now[:] = [t for t in self._tr_queued if t.queued_immediate]

    def on_change(self, fn: Callable[[Machine, Time, Time], None]) -> None:
        """Call `fn(machine, time_before, time_after)` after every non-check transition."""
        self._on_change.append(fn)

    def on_error(self, fn: Callable[[Machine, BaseException], None]) -> None:
        """Call `fn(machine, err)` from `add_err_state` (Go OnError)."""
        self._on_error = fn

    def on_dispose(self, fn: Callable[[str], None]) -> None:
        """Call `fn(machine_id)` during disposal (Go OnDispose)."""
        self._on_dispose.append(fn)

    # ------------------------------------------------------------------ logging

    @property
    def log_level(self) -> LogLevel:
        """Current log level (Go SemLogger().Level())."""
        return LogLevel(self._lvl)

    @log_level.setter
    def log_level(self, level: LogLevel | int) -> None:
        self._lvl = int(level)

    def log(self, msg: str, *args: Any) -> None:
        """Log an external message, `[exter] msg`, at LogLevel.EXTERNAL (Go Log)."""
        if self._disposing or self._lvl < _EXTERNAL:
            return
        text = (msg % args) if args else msg
        self._log(_EXTERNAL, "[exter] %s", text.replace("\n", " "))

    def _log(self, level: int, fmt: str, *args: Any) -> None:
        if level > self._lvl or self._disposed:
            return
        text = fmt % args if args else fmt
        if self._capture is not None:
            self._capture.append((level, text))
        line = f"[{self.id[:5]}] {text}" if self.log_id else text
        try:
            self.logger(level, line)
        except Exception:  # a broken logger must not break transitions
            pass
        t = self._tx
        if t is not None and not t.completed:
            entries = t.log_entries
            if entries is _NO_LOG:  # the shared empty default: this transition gets its own
                t.log_entries = [LogEntry(level, line)]
            else:
                entries.append(LogEntry(level, line))
            return
        buf = self._log_buffer
        if buf and buf[-1].text == line and "[when" not in line and "[ctx" not in line:
            return
        buf.append(LogEntry(level, line))

    def pending_log(self) -> list[LogEntry]:
        """Log lines emitted since the last transition; they become its `pre_log_entries`."""
        return list(self._log_buffer)

    # ------------------------------------------------------------------ queries

    def is_active(self, states: StatesArg) -> bool:
        """True if every state is active (Go Is); unknown names log and give False."""
        if self._disposing:
            return False
        active = self._active_set
        if isinstance(states, str):
            if states in active:
                return True
            if states not in self._index:
                self._log(_DECISIONS, "[is] state %s not found", states)
            return False
        for s in states:
            if s not in active:
                if s not in self._index:
                    self._log(_DECISIONS, "[is] state %s not found", s)
                return False
        return True

    def is_inactive(self, states: StatesArg) -> bool:
        """True if none of the states is active (Go Not); raises on unknown names."""
        names = self._parse(states)
        active = self._active_set
        return not any(s in active for s in names)

    def any_active(self, *groups: StatesArg) -> bool:
        """True if any state (or any whole group, for lists) is active (Go Any1/Any)."""
        for g in groups:
            if isinstance(g, str):
                if g in self._active_set:
                    return True
            elif self.is_active(g):
                return True
        return False

    def tick(self, state: str) -> int:
        """The state's tick; odd = active (Go Tick)."""
        if self._disposing:
            return 0
        try:
            return self._ticks[self._index[state]]
        except KeyError:
            raise StateUnknownError(f"state {state} not defined in schema for {self.id}") from None

    def clock(self, states: StatesArg | None = None) -> dict[str, int]:
        """Ticks by name, for all or the given states (Go Clock)."""
        if states is None:
            return dict(zip(self._names, self._ticks, strict=True))
        ticks, index = self._ticks, self._index
        return {n: ticks[index[n]] for n in self._parse(states)}

    def time(self, states: StatesArg | None = None) -> Time:
        """Ticks as a list in state order, or in the given order (Go Time)."""
        if states is None:
            return Time(self._ticks)
        ticks, index = self._ticks, self._index
        return Time([ticks[index[n]] for n in self._parse(states)])

    def is_clock(self, clock: Mapping[str, int]) -> bool:
        """True if every listed tick equals the current one (Go IsClock)."""
        return all(self.tick(s) == t for s, t in clock.items())

    def was_clock(self, clock: Mapping[str, int]) -> bool:
        """True if every current tick is >= the listed one (Go WasClock)."""
        return all(self.tick(s) >= t for s, t in clock.items())

    def is_time(self, t: Iterable[int], states: StatesArg | None = None) -> bool:
        """True if the (state-ordered) ticks equal `t` (Go IsTime)."""
        return list(self.time(states)) == list(t)

    def was_time(self, t: Iterable[int], states: StatesArg | None = None) -> bool:
        """True if every current tick is >= the one in `t` (Go WasTime)."""
        return all(a >= b for a, b in zip(self.time(states), t, strict=False))

    def active_states(self, states: StatesArg | None = None) -> list[str]:
        """Active states in the last target order, optionally limited (Go ActiveStates)."""
        if self._disposing:
            return []
        if states is None:
            return list(self._active)
        want = set(self._parse(states))
        return [s for s in self._active if s in want]

    def switch(self, *groups: StatesArg) -> str:
        """The first state (in argument order) that is active, else "" (Go Switch)."""
        for g in groups:
            for s in ([g] if isinstance(g, str) else g):
                if s in self._active_set:
                    return s
        return ""

    def is_err(self) -> bool:
        """True while `Exception` is active."""
        return EXCEPTION in self._active_set

    @property
    def backoff(self) -> bool:
        """True for `handler_backoff` seconds after a handler overran `handler_deadline`."""
        last = self._last_deadline
        return last is not None and _handlers.monotonic() - last < self.handler_backoff

    @property
    def transition(self) -> Transition | None:
        """The transition being executed, if any (Go Transition())."""
        return self._tx

    @property
    def queue_tick(self) -> int:
        """Number of processed queued mutations, starting at 1 (Go QueueTick)."""
        return self._queue_tick

    @property
    def queue_len(self) -> int:
        """Mutations waiting in the queue."""
        return len(self._queue)

    def queue(self) -> list[Mutation]:
        """A copy of the queue."""
        return list(self._queue)

    @property
    def is_disposed(self) -> bool:
        """True once disposal started."""
        return self._closing

    def is_queued(self, mtype: MutationType, states: StatesArg, *, without_args: bool = False,
                  strict: bool = False, min_queue_tick: int = 0, is_check: bool = False,
                  position: str = "any") -> int:
        """Index of the first matching queued mutation, or -1 (Go IsQueued).

        `position` is "any", "first" or "last" (restricts the match to that end of the queue).
        """
        want = set(self._parse(states))
        queue = list(self._queue)
        items = list(enumerate(queue))
        if position == "first":
            items = items[:1]
        elif position == "last":
            items = items[-1:]
        for i, mut in items:
            if mut.type != mtype or mut.is_check != is_check or mut.eval_fn is not None:
                continue
            if without_args and mut.args:
                continue
            if strict and len(mut.called) != len(want):
                continue
            if not want.issubset(mut.called):
                continue
            if mut.queue_tick and mut.queue_tick < min_queue_tick:
                continue
            return i
        return -1

    def will_be(self, states: StatesArg, position: str = "any") -> bool:
        """True if an add of these states is queued (Go WillBe)."""
        return self.is_queued(_ADD, states, position=position) >= 0

    def will_be_removed(self, states: StatesArg, position: str = "any") -> bool:
        """True if a removal of these states is queued (Go WillBeRemoved)."""
        return self.is_queued(_REMOVE, states, position=position) >= 0

    # ------------------------------------------------------------------ string forms

    def __str__(self) -> str:
        if self._disposing:
            return ""
        ticks, active = self._ticks, self._active_set
        return "(" + " ".join(f"{n}:{ticks[i]}" for i, n in enumerate(self._names)
                              if n in active) + ")"

    def string_all(self) -> str:
        """`(A:1 B:1) [C:0 Exception:0]`: active then inactive states with ticks (Go StringAll)."""
        if self._disposing:
            return ""
        ticks, active = self._ticks, self._active_set
        pairs = list(zip(self._names, ticks, strict=True))
        on = " ".join(f"{n}:{t}" for n, t in pairs if n in active)
        off = " ".join(f"{n}:{t}" for n, t in pairs if n not in active)
        return f"({on}) [{off}]"

    def __repr__(self) -> str:
        return f"Machine({self.id} {self})"

    def inspect(self, states: StatesArg | None = None) -> str:
        """Multi-line dump of states, ticks, flags and relations (Go Inspect)."""
        if self._disposing:
            return ""
        out = []
        for name in (self._names if states is None else self._parse(states)):
            st = self._schema[name]
            out.append(f"{1 if name in self._active_set else 0} {name}\n"
                       f"    |Tick     {self._ticks[self._index[name]]}\n")
            if st.auto:
                out.append("    |Auto     true\n")
            if st.multi:
                out.append("    |Multi    true\n")
            for label, rel in (("Add", st.add), ("Require", st.require),
                               ("Remove", st.remove), ("After", st.after)):
                if rel:
                    out.append(f"    |{label:<9}{' '.join(rel)}\n")
        return "".join(out)

    # ------------------------------------------------------------------ relations

    @property
    def resolver(self) -> Resolver:
        """The relations resolver (Go Resolver())."""
        return self._resolver

    # ------------------------------------------------------------------ state contexts and waits

    def state_ctx(self, state: str) -> StateCtx:
        """The context of a state's current tick, cancelled when it changes (Go NewStateCtx)."""
        self._parse(state)
        if self._disposing:
            ctx = StateCtx(state, 0)
            ctx._cancel()
            return ctx
        return self._subs.state_ctx(state)

    def _future(self) -> asyncio.Future[Any]:
        if self._thread_id != _get_ident():
            raise WrongThreadError(
                f"machine {self.id} belongs to thread {self._thread_id}; await its waits there")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        return loop.create_future()

    async def _disposed_wait(self) -> None:
        raise DisposedError(f"machine {self.id} is disposed")

    def _waiting(self, fut: asyncio.Future[Any], timeout: float | None, what: str,
                 cleanup: Callable[[], None] | None = None) -> Awaitable[None]:
        return Wait(self.id, fut, timeout, what, cleanup)

    def when(self, states: StatesArg, timeout: float | None = None) -> Awaitable[None]:
        """Wait until every state is active (Go When)."""
        names = tuple(self._parse(states))
        if self._disposing:
            return self._disposed_wait()
        if all(s in self._active_set for s in names):
            return done()
        fut = self._future()
        cleanup = self._subs.add_states(self._subs.when_active, fut, names)
        return self._waiting(fut, timeout, f"when({' '.join(names)})", cleanup)

    def when_not(self, states: StatesArg, timeout: float | None = None) -> Awaitable[None]:
        """Wait until every state is inactive (Go WhenNot)."""
        names = tuple(self._parse(states))
        if self._disposing:
            return self._disposed_wait()
        if not any(s in self._active_set for s in names):
            return done()
        fut = self._future()
        cleanup = self._subs.add_states(self._subs.when_inactive, fut, names)
        return self._waiting(fut, timeout, f"when_not({' '.join(names)})", cleanup)

    def when_err(self, timeout: float | None = None) -> Awaitable[None]:
        """Wait until `Exception` is active (Go WhenErr)."""
        return self.when(EXCEPTION, timeout)

    def when_time(self, clock: Mapping[str, int], timeout: float | None = None) -> Awaitable[None]:
        """Wait until every listed state's tick is >= the given one (Go WhenTime)."""
        names = tuple(self._parse(list(clock)))
        ticks = tuple(int(clock[n]) for n in names)
        if self._disposing:
            return self._disposed_wait()
        if all(self.tick(n) >= t for n, t in zip(names, ticks, strict=True)):
            return done()
        fut = self._future()
        cleanup = self._subs.add_states(self._subs.when_time, fut, names, ticks)
        desc = " ".join(f"{n}:{t}" for n, t in zip(names, ticks, strict=True))
        return self._waiting(fut, timeout, f"when_time({desc})", cleanup)

    def when_ticks(self, state: str, ticks: int, timeout: float | None = None) -> Awaitable[None]:
        """Wait until a state ticked `ticks` more times, counted from this call (Go WhenTicks)."""
        return self.when_time({state: self.tick(state) + ticks}, timeout)

    def when_next_active(self, state: str, timeout: float | None = None) -> Awaitable[None]:
        """Wait for the state's next activation, including a Multi re-entry (Go WhenNextActive)."""
        return self.when_ticks(state, 2 if state in self._active_set else 1, timeout)

    def when_args(self, state: str, args: Mapping[str, Any],
                  timeout: float | None = None) -> Awaitable[None]:
        """Wait until `StateState` runs with args that include `args` (Go WhenArgs)."""
        self._parse(state)
        if self._disposing:
            return self._disposed_wait()
        fut = self._future()
        cleanup = self._subs.add_args(state, args, fut)
        return self._waiting(fut, timeout, f"when_args({state})", cleanup)

    def when_query(self, fn: Callable[[dict[str, int]], bool],
                   timeout: float | None = None) -> Awaitable[None]:
        """Wait until `fn(clock)` is true after an accepted transition (Go WhenQuery)."""
        if self._disposing:
            return self._disposed_wait()
        fut = self._future()
        entry = (fn, fut)
        self._subs.when_query.append(entry)

        def cleanup() -> None:
            if entry in self._subs.when_query:
                self._subs.when_query.remove(entry)

        return self._waiting(fut, timeout, "when_query", cleanup)

    def when_queue(self, tick: int, timeout: float | None = None) -> Awaitable[None]:
        """Wait until the queue tick reaches `tick`, e.g. a queued mutation's (Go WhenQueue)."""
        if self._disposing:
            return self._disposed_wait()
        if self._queue_tick >= tick:
            return done()
        fut = self._future()
        cleanup = self._subs.add_queue(tick, fut)
        return self._waiting(fut, timeout, f"when_queue({tick})", cleanup)

    def when_queue_ends(self, timeout: float | None = None) -> Awaitable[None]:
        """Wait until the running queue drain ends; done at once if none runs."""
        if not self._processing:
            return done()
        fut = self._future()
        cleanup = self._subs.add_list(self._subs.when_queue_ends, fut)
        return self._waiting(fut, timeout, "when_queue_ends", cleanup)

    def when_disposed(self, timeout: float | None = None) -> Awaitable[None]:
        """Wait until disposal finished."""
        if self._disposed:
            return done()
        fut = self._future()
        cleanup = self._subs.add_list(self._subs.when_disposed, fut)
        return self._waiting(fut, timeout, "when_disposed", cleanup)

    # ------------------------------------------------------------------ export / import

    def export(self) -> dict[str, Any]:
        """Serialisable snapshot: id, state names, time, queue and machine ticks (Go Export)."""
        self._log(_CHANGES, "[import] exported at %d ticks", sum(self._ticks))
        return {"id": self.id, "state_names": list(self._names), "time": list(self.time()),
                "queue_tick": self._queue_tick, "machine_tick": self.machine_tick}

    def import_data(self, data: Mapping[str, Any]) -> None:
        """Restore a snapshot made by `export` (Go Import); adds `MachineRestored` if defined.

        Validates everything before changing anything (Go restores partially, then errors).
        """
        self._own()
        if data.get("id") != self.id:
            raise ValueError(f"import ID mismatch: {data.get('id')} != {self.id}")
        names = list(data["state_names"])
        ticks = list(data["time"])
        if len(names) != len(self._schema) or len(ticks) != len(names):
            raise ValueError("import: state count mismatch")
        unknown = [n for n in names if n not in self._schema]
        if unknown:
            raise StateUnknownError(f"state unknown: {' '.join(unknown)}")
        self._names = names
        self._verified = True
        self._reindex()
        self._ticks[:] = [int(t) for t in ticks]
        self._active = tuple(n for n in names if int(ticks[self._index[n]]) & 1)
        self._active_set = set(self._active)
        self._resolver.new_schema()
        self.machine_tick = int(data.get("machine_tick", 0)) + 1
        self._log(_CHANGES, "[import] imported to %d ticks", sum(self._ticks))
        for tracer in list(self._tracers):
            tracer.verify_states(self)
        if MACHINE_RESTORED in self._schema:
            self.add(MACHINE_RESTORED)

    # ------------------------------------------------------------------ disposal

    def dispose(self) -> None:
        """Dispose the machine: cancel waits and contexts, drop handlers (Go Dispose).

        If the schema has `Start` and it is active, it is removed first (its `StartEnd` runs).
        Called from a handler, the rest of the queue is dropped (as in Go), only that removal
        runs, and disposal completes when the drain ends; new mutations are canceled at once.
        """
        if self._closing:
            return
        self._own()
        if self._processing:
            self._clear_queue()
            self._dispose_start()
            self._closing = True
            self._dispose_pending = True
            return
        self._dispose_start()
        self._closing = True
        self._finish_dispose()

    def _dispose_start(self) -> None:
        """Remove `Start` before disposing (a network mirror must not: it overrides this)."""
        if START in self._active_set:
            self.remove(START)

    def _finish_dispose(self) -> None:
        if self._disposed:
            return
        self._closing = self._disposing = True
        self._dispose_pending = False
        self._log(_CHANGES, "[dispose] %s", self.id)
        for tracer in list(self._tracers):
            tracer.machine_dispose(self.id)
        self._dispatcher.clear()
        self._queue.clear()
        self._machine_ctx._cancel()
        self._subs.dispose()
        for fn in list(self._on_dispose):
            try:
                fn(self.id)
            except Exception as err:
                self.err_internal.append(err)
        self._disposed = True
