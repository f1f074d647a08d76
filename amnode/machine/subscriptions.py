"""Waits (`when*`) and state contexts, resolved after accepted transitions (Go subscriptions.go).

Waiters are asyncio futures created in the machine's loop and indexed by state, so a transition
only looks at waiters of the states it changed. Cancelling the awaiting task (or its timeout)
removes the waiter at once, which fixes Go's "ctx-canceled waits linger" quirk (docs/machine.md
§6, row 3).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import DisposedError

if TYPE_CHECKING:
    from .machine import Machine
    from .transition import Transition


class StateCtx:
    """Lives while one state keeps its tick; cancelled when the state activates, deactivates,
    re-enters (Multi) or the machine is disposed (Go NewStateCtx)."""

    __slots__ = ("_fut", "_tasks", "cancelled", "state", "tick")

    def __init__(self, state: str, tick: int) -> None:
        self.state = state
        self.tick = tick
        self.cancelled = False
        self._fut: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def wait(self) -> None:
        """Return once the context is cancelled."""
        if self.cancelled:
            return
        if self._fut is None:
            self._fut = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._fut)

    def _cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(None)
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def __repr__(self) -> str:
        return f"StateCtx({self.state}@{self.tick}{' cancelled' if self.cancelled else ''})"


class Wait(Coroutine[Any, Any, None]):
    """A registered wait, returned by `when*`: a coroutine to await or to wrap in a task.

    The waiter is registered when `when*` is called, like Go's channels, so
    `w = m.when_ticks("A", 2)` counts from the call, not from the `await`, and
    `asyncio.create_task(m.when("A"))` cannot miss a change. It is unregistered when the wait
    ends in any way: resolved, timed out, cancelled (even before it started), closed, or
    garbage-collected without ever being awaited.
    """

    __slots__ = ("_cleanup", "_fut", "_inner", "_mach_id", "_timeout", "_what")

    def __init__(self, mach_id: str, fut: asyncio.Future[Any], timeout: float | None,
                 what: str, cleanup: Callable[[], None] | None) -> None:
        self._mach_id = mach_id
        self._fut = fut
        self._timeout = timeout
        self._what = what
        self._cleanup = cleanup
        self._inner: Coroutine[Any, Any, None] | None = None

    def _unregister(self) -> None:
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            cleanup()

    def _started(self) -> Coroutine[Any, Any, None]:
        if self._inner is None:
            self._inner = self._wait()
        return self._inner

    def __await__(self) -> Generator[Any, None, None]:
        return self._started().__await__()

    def send(self, value: Any) -> Any:
        return self._started().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._inner is None:  # cancelled (or failed) before it ever ran
            self._unregister()
        return self._started().throw(typ, val, tb)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
        self._unregister()

    def __del__(self) -> None:
        self._unregister()

    async def _wait(self) -> None:
        fut = self._fut
        try:
            if self._timeout is None:
                result = await fut
            else:
                result = await asyncio.wait_for(fut, self._timeout)
            if result is DISPOSED:
                raise DisposedError(f"machine {self._mach_id} was disposed")
        except TimeoutError:
            raise TimeoutError(f"{self._mach_id}: {self._what} timed out after "
                               f"{self._timeout}s") from None
        finally:
            self._unregister()


#: the result of a wait cut short by disposal (raised as DisposedError by `Wait`)
DISPOSED = object()

async def done() -> None:
    """A wait whose condition already holds."""


class _Waiter:
    __slots__ = ("fut", "states", "ticks")

    def __init__(self, fut: asyncio.Future[Any], states: tuple[str, ...],
                 ticks: tuple[int, ...] = ()) -> None:
        self.fut = fut
        self.states = states
        self.ticks = ticks


def _resolve(fut: asyncio.Future[Any], value: Any = None) -> None:
    if not fut.done():
        fut.set_result(value)


class Subscriptions:
    """Every pending wait of one machine and its state contexts."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.ctxs: dict[str, StateCtx] = {}
        self.when_active: dict[str, list[_Waiter]] = {}
        self.when_inactive: dict[str, list[_Waiter]] = {}
        self.when_time: dict[str, list[_Waiter]] = {}
        #: state -> [(args subset, future)] matched after each `StateState` handler dispatch
        self.when_args: dict[str, list[tuple[dict[str, Any], asyncio.Future[Any]]]] = {}
        self.when_queue: list[tuple[int, int, asyncio.Future[Any]]] = []
        self.when_queue_ends: list[asyncio.Future[Any]] = []
        self.when_query: list[tuple[Callable[[dict[str, int]], bool], asyncio.Future[Any]]] = []
        self.when_disposed: list[asyncio.Future[Any]] = []
        self._seq = 0

    # --- registration (called by Machine.when* with a fresh future) ---

    def add_states(self, table: dict[str, list[_Waiter]], fut: asyncio.Future[Any],
                   states: tuple[str, ...], ticks: tuple[int, ...] = ()) -> Callable[[], None]:
        waiter = _Waiter(fut, states, ticks)
        for s in states:
            table.setdefault(s, []).append(waiter)

        def remove() -> None:
            for s in states:
                lst = table.get(s)
                if lst is not None:
                    try:
                        lst.remove(waiter)
                    except ValueError:
                        pass
                    if not lst:
                        del table[s]

        return remove

    def add_args(self, state: str, args: Mapping[str, Any],
                 fut: asyncio.Future[Any]) -> Callable[[], None]:
        entry = (dict(args), fut)
        self.when_args.setdefault(state, []).append(entry)

        def remove() -> None:
            lst = self.when_args.get(state)
            if lst and entry in lst:
                lst.remove(entry)
                if not lst:
                    del self.when_args[state]

        return remove

    def add_queue(self, tick: int, fut: asyncio.Future[Any]) -> Callable[[], None]:
        self._seq += 1
        entry = (tick, self._seq, fut)
        heapq.heappush(self.when_queue, entry)

        def remove() -> None:
            if not fut.done() or fut.cancelled():
                try:
                    self.when_queue.remove(entry)
                except ValueError:
                    return
                heapq.heapify(self.when_queue)

        return remove

    def add_list(self, lst: list[asyncio.Future[Any]], fut: asyncio.Future[Any]
                 ) -> Callable[[], None]:
        lst.append(fut)

        def remove() -> None:
            if fut in lst:
                lst.remove(fut)

        return remove

    # --- processing ---

    def process(self, t: Transition) -> None:
        """Resolve waits after an accepted transition (Go processSubscriptions)."""
        m = self.machine
        active = m._active_set
        if self.when_active:
            for s in t._act:
                for w in list(self.when_active.get(s, ())):
                    if all(x in active for x in w.states):
                        _resolve(w.fut)
        if self.when_inactive:
            for s in t._deact:
                for w in list(self.when_inactive.get(s, ())):
                    if not any(x in active for x in w.states):
                        _resolve(w.fut)
        if self.when_time:
            ticks = m._ticks
            before = t.time_before
            index = m._index
            for s in list(self.when_time):
                i = index[s]
                if ticks[i] == before[i]:
                    continue
                for w in list(self.when_time.get(s, ())):
                    if all(ticks[index[x]] >= tick
                           for x, tick in zip(w.states, w.ticks, strict=True)):
                        _resolve(w.fut)
        if self.when_query:
            clock = m.clock()
            for fn, fut in list(self.when_query):
                if fut.done():
                    continue
                try:
                    ok = fn(clock)
                except Exception as err:  # a broken predicate fails its own waiter only
                    fut.set_exception(err)
                    continue
                if ok:
                    _resolve(fut)

    def process_queue_tick(self, queue_tick: int) -> None:
        """Resolve `when_queue` waits whose tick was reached (accepted or not)."""
        q = self.when_queue
        while q and q[0][0] <= queue_tick:
            _resolve(heapq.heappop(q)[2])

    def process_when_args(self, state: str, args: Mapping[str, Any]) -> None:
        """Resolve `when_args` waits whose args are a subset of the transition's args."""
        for expected, fut in list(self.when_args.get(state, ())):
            if all(k in args and args[k] == v for k, v in expected.items()):
                _resolve(fut)

    def queue_ended(self) -> None:
        """Resolve every `when_queue_ends` wait."""
        futs, self.when_queue_ends = self.when_queue_ends, []
        for fut in futs:
            _resolve(fut)

    # --- state contexts ---

    def state_ctx(self, state: str) -> StateCtx:
        ctx = self.ctxs.get(state)
        if ctx is None:
            ctx = self.ctxs[state] = StateCtx(state, self.machine.tick(state))
        return ctx

    def cancel_state_ctxs(self, activated: Iterable[str], deactivated: Iterable[str]) -> None:
        ctxs = self.ctxs
        for group in (activated, deactivated):
            for s in group:
                ctx = ctxs.pop(s, None)
                if ctx is not None:
                    ctx._cancel()

    # --- disposal ---

    def dispose(self) -> None:
        """Cancel every state context, fail every wait with DisposedError, resolve when_disposed."""
        for ctx in list(self.ctxs.values()):
            ctx._cancel()
        self.ctxs.clear()
        err_futs: list[asyncio.Future[Any]] = []
        for table in (self.when_active, self.when_inactive, self.when_time):
            for lst in table.values():
                err_futs.extend(w.fut for w in lst)
            table.clear()
        for lst2 in self.when_args.values():
            err_futs.extend(f for _, f in lst2)
        self.when_args.clear()
        err_futs.extend(f for _, _, f in self.when_queue)
        self.when_queue.clear()
        err_futs.extend(f for _, f in self.when_query)
        self.when_query.clear()
        for fut in err_futs:
            _resolve(fut, DISPOSED)
        self.queue_ended()
        futs, self.when_disposed = self.when_disposed, []
        for fut in futs:
            _resolve(fut)
