"""The server's tracer on the state source: keeps the source's view and wakes the server.

It runs inside the source's transitions, on the source's thread (possibly not the server's), so
everything it stores is taken there, between or right after transitions: `latest` (the clock
after the last transition) and `view` (names, schema and clock, consistent with each other). A
server on another thread reads only these (each a single immutable reference), never the
source itself. The tracer also queues per-transition snapshots (SyncMutations) and schedules
the server's push check on the server's loop; it never does I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import amnode.machine as am

from .clock import Snapshot

if TYPE_CHECKING:
    import asyncio

#: Most per-transition snapshots kept for a SyncMutations client between two sends.
MAX_MUTATIONS = 1000

#: (mutation type, called states as source indexes, clock after the transition)
TracedMutation = tuple[int, list[int], Snapshot]

#: (state names, schema, snapshot) of the source, all taken at the same moment
SourceView = tuple[list[str], am.Schema, Snapshot]


def snapshot(m: am.Machine) -> Snapshot:
    """The machine's clock now; call it on the machine's thread."""
    return m.time(), m.queue_tick, m.machine_tick


class SourceTracer(am.Tracer):
    """Bound to the source machine for the lifetime of a Server."""

    def __init__(self, server_id: str, on_change: Callable[[], None],
                 on_schema: Callable[[], None], on_dispose: Callable[[], None]) -> None:
        self._id = server_id
        self._on_change = on_change
        self._on_schema = on_schema
        self._on_dispose = on_dispose
        #: a handshaken client: push checks are scheduled, mutations recorded
        self.active = False
        #: also queue every transition (client asked for SyncMutations)
        self.record_mutations = False
        #: the clock after the source's last transition (None until bound)
        self.latest: Snapshot | None = None
        #: names, schema and clock of the source (None until bound)
        self.view: SourceView | None = None
        self.mutations: deque[TracedMutation] = deque()
        #: the loop and thread of the server, for calls from a source on another thread
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_id = threading.get_ident()
        #: set while the server runs a client's mutation inline: the reply carries the diff
        self.quiet = False
        self._scheduled = False

    @property
    def tracer_id(self) -> str:
        return f"rpc-source-{self._id}"

    def bind(self, machine: am.Machine) -> bool:
        """Bind to the source and take its view; run it on the source's thread."""
        machine.bind_tracer(self)
        self.refresh(machine)
        return True

    def refresh(self, machine: am.Machine) -> None:
        """Take names, schema and clock anew (bind, schema change, new order, import)."""
        snap = snapshot(machine)
        self.latest = snap
        self.view = (machine.state_names, machine.schema, snap)

    def transition_end(self, transition: am.Transition) -> None:
        """Record the clock after the transition and wake the server."""
        mut = transition.mutation
        if mut.is_check:
            return
        m = transition.machine
        snap = (transition.time_after, m.queue_tick, m.machine_tick)
        self.latest = snap
        view = self.view
        if view is not None:
            self.view = (view[0], view[1], snap)
        if not self.active:
            return
        if self.record_mutations:
            index = m.index
            muts = self.mutations
            muts.append((int(mut.type), [index(s) for s in mut.called], snap))
            if len(muts) > MAX_MUTATIONS:
                muts.popleft()
        if not self.quiet:
            self._schedule(self._fire_change)

    def schema_change(self, machine: am.Machine, old_schema: am.Schema) -> None:
        """Take the new view; tell the server to resend names and schema."""
        self.refresh(machine)
        self._schedule(self._on_schema)

    def verify_states(self, machine: am.Machine) -> None:
        """The order (or, after `import_data`, the clock) changed: take the new view."""
        self.refresh(machine)

    def machine_dispose(self, machine_id: str) -> None:
        """Tell the server its source is gone."""
        self._schedule(self._on_dispose)

    def _fire_change(self) -> None:
        self._scheduled = False
        self._on_change()

    def _schedule(self, fn: Callable[[], None]) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if fn == self._fire_change:
            if self._scheduled:
                return
            self._scheduled = True
        if threading.get_ident() == self.thread_id:
            loop.call_soon(fn)
        else:
            loop.call_soon_threadsafe(fn)

    def take_mutations(self) -> list[TracedMutation]:
        """Every queued per-transition snapshot, oldest first; the queue is left empty."""
        out: list[TracedMutation] = []
        muts = self.mutations
        while muts:
            out.append(muts.popleft())
        return out


__all__ = ["MAX_MUTATIONS", "SourceTracer", "SourceView", "TracedMutation", "snapshot"]
