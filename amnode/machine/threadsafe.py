"""Mutating a machine from a thread that does not own it."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import WrongThreadError
from .mutation import MutSource
from .schema import StatesArg

if TYPE_CHECKING:
    from .machine import Machine


class ThreadsafeMachine:
    """Schedules mutations on the owner thread's event loop; each returns a
    `concurrent.futures.Future` with the mutation's result.

    The owner thread must run an asyncio loop (the machine captures it when created inside a
    running loop, on its first `when*`, or via `Machine.bind_thread()`). Called from the owner
    thread itself, the mutation runs at once.
    """

    __slots__ = ("_m",)

    def __init__(self, machine: Machine) -> None:
        self._m = machine

    def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> concurrent.futures.Future:
        m = self._m
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if threading.get_ident() == m._thread_id:
            try:
                fut.set_result(fn(*args, **kw))
            except BaseException as err:
                fut.set_exception(err)
            return fut
        loop = m._loop
        if loop is None or loop.is_closed():
            raise WrongThreadError(
                f"machine {m.id} has no event loop to schedule on; run an asyncio loop in its "
                "thread (or call machine.bind_thread() there)")

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args, **kw))
            except BaseException as err:
                fut.set_exception(err)

        loop.call_soon_threadsafe(run)
        return fut

    def add(self, states: StatesArg, args: dict[str, Any] | None = None,
            source: MutSource | None = None
            ) -> concurrent.futures.Future:
        """Thread-safe `Machine.add`."""
        return self._call(self._m.add, states, args, event=source)

    def remove(self, states: StatesArg, args: dict[str, Any] | None = None,
               source: MutSource | None = None
               ) -> concurrent.futures.Future:
        """Thread-safe `Machine.remove`."""
        return self._call(self._m.remove, states, args, event=source)

    def set(self, states: StatesArg, args: dict[str, Any] | None = None,
            source: MutSource | None = None
            ) -> concurrent.futures.Future:
        """Thread-safe `Machine.set`."""
        return self._call(self._m.set, states, args, event=source)

    def toggle(self, states: StatesArg, args: dict[str, Any] | None = None,
               source: MutSource | None = None
               ) -> concurrent.futures.Future:
        """Thread-safe `Machine.toggle`."""
        return self._call(self._m.toggle, states, args, event=source)

    def add_err(self, err: BaseException, args: dict[str, Any] | None = None
                ) -> concurrent.futures.Future:
        """Thread-safe `Machine.add_err`."""
        return self._call(self._m.add_err, err, args)

    def eval(self, fn: Callable[[], Any], source: str) -> concurrent.futures.Future:
        """Run `fn` on the owner thread between transitions; the future holds True when done."""
        return self._call(self._m.eval, fn, source)

    def add_err_state(self, state: str, err: BaseException, args: dict[str, Any] | None = None
                      ) -> concurrent.futures.Future:
        """Thread-safe `Machine.add_err_state`."""
        return self._call(self._m.add_err_state, state, err, args)

    def can_add(self, states: StatesArg, args: dict[str, Any] | None = None
                ) -> concurrent.futures.Future:
        """Thread-safe `Machine.can_add`."""
        return self._call(self._m.can_add, states, args)

    def can_remove(self, states: StatesArg, args: dict[str, Any] | None = None
                   ) -> concurrent.futures.Future:
        """Thread-safe `Machine.can_remove`."""
        return self._call(self._m.can_remove, states, args)

    def dispose(self) -> concurrent.futures.Future:
        """Thread-safe `Machine.dispose`."""
        return self._call(self._m.dispose)

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> concurrent.futures.Future:
        """Run any `fn(*args, **kw)` on the owner thread; the future holds its result or error
        (unlike `eval`, which reports errors to the machine)."""
        return self._call(fn, *args, **kw)
