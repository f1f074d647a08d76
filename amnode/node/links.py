"""Deferred pipes between node machines (Go's pipes add "asynchronously": `go target.EvAdd`).

A handler that mutates another machine runs that machine's whole drain inside itself (the
caller drains), so its own duration, and the chance of tripping its handler timeout, would
depend on what the other machine does. These pipes schedule the target's mutation for the next
loop iteration instead (in order), and keep the source transition as the mutation's recorded
cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import amnode.machine as am
from amnode.states import pipes


def later(target: am.Machine, method: str, states: str | list[str],
          args: dict[str, Any] | None = None, e: am.Event | None = None) -> None:
    """`target.<method>(states, args)` on the next loop iteration, caused by `e`."""
    ev = e if e is not None else am.current_event.get()
    src = (am.MutSource(ev.machine.id, ev.transition.id, sum(ev.transition.time_before))
           if ev is not None else None)

    def apply() -> None:
        if not target.is_disposed:
            getattr(target, method)(states, args, event=src)

    try:
        asyncio.get_running_loop().call_soon(apply)
    except RuntimeError:  # no loop (e.g. disposal at exit): now
        apply()


def _forward(target: am.Machine, method: str, state: str) -> Callable[[am.Event], None]:
    def handler(e: am.Event) -> None:
        later(target, method, state, dict(e.args) if e.args else None, e)

    return handler


def pipe(source: am.Machine, target: am.Machine, source_state: str, active: str | None = None,
         inactive: str | None = None) -> str:
    """`source_state` activates `active` (default: the same name) on `target`; its end removes
    it, or adds `inactive` when given (a Multi "ended" event)."""
    on = active or source_state
    end = _forward(target, "add", inactive) if inactive else _forward(target, "remove", on)
    return pipes.bind_handlers(source, {source_state + "State": _forward(target, "add", on),
                                        source_state + "End": end},
                               f"node-pipe-{source_state}")


def pipe_err(source: am.Machine, target: am.Machine, err_state: str) -> str:
    """The source's `Exception` becomes `[err_state, Exception]` on the target."""

    def handler(e: am.Event) -> None:
        exc = e.args.get(am.ARG_EXCEPTION)
        later(target, "add", [err_state, am.EXCEPTION],
              {am.ARG_EXCEPTION: exc} if exc is not None else None, e)

    return pipes.bind_handlers(source, {am.EXCEPTION + "State": handler}, "node-pipe-err")


__all__ = ["later", "pipe", "pipe_err"]
