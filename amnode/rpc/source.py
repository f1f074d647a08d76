"""One tracer per state source, shared by every server exposing it: the source's view, and who
to wake when it changes.

`SourceHub` is bound to the source machine once, however many servers (a mux runs one per
connection) expose it; each server holds a `SourceSubscription`. The hub runs inside the source's
transitions, on the source's thread (possibly not the servers'), so everything it stores is
taken there: `latest` (the clock after the last transition) and `view` (names, schema and clock,
consistent with each other). A server on another thread reads only these (each a single immutable
reference), never the source itself.

A source change costs the hub O(1) plus one wake-up per *waiting* subscription: a server
registers (`want_change`) only when it could act on the next change, not while its push
throttle has a flush armed, so idle clients cost the source almost nothing per transition. The
hub also queues per-transition snapshots for SyncMutations subscribers; it never does I/O.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import amnode.machine as am

from .clock import Snapshot

#: Most per-transition snapshots kept for a SyncMutations client between two sends.
MAX_MUTATIONS = 1000

#: (mutation type, called states as source indexes, clock after the transition)
TracedMutation = tuple[int, list[int], Snapshot]

#: (state names, schema, snapshot) of the source, all taken at the same moment
SourceView = tuple[list[str], am.Schema, Snapshot]


def snapshot(m: am.Machine) -> Snapshot:
    """The machine's clock now; call it on the machine's thread."""
    return m.time(), m.queue_tick, m.machine_tick


class SourceSubscription:
    """One server's link to its source's hub: the shared view and its own wake-ups.

    `on_change` runs on the server's loop after a source change, once per `want_change`;
    `on_schema` and `on_dispose` run there for every schema change and the source's disposal.
    """

    __slots__ = ("_recording", "active", "hub", "loop", "mutations", "on_change", "on_dispose",
                 "on_schema", "thread_id")

    def __init__(self, hub: SourceHub, on_change: Callable[[], None],
                 on_schema: Callable[[], None], on_dispose: Callable[[], None]) -> None:
        self.hub = hub
        self.on_change = on_change
        self.on_schema = on_schema
        self.on_dispose = on_dispose
        #: the server's loop and thread (set by `set_loop`)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_id = threading.get_ident()
        #: a handshaken client: per-transition snapshots are queued if it asked for them
        self.active = False
        self._recording = False
        self.mutations: deque[TracedMutation] = deque()

    @property
    def view(self) -> SourceView | None:
        """Names, schema and clock of the source (None until the hub is bound)."""
        return self.hub.view

    @property
    def latest(self) -> Snapshot | None:
        """The clock after the source's last transition (None until the hub is bound)."""
        return self.hub.latest

    @property
    def bound(self) -> concurrent.futures.Future[Any] | None:
        """The pending bind of the hub on the source's thread (None once done or failed)."""
        return self.hub.bound

    def set_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's loop and thread: wake-ups are delivered there."""
        self.loop = loop
        self.thread_id = threading.get_ident()

    def record_mutations(self, on: bool) -> None:
        """Queue a snapshot per source transition (SyncMutations), or stop and drop them."""
        self._recording = on
        if not on:
            self.mutations.clear()
        self.hub.update_recorders()

    def want_change(self) -> None:
        """Call `on_change` (once) on the server's loop after the next source change."""
        if self.loop is not None:
            self.hub.want_change(self)

    def take_mutations(self) -> list[TracedMutation]:
        """Every queued per-transition snapshot, oldest first; the queue is left empty."""
        out: list[TracedMutation] = []
        muts = self.mutations
        while muts:
            out.append(muts.popleft())
        return out

    def close(self) -> None:
        """Unsubscribe; the last subscription detaches the hub from the source."""
        self.active = False
        self._recording = False
        self.mutations.clear()
        self.hub.unsubscribe(self)


class SourceHub(am.Tracer):
    """The one tracer of a state source exposed over aRPC (see the module docstring)."""

    _hubs: dict[int, SourceHub] = {}
    _lock = threading.Lock()

    def __init__(self, source: am.Machine) -> None:
        self.source = source
        #: the clock after the source's last transition (None until bound)
        self.latest: Snapshot | None = None
        #: names, schema and clock of the source (None until bound)
        self.view: SourceView | None = None
        #: the bind scheduled on the source's thread, until it completed
        self.bound: concurrent.futures.Future[Any] | None = None
        self._subs: list[SourceSubscription] = []
        #: subscriptions recording every transition (SyncMutations), rebuilt on change
        self._recorders: tuple[SourceSubscription, ...] = ()
        #: per server loop: subscriptions waiting for the next change
        self._waiting: dict[asyncio.AbstractEventLoop, set[SourceSubscription]] = {}
        #: loops with a wake-up scheduled and not yet run
        self._scheduled: set[asyncio.AbstractEventLoop] = set()
        #: the thread of each server loop
        self._threads: dict[asyncio.AbstractEventLoop, int] = {}
        self._wake_lock = threading.Lock()
        self._attached = False

    @property
    def tracer_id(self) -> str:
        return f"rpc-source-{self.source.id}"

    # --- subscribing (any thread) ---

    @classmethod
    def subscribe(cls, source: am.Machine, on_change: Callable[[], None],
                  on_schema: Callable[[], None],
                  on_dispose: Callable[[], None]) -> SourceSubscription:
        """Subscribe to `source`'s hub, creating and binding it first if needed. Never blocks:
        on another thread the bind is scheduled there (see `SourceSubscription.bound`)."""
        with cls._lock:
            hub = cls._hubs.get(id(source))
            if hub is None or hub.source is not source:
                hub = cls._hubs[id(source)] = SourceHub(source)
            sub = SourceSubscription(hub, on_change, on_schema, on_dispose)
            hub._subs.append(sub)
            first = not hub._attached
            hub._attached = True
        if first:
            hub._bind()
        return sub

    def _bind(self) -> None:
        source = self.source
        if source.owner_thread_id == threading.get_ident():
            self._bind_here()
            return
        fut = source.threadsafe.eval(self._bind_here, "rpc-source-hub")
        self.bound = fut

        def done(f: concurrent.futures.Future[Any]) -> None:
            if self.bound is f:
                self.bound = None

        fut.add_done_callback(done)

    def _bind_here(self) -> None:
        """On the source's thread: bind and take the view."""
        self.source.bind_tracer(self)
        self.refresh(self.source)

    def unsubscribe(self, sub: SourceSubscription) -> None:
        """Drop `sub`; the last one detaches the hub (on the source's thread)."""
        with SourceHub._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            for waiting in self._waiting.values():
                waiting.discard(sub)
            last = not self._subs
            if last and SourceHub._hubs.get(id(self.source)) is self:
                del SourceHub._hubs[id(self.source)]
        self.update_recorders()
        if not last:
            return
        source = self.source
        if source.is_disposed:
            return

        def detach() -> None:
            try:
                source.detach_tracer(self)
            except KeyError:
                pass

        if source.owner_thread_id == threading.get_ident():
            detach()
        else:
            source.threadsafe.eval(detach, "rpc-source-hub")

    def update_recorders(self) -> None:
        """Rebuild the tuple of subscriptions that record every transition."""
        with SourceHub._lock:
            self._recorders = tuple(s for s in self._subs if s._recording)

    # --- wake-ups (server threads and the source's thread) ---

    def want_change(self, sub: SourceSubscription) -> None:
        """Register `sub` for the next change (called on its server's thread)."""
        loop = sub.loop
        assert loop is not None
        with self._wake_lock:
            self._waiting.setdefault(loop, set()).add(sub)
            self._threads[loop] = sub.thread_id

    def _wake(self) -> None:
        """After a change: schedule one flush per loop that has waiting subscriptions."""
        with self._wake_lock:
            todo = [loop for loop, waiting in self._waiting.items()
                    if waiting and loop not in self._scheduled]
            self._scheduled.update(todo)
        here = threading.get_ident()
        for loop in todo:
            if loop.is_closed():
                continue
            if self._threads.get(loop) == here:
                loop.call_soon(self._flush, loop)
            else:
                loop.call_soon_threadsafe(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On a server loop: wake every subscription that waited (each re-registers itself
        when it wants the next change)."""
        with self._wake_lock:
            self._scheduled.discard(loop)
            waiting = self._waiting.pop(loop, None)
        for sub in waiting or ():
            sub.on_change()

    def _broadcast(self, pick: Callable[[SourceSubscription], Callable[[], None]]) -> None:
        """Run a callback of every subscription on its own loop."""
        here = threading.get_ident()
        for sub in list(self._subs):
            loop = sub.loop
            if loop is None or loop.is_closed():
                continue
            if sub.thread_id == here:
                loop.call_soon(pick(sub))
            else:
                loop.call_soon_threadsafe(pick(sub))

    # --- the tracer (the source's thread) ---

    def refresh(self, machine: am.Machine) -> None:
        """Take names, schema and clock anew (bind, schema change, new order, import)."""
        snap = snapshot(machine)
        self.latest = snap
        self.view = (machine.state_names, machine.schema, snap)

    def transition_end(self, transition: am.Transition) -> None:
        """Record the clock after the transition; queue it for recorders; wake who waits."""
        mut = transition.mutation
        if mut.is_check:
            return
        m = transition.machine
        snap = (transition.time_after, m.queue_tick, m.machine_tick)
        self.latest = snap
        view = self.view
        if view is not None:
            self.view = (view[0], view[1], snap)
        recorders = self._recorders
        if recorders:
            index = m.index
            item = (int(mut.type), [index(s) for s in mut.called], snap)
            for sub in recorders:
                if sub.active:
                    muts = sub.mutations
                    muts.append(item)
                    if len(muts) > MAX_MUTATIONS:
                        muts.popleft()
        if self._waiting:
            self._wake()

    def schema_change(self, machine: am.Machine, old_schema: am.Schema) -> None:
        """Take the new view; every server resends names and schema."""
        self.refresh(machine)
        self._broadcast(lambda s: s.on_schema)

    def verify_states(self, machine: am.Machine) -> None:
        """The order (or, after `import_data`, the clock) changed: take the new view."""
        self.refresh(machine)

    def machine_dispose(self, machine_id: str) -> None:
        """Tell every server its source is gone."""
        with SourceHub._lock:
            if SourceHub._hubs.get(id(self.source)) is self:
                del SourceHub._hubs[id(self.source)]
        self._broadcast(lambda s: s.on_dispose)


__all__ = ["MAX_MUTATIONS", "SourceHub", "SourceSubscription", "SourceView", "TracedMutation",
           "snapshot"]
