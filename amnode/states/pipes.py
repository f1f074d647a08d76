"""Pipes: forward state changes of one machine into another (Go pkg/states/pipes).

A pipe is a pair of final handlers bound on the source (`FooState`, `FooEnd`) that add or remove a
state on the target, forwarding the source event's args. Targets may be local machines or aRPC
mirrors (whose mutations are sent remotely and return futures that pipes do not await).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from amnode.machine import ARG_EXCEPTION, EXCEPTION, Event


class Mutable(Protocol):
    """Anything with Machine-like `add`/`remove` (a local machine or a network mirror)."""

    def add(self, states: Any, args: dict[str, Any] | None = None) -> Any: ...

    def remove(self, states: Any, args: dict[str, Any] | None = None) -> Any: ...


class _Pipes:
    """A handler object whose methods are created per piped state."""

    def __repr__(self) -> str:
        return f"Pipes({', '.join(k for k in vars(self))})"


def bind_handlers(source: Any, handlers: Mapping[str, Callable[[Event], None]],
                  id: str) -> str:
    """Bind plain functions as handlers, by handler name (e.g. `{"FooState": fn}`)."""
    obj = _Pipes()
    for name, fn in handlers.items():
        setattr(obj, name, fn)
    return source.bind_handlers(obj, id=id)


def pipe_add(target: Mutable, target_state: str) -> Callable[[Event], None]:
    """A final handler adding `target_state` on `target` with the event's args."""

    def handler(e: Event) -> None:
        target.add(target_state, dict(e.args) if e.args else None)

    return handler


def pipe_remove(target: Mutable, target_state: str) -> Callable[[Event], None]:
    """A final handler removing `target_state` on `target` with the event's args."""

    def handler(e: Event) -> None:
        target.remove(target_state, dict(e.args) if e.args else None)

    return handler


def bind(source: Any, target: Mutable, source_state: str, target_active: str | None = None,
         target_inactive: str | None = None) -> str:
    """Pipe `source_state` to the target (Go Bind).

    Without `target_inactive`: activation adds `target_active` (default: the same name) and
    deactivation removes it. With `target_inactive`: deactivation adds that state instead
    (e.g. `ClientConnected` -> `Conn`/`Disconn` multi states). Returns the binding id.
    """
    active = target_active or source_state
    end = (pipe_add(target, target_inactive) if target_inactive
           else pipe_remove(target, active))
    handlers = {source_state + "State": pipe_add(target, active), source_state + "End": end}
    return bind_handlers(source, handlers, f"pipe-{source_state}")


def bind_add(source: Any, target: Mutable, source_state: str,
             target_state: str | None = None) -> str:
    """Only forward activations of `source_state` as adds (Go BindAdd)."""
    handler = pipe_add(target, target_state or source_state)
    return bind_handlers(source, {source_state + "State": handler}, f"pipe-add-{source_state}")


def bind_remove(source: Any, target: Mutable, source_state: str,
                target_state: str | None = None) -> str:
    """Only forward deactivations of `source_state` as removes (Go BindRemove)."""
    handler = pipe_remove(target, target_state or source_state)
    return bind_handlers(source, {source_state + "End": handler}, f"pipe-remove-{source_state}")


def bind_many(source: Any, target: Mutable, states: Iterable[str],
              prefix: str = "") -> str:
    """Pipe each state to a same-named (optionally prefixed) target state (Go BindMany)."""
    handlers: dict[str, Callable[[Event], None]] = {}
    for s in states:
        handlers[s + "State"] = pipe_add(target, prefix + s)
        handlers[s + "End"] = pipe_remove(target, prefix + s)
    return bind_handlers(source, handlers, "pipe-many")


def bind_any(source: Any, target: Mutable, states: Iterable[str] | None = None) -> str:
    """Mirror every activation and deactivation of the source onto the target (Go BindAny).

    Only states known to the target (or listed in `states`) are forwarded; one add and one
    remove per source transition at most.
    """
    allowed = None if states is None else set(states)

    def any_state(e: Event) -> None:
        t = e.transition
        known = getattr(target, "state_names", None)
        names = set(known) if known is not None else None
        add = [s for s in t.activated if (allowed is None or s in allowed)
               and (names is None or s in names)]
        rem = [s for s in t.deactivated if (allowed is None or s in allowed)
               and (names is None or s in names)]
        if rem:
            target.remove(rem)
        if add:
            target.add(add)

    return bind_handlers(source, {"AnyState": any_state}, "pipe-any")


def bind_err(source: Any, target: Mutable, err_state: str | None = None) -> str:
    """Pipe the source's `Exception` to the target as `[Exception, err_state]` (Go BindErr)."""

    def exception_state(e: Event) -> None:
        args = {ARG_EXCEPTION: e.args[ARG_EXCEPTION]} if ARG_EXCEPTION in e.args else None
        target.add([err_state, EXCEPTION] if err_state else EXCEPTION, args)

    return bind_handlers(source, {EXCEPTION + "State": exception_state}, "pipe-err")


__all__ = ["Mutable", "bind", "bind_add", "bind_any", "bind_err", "bind_handlers", "bind_many",
           "bind_remove", "pipe_add", "pipe_remove"]
