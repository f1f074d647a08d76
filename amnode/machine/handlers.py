"""Handler bindings and the event handlers receive (Go handlers / Event).

A binding is any object whose methods are named like Go handlers: `FooEnter`, `FooExit`, `FooFoo`,
`FooBar`, `AnyEnter` (negotiation) and `FooState`, `FooEnd`, `AnyState` (final). Methods are looked
up once, at bind time, and indexed by event name so that a transition only touches handlers that
exist.
"""

from __future__ import annotations

import contextvars
import inspect
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import HandlerBindError
from .schema import ANY, SUFFIX_END, SUFFIX_ENTER, SUFFIX_EXIT, SUFFIX_STATE
from .transition import new_id

if TYPE_CHECKING:
    from .machine import Machine
    from .mutation import Mutation
    from .transition import Transition

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


def binding_id(requested: str | None, obj: object) -> str:
    """Sanitise a requested binding id (Go rule) or make an `anon-xxxx` one."""
    if requested:
        clean = _ID_CLEAN.sub("", requested)
        if clean:
            return clean
    return "anon-" + new_id()[:4]


__all__ = ["ANY", "Event", "HandlerBinding", "binding_id", "current_event", "is_final_name",
           "is_handler_name"]
