"""Handler bindings, the event handlers receive, and the dispatch of handler calls (Go handlers,
Event, handle/processHandlers/recoverToErr).

A binding is any object whose methods are named like Go handlers: `FooEnter`, `FooExit`, `FooFoo`,
`FooBar`, `AnyEnter` (negotiation) and `FooState`, `FooEnd`, `AnyState` (final). Methods are looked
up once, at bind time, and indexed by event name so that a transition only touches handlers that
exist. `HandlerDispatcher` owns one machine's bindings and calls them: it measures handler
timeouts, forks `async def` final handlers and turns a raised exception into `Exception`.

Time is read through this module's `perf_counter` (handler durations, for timeouts) and
`monotonic` (when a handler overran its deadline, for the backoff): tests replace both with a
fake clock (see docs/machine.md §4.8) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import re
import time
import traceback
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from .errors import HandlerBindError, HandlerTimeoutError
from .failure import TIMEOUT, VETO, Failure, raised
from .log import LogLevel
from .mutation import (
    ARG_EXCEPTION,
    CANCELED,
    EXECUTED,
    AException,
    Mutation,
    MutationType,
    MutSource,
    Result,
)
from .schema import ANY, EXCEPTION, SUFFIX_END, SUFFIX_ENTER, SUFFIX_EXIT, SUFFIX_STATE
from .transition import new_id

if TYPE_CHECKING:
    from .machine import Machine
    from .transition import Transition

#: Measures how long a handler ran (timeouts). The test seam for a fake clock.
perf_counter: Callable[[], float] = time.perf_counter
#: Stamps a handler's deadline overrun and tells when the backoff ends. The test seam too.
monotonic: Callable[[], float] = time.monotonic

_ADD = MutationType.ADD
_CHANGES = int(LogLevel.CHANGES)
_OPS = int(LogLevel.OPS)
_DECISIONS = int(LogLevel.DECISIONS)
_EVERYTHING = int(LogLevel.EVERYTHING)

#: One indexed handler: (binding, callable, is_async, method name).
IndexEntry = tuple["HandlerBinding", Callable[..., Any], bool, str]

#: The event whose handler is running in this context; mutations made meanwhile record it as
#: their source, so causality between machines is visible in recordings without extra code.
current_event: contextvars.ContextVar[Event | None] = contextvars.ContextVar(
    "amnode_current_event", default=None)

_SUFFIXES = (SUFFIX_ENTER, SUFFIX_EXIT, SUFFIX_STATE, SUFFIX_END)
_ID_CLEAN = re.compile(r"[^a-zA-Z0-9\-_.]")


class Event:
    """What a handler receives: its name, the machine, the transition and the shared args."""

    __slots__ = ("args", "machine", "name", "transition")

    def __init__(self, name: str, machine: Machine, transition: Transition,
                 args: dict[str, Any]) -> None:
        self.name = name
        self.machine = machine
        self.transition = transition
        self.args = args

    @property
    def machine_id(self) -> str:
        """Id of the machine that emitted the event."""
        return self.machine.id

    @property
    def transition_id(self) -> str:
        """Id of the transition the event belongs to."""
        return self.transition.id

    @property
    def mutation(self) -> Mutation:
        """The mutation being executed."""
        return self.transition.mutation

    @property
    def is_check(self) -> bool:
        """True during `can_add`/`can_remove` (Go never sets Event.IsCheck; we do)."""
        return self.transition.mutation.is_check

    def is_valid(self) -> bool:
        """True while the transition is the machine's current one, not completed, and accepted."""
        t = self.transition
        return self.machine._tx is t and not t.completed and t.accepted

    def __repr__(self) -> str:
        return f"Event({self.name} {self.machine.id}/{self.transition.id})"


def is_final_name(name: str) -> bool:
    """Final handlers end with `State` or `End`; every other handler name negotiates."""
    return name.endswith(SUFFIX_STATE) or name.endswith(SUFFIX_END)


def is_handler_name(name: str, states: Iterable[str]) -> bool:
    """True if `name` is one of the handler names a machine with `states` can emit."""
    names = set(states)
    if name in ("AnyEnter", "AnyState"):
        return True
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in names:
            return True
    return any(name[:i] in names and name[i:] in names for i in range(1, len(name)))


class HandlerBinding:
    """One object bound with `Machine.bind_handlers`; `methods` maps event names to callables."""

    __slots__ = ("id", "methods", "num", "obj", "pairs", "prefix")

    def __init__(self, obj: object, binding_id: str, num: int, prefix: str) -> None:
        self.obj = obj
        self.id = binding_id
        self.num = num
        self.prefix = prefix
        #: event name -> (callable, is_async, method name)
        self.methods: dict[str, tuple[Callable[..., Any], bool, str]] = {}
        #: "from" states of state-state handlers (FooBar) this binding has
        self.pairs: set[str] = set()

    def scan(self, states: Iterable[str]) -> None:
        """Index the object's handler methods for the given states; raise on invalid ones."""
        names = set(states)
        self.methods = {}
        self.pairs = set()
        for attr in dir(self.obj):
            if attr.startswith("_"):
                continue
            event = self.prefix + attr
            kind = _classify(event, names)
            if kind is None:
                continue
            try:
                fn = getattr(self.obj, attr)
            except Exception:
                continue
            if not callable(fn):
                continue
            is_async = inspect.iscoroutinefunction(fn)
            if is_async and not is_final_name(event):
                raise HandlerBindError(
                    f"negotiation handler {attr} of {type(self.obj).__name__} is a coroutine "
                    "function; negotiation handlers must be synchronous (only FooState/FooEnd/"
                    "AnyState may be async)")
            self.methods[event] = (fn, is_async, attr)
            if kind != "":
                self.pairs.add(kind)


def _classify(event: str, names: set[str]) -> str | None:
    """None if `event` is no handler name; the "from" state for state-state names; else ""."""
    if event in ("AnyEnter", "AnyState"):
        return ""
    for suffix in _SUFFIXES:
        if event.endswith(suffix) and event[: -len(suffix)] in names:
            return ""
    for i in range(1, len(event)):
        head = event[:i]
        if head in names and event[i:] in names:
            return "" if head == event[i:] else head
    return None


class HandlerDispatcher:
    """The handlers bound to one machine and the calls into them (Go handle and processHandlers).

    Owns the bindings and their index by event name; `handle` calls one event name on every
    binding that has it, measures it against the machine's `handler_timeout`, forks `async def`
    final handlers and recovers a raised exception to `Exception` (the transition fails).
    """

    __slots__ = ("_num", "bindings", "index", "machine", "pairs")

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        #: bound objects, in bind order
        self.bindings: list[HandlerBinding] = []
        self._num = 0
        #: event name -> every binding's handler of that name, in bind order
        self.index: dict[str, list[IndexEntry]] = {}
        #: "from" states of the state-state handlers (FooBar) any binding has
        self.pairs: set[str] = set()

    # --- bindings ---

    def bind(self, obj: object, id: str | None, state_prefix: str | None) -> HandlerBinding:
        """Scan `obj`'s handler methods and add them after the existing bindings."""
        bid = binding_id(id, obj)
        if any(b.id == bid for b in self.bindings):
            bid = f"{bid}-{self._num}"
        binding = HandlerBinding(obj, bid, self._num, state_prefix or "")
        binding.scan(self.machine._names)
        self._num += 1
        self.bindings.append(binding)
        self._reindex()
        return binding

    @property
    def bound_any(self) -> bool:
        """True once any object was bound (even if detached since)."""
        return self._num > 0

    def detach(self, id: str) -> None:
        """Remove the binding with this id; KeyError if there is none."""
        for b in self.bindings:
            if b.id == id:
                self.bindings.remove(b)
                self._reindex()
                return
        raise KeyError(f"handlers not bound: {id}")

    def ids(self) -> list[str]:
        """Binding ids in bind order."""
        return [b.id for b in self.bindings]

    def rescan(self, names: Iterable[str]) -> None:
        """Re-index every binding for a new set of state names (a schema change)."""
        names = list(names)
        for b in self.bindings:
            b.scan(names)
        self._reindex()

    def clear(self) -> None:
        """Drop every binding (disposal)."""
        self.bindings.clear()
        self._reindex()

    def _reindex(self) -> None:
        index: dict[str, list[IndexEntry]] = {}
        pairs: set[str] = set()
        for b in self.bindings:
            for name, (fn, is_async, attr) in b.methods.items():
                index.setdefault(name, []).append((b, fn, is_async, attr))
            pairs |= b.pairs
        self.index = index
        self.pairs = pairs
        # cached plans hold the handler calls made with the old index
        self.machine._plans.clear()

    # --- calls ---

    def handle(self, t: Transition, name: str, state: str, is_final: bool,
               is_self: bool) -> tuple[Result, bool, float]:
        """Call `name` on every binding that has it; (result, ran, seconds) (Go handle).

        CANCELED when a negotiation handler returns False or times out, when any handler
        raises (the transition is then marked `failed` and `Exception` is prepended), or when
        the machine is being disposed.
        """
        m = self.machine
        if m._disposing:
            return CANCELED, False, 0.0
        lvl = m._lvl
        if lvl >= _EVERYTHING:
            for b in self.bindings:
                if name.startswith(b.prefix):
                    m._log(_EVERYTHING, "[handle:%s] %s", b.id, name[len(b.prefix):])
        entries = self.index.get(name)
        if not entries:
            return EXECUTED, False, 0.0
        args = t.mutation.args
        starts = m._tr_handler_start
        ends = m._tr_handler_end
        timeout = m.handler_timeout
        total = 0.0
        for binding, fn, is_async, attr in entries:
            if m._disposing:
                return CANCELED, True, total
            ev = Event(name, m, t, args)
            if lvl >= _OPS:
                m._log(_OPS, "[handler:%d] %s", binding.num, attr)
            for tracer in starts:
                tracer.handler_start(t, binding.id, attr)
            token = current_event.set(ev)
            t0 = perf_counter()
            try:
                ret = fn(ev)
                if is_async:
                    self._fork(ret, state, name)
                    ret = None
            except Exception as exc:
                total += perf_counter() - t0
                current_event.reset(token)
                if t.failure is None:
                    t.failure = raised(name, is_final, exc)
                for tracer in ends:
                    tracer.handler_end(t, binding.id, attr)
                if not m.panic_to_exception:
                    raise
                t.failed = True
                m._recover_to_err(t, name, exc)
                if not is_final and lvl >= _OPS:
                    m._log(_OPS, "[cancel] (%s) by %s", " ".join(t.targets), name)
                return CANCELED, True, total
            dt = perf_counter() - t0
            total += dt
            current_event.reset(token)
            for tracer in ends:
                tracer.handler_end(t, binding.id, attr)
            if lvl >= _EVERYTHING:
                m._log(_EVERYTHING, "[handler:end] %s from %s", name, binding.id)
            if timeout is not None and dt > timeout:
                if t.failure is None:
                    t.failure = Failure(TIMEOUT, name, is_final, seconds=dt)
                self._timeout(t, ev, attr, binding.id, dt)
                if not is_final and lvl >= _OPS:
                    m._log(_OPS, "[cancel] (%s) by %s", " ".join(t.targets), name)
                return CANCELED, True, total
            if ret is False and not is_final:
                t.failure = Failure(VETO, name)
                if lvl >= _OPS:
                    m._log(_OPS, "[cancel%s] (%s) by %s", ":self" if is_self else "",
                           " ".join(t.targets), name)
                return CANCELED, True, total
        return EXECUTED, True, total

    def _timeout(self, t: Transition, ev: Event, method: str, bid: str, seconds: float) -> None:
        """A handler overran `handler_timeout`: cancel like Go, and past the deadline back off."""
        m = self.machine
        m._log(_OPS, "[cancel] (%s) by timeout", " ".join(t.targets))
        m._log(_DECISIONS, "[handler:timeout]: %s from %s", method, bid)
        err = HandlerTimeoutError(f"handler timeout: {method} from {bid} ({seconds:.3f}s)")
        m.err_internal.append(err)
        deadline = m.handler_deadline
        if deadline is None or seconds <= deadline:
            return
        m._log(_EVERYTHING, "[handler:deadline] %s from %s", ev.name, bid)
        m._clear_queue()
        m._report_error(err, {ARG_EXCEPTION: AException(
            err=err, handler=ev.name, called_states=list(t.mutation.called),
            states_before=list(t.states_before), target_states=list(t.targets), tx_id=t.id,
            failure=t.failure)},
            event=ev)
        m._last_deadline = monotonic()

    def _fork(self, coro: Coroutine[Any, Any, Any], state: str, name: str) -> None:
        """Run an `async def` final handler as a task bound to its state's context; if it
        raises, the `Exception` it adds names the handler and carries its traceback."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            raise RuntimeError(f"async handler {name} needs a running asyncio event loop") from None
        self.machine.fork(coro, None if state == ANY else state, handler=name)

    def recover_to_err(self, t: Transition, name: str, exc: Exception) -> None:
        """A handler raised: log it and prepend `add Exception` describing the failed
        transition (Go recoverToErr); never while handling `Exception` itself."""
        m = self.machine
        if m._disposing:
            return
        m.err = exc
        trace = "".join(traceback.format_exception(exc)) if m.log_stack_trace else ""
        if EXCEPTION in t.mutation.called:
            # never nest exception handling (Go kills its handler loop here: docs/machine.md §6,
            # row 6)
            m._log(_CHANGES, "[error] %s raised %r while handling Exception", name, exc)
            return
        m._log(_OPS, "[recover] handling panic...")
        m._log(_CHANGES, "[error:%s] %s (%s %s)\n%s", t.mutation.type,
               " ".join(t.mutation.called), name, exc, trace)
        m._log(_OPS, "[cancel] (%s) by recover", " ".join(t.targets))
        mut = Mutation(_ADD, [EXCEPTION], {ARG_EXCEPTION: AException(
            err=exc, trace=trace, handler=name, called_states=list(t.mutation.called),
            states_before=list(t.states_before), target_states=list(t.targets), tx_id=t.id,
            failure=t.failure)}, source=MutSource(m.id, t.id, sum(t.time_before)))
        m._prepend(mut)


def binding_id(requested: str | None, obj: object) -> str:
    """Sanitise a requested binding id (Go rule) or make an `anon-xxxx` one."""
    if requested:
        clean = _ID_CLEAN.sub("", requested)
        if clean:
            return clean
    return "anon-" + new_id()[:4]


__all__ = ["ANY", "Event", "HandlerBinding", "HandlerDispatcher", "binding_id", "current_event",
           "is_final_name", "is_handler_name", "monotonic", "perf_counter"]
