"""Leases: a supervisor's clients, and which worker each of them holds.

A client on the public port (one `GuardedServer` per connection, made by the Mux) adds
`ProvideWorker`; the supervisor picks an idle worker, marks it leased at once (two clients never
get the same worker), confirms with the worker (`ServeClient`: it admits only that client and
shows `Reserved`) and answers through that connection with a `ProvideWorker` payload: a
`WorkerLease` (the worker's public address) or a `LeaseRefused` (why; a client that found no
idle worker counts as demand, so the pool grows for it up to `max`).

A lease lives while its client is connected to the worker (the worker's `ClientConnected`, seen
on the supervisor's mirror), or to this supervisor through the connection it leased on. It
expires (the worker returns to `Idle`) when the client has not connected to the worker within
`timeouts.lease` of the lease, or when it lost both links for that long; it ends at once when
the client returns it (`ReturnWorker`). A worker that did `max_jobs` jobs, or is returned with
`recycle`, or was adopted from a lost peer, is replaced by a fresh process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import amnode.machine as am
from amnode.rpc import Mux
from amnode.rpc.connection import Connection
from amnode.states import node as ss

from .access import GuardedServer, Origin, Policy
from .args import (
    ARG,
    ClientConnArgs,
    LeaseRefused,
    ProvideWorkerArgs,
    ReturnWorkerArgs,
    ServeClientArgs,
    WorkerLease,
    WorkerRef,
)
from .config import adopt
from .errors import NodeError
from .links import later
from .pool import PoolEntry

if TYPE_CHECKING:
    from .supervisor import Supervisor

#: what a client may do on the supervisor's public port: request a worker
CLIENT_POLICY = Policy("a client", allow=ss.SUPERVISOR_CLIENT_STATES)
#: workers tried for one ProvideWorker before giving up
_LEASE_TRIES = 3


class Leases:
    """The lease side of a supervisor (`sup.leases`): public connections, requests, releases."""

    def __init__(self, sup: Supervisor) -> None:
        self.s = sup
        #: live public connections by connection id
        self.conns: dict[str, Origin] = {}
        #: expiry timers of leases whose client is not connected, by pool key
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def provide(self, origin: Origin, args: ProvideWorkerArgs, tries: int = 0) -> None:
        """Lease an idle worker to the connection `origin`, or refuse (and grow the pool)."""
        pool = self.s.pool
        cfg = pool.config
        client = args.worker_client_id
        for entry in pool.entries.values():
            if entry.lease is None or entry.lease[1] != client:
                continue
            if entry.lease[0] != origin.conn_id:
                if entry.lease[0] in self.conns:
                    self._refuse(origin, args, f"client id {client} is in use by another "
                                 "connection", retry=False)
                    return
                entry.lease = (origin.conn_id, client)  # the same client, reconnected
            if not entry.leasing:
                self.s._go(self._answer(entry, origin, args))
            return
        held = len(pool.leases_of(origin.conn_id))
        if held >= cfg.max_client_workers:
            self._refuse(origin, args, f"this client holds {held} workers "
                         f"(max_client_workers={cfg.max_client_workers})", retry=False)
            return
        idle = pool.idle()
        if not idle:
            # this client is demand now: the pool grows for it (up to max) while it asks again
            pool.want(client, pool.clock() + self.s.timeouts.req_worker)
            self._refuse(origin, args, (
                f"no idle worker ({pool.ready_count()} ready, {pool.leased_count()} leased, "
                f"{len(pool.entries)} of max {cfg.max} workers)"), retry=True)
            self.s._normalize()
            return
        pool.served(client)
        entry = idle[0]
        entry.lease = (origin.conn_id, client)
        entry.leasing = True
        self.s.mach.log("leasing %s to %s", entry.id, client)
        self.s._update_status()
        self.s._normalize()
        self.s._go(self._lease(entry, origin, args, tries))

    async def _lease(self, entry: PoolEntry, origin: Origin, args: ProvideWorkerArgs,
                     tries: int) -> None:
        """Confirm the lease with the worker (`ServeClient`), then answer the client."""
        mirror = entry.mirror
        res: int | None = None
        if mirror is not None:
            with contextlib.suppress(Exception):
                res = await asyncio.wait_for(
                    mirror.add(ss.SERVE_CLIENT, {ARG: ServeClientArgs(args.worker_client_id)}),
                    self.s.timeouts.connect)
        if entry.key not in self.s.pool.entries or entry.lease is None \
                or entry.lease[1] != args.worker_client_id:
            return  # released or gone meanwhile
        entry.leasing = False
        if res != am.EXECUTED:
            entry.lease = None
            self.s.mach.add_err_state(ss.ERR_WORKER, NodeError(
                f"worker {entry.id} refused ServeClient {args.worker_client_id}"),
                {ARG: WorkerRef(entry.key, "ServeClient refused")})
            if tries + 1 < _LEASE_TRIES:
                self.provide(origin, args, tries + 1)
            else:
                self._refuse(origin, args, "workers refused the lease", retry=True)
            return
        entry.lease_at = self.s.pool.clock()
        self.s._update_status()
        self.watch(entry)
        await self._answer(entry, origin, args)

    async def _answer(self, entry: PoolEntry, origin: Origin, args: ProvideWorkerArgs) -> None:
        """Send the lease to the client; release it if the client cannot take it."""
        lease = WorkerLease(entry.id, entry.public_addr, args.request, self.s.kind)
        if not await self.send(origin, ss.PROVIDE_WORKER, lease):
            self.release(entry, "the client did not take the lease")

    def _refuse(self, origin: Origin, args: ProvideWorkerArgs, reason: str,
                retry: bool) -> None:
        """Answer `ProvideWorker` with a `LeaseRefused` (and log why)."""
        self.s.mach.log("refused a worker to %s: %s", args.worker_client_id, reason)
        self.s._go(self.send(origin, ss.PROVIDE_WORKER,
                             LeaseRefused(reason, retry, args.request)))

    async def send(self, origin: Origin, name: str, data: Any) -> bool:
        """A payload to one public connection; False if it could not be delivered."""
        server = origin.server
        if server is None or server.mach.is_disposed:
            return False
        try:
            await server.send_payload(name, data, origin.client_id or None,
                                      timeout=self.s.timeouts.delivery)
        except Exception as err:
            self.s.mach.log("payload %s to %s not delivered: %s", name, origin.client_id, err)
            return False
        return True

    def watch(self, entry: PoolEntry) -> None:
        """Keep a lease's expiry timer right: off while its client is connected to the worker
        (or, once it was, to this supervisor); on otherwise."""
        key = entry.key
        if entry.lease is None or entry.leasing or entry.killing:
            self._cancel(key)
            return
        mirror = entry.mirror
        if mirror is not None and mirror.is_active(ss.CLIENT_CONNECTED):
            entry.client_seen = True
            self._cancel(key)
            return
        if entry.client_seen and entry.lease[0] in self.conns:
            self._cancel(key)  # the client is ours: it reconnects to its worker or returns it
            return
        if key not in self._timers:
            with contextlib.suppress(RuntimeError):
                self._timers[key] = asyncio.get_running_loop().call_later(
                    self.s.timeouts.lease, self._expire, entry)

    def _cancel(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, entry: PoolEntry) -> None:
        self._timers.pop(entry.key, None)
        if entry.key not in self.s.pool.entries or entry.lease is None or self.s._stopping:
            return
        self.watch(entry)  # still without its client? (the timer is armed again if so)
        if entry.key not in self._timers:
            return
        self._cancel(entry.key)
        why = ("lease expired: the client did not connect to the worker" if not
               entry.client_seen else "lease expired: the client is gone")
        self.release(entry, f"{why} within {self.s.timeouts.lease}s")

    def detach(self, conn_id: str) -> None:
        """A public connection ended: its leases stay while their clients are connected to
        their workers (a client moving to another supervisor keeps its worker)."""
        for entry in self.s.pool.leases_of(conn_id):
            assert entry.lease is not None
            entry.lease = ("", entry.lease[1])
            self.watch(entry)

    def find(self, client_id: str) -> PoolEntry | None:
        """The entry leased to the aRPC client `client_id`."""
        for entry in self.s.pool.entries.values():
            if entry.lease is not None and entry.lease[1] == client_id:
                return entry
        return None

    def give_back(self, args: ReturnWorkerArgs) -> bool:
        """`ReturnWorker`: end that client's lease now (False if it holds none here)."""
        entry = self.find(args.worker_client_id)
        if entry is None:
            return False
        self.release(entry, "returned by its client", recycle=bool(args.recycle))
        return True

    def release(self, entry: PoolEntry, reason: str, recycle: bool = False) -> None:
        """End a lease: the worker drops its client and returns to `Idle`, or is replaced by a
        fresh process (recycled: on request, after `max_jobs`, an adopted worker), or is
        killed if it cannot be told."""
        if entry.lease is None:
            return
        client = entry.lease[1]
        entry.lease = None
        entry.leasing = False
        entry.client_seen = False
        self._cancel(entry.key)
        max_jobs = self.s.pool.config.max_jobs
        jobs = entry.jobs()
        why = ""
        if recycle:
            why = "recycled on request"
        elif max_jobs and jobs >= max_jobs:
            why = f"recycled after {jobs} jobs (max_jobs={max_jobs})"
        elif entry.adopted:
            why = "recycled (adopted from a lost peer)"
        self.s.mach.log("released %s from %s: %s", entry.id, client, reason)
        if entry.killing:
            pass
        elif why or not entry.linked:
            entry.deliberate = True
            self.s.mach.add(ss.KILLING_WORKER,
                            {ARG: WorkerRef(entry.key, why or "released, unreachable")})
        else:
            self.s._go(self._unreserve(entry))
        self.s._update_status()
        self.s._normalize()

    async def _unreserve(self, entry: PoolEntry) -> None:
        """Tell the worker its lease ended (remove `Reserved`); kill it if it cannot be told."""
        mirror = entry.mirror
        res: int | None = None
        if mirror is not None:
            with contextlib.suppress(Exception):
                res = await asyncio.wait_for(mirror.remove(ss.RESERVED), self.s.timeouts.connect)
        if entry.key not in self.s.pool.entries or entry.lease is not None:
            return
        if res != am.EXECUTED or mirror is None or mirror.is_active(ss.RESERVED):
            entry.deliberate = True
            self.s.mach.add(ss.KILLING_WORKER, {ARG: WorkerRef(entry.key, "lease not released")})
        self.s._update_status()

    def new_server(self, mux: Mux, sid: str, conn: Connection) -> GuardedServer:
        """The Mux's factory: one guarded server per client connection."""
        origin = Origin(CLIENT_POLICY, sid)
        server = GuardedServer(self.s.mach, name=f"ns-pub-{sid}-{self.s.name}",
                               parent=mux.mach,
                               conn=conn, registry=mux.codec.registry,
                               max_frame=mux.codec.max_frame, ping_interval=mux.ping_interval,
                               mutation_log=mux.mutation_log,
                               delivery_timeout=self.s.timeouts.delivery, guard=self.s.guard,
                               origin=origin, log_level=self.s.log_level,
                               mutable_states=ss.SUPERVISOR_CLIENT_STATES)
        adopt(server.mach, self.s.mach)
        self.conns[sid] = origin
        server.mach.bind_handlers(_PublicConnWatch(self.s, origin), id="node-public")
        return server


class _PublicConnWatch:
    """Bound on each per-connection server: `ClientConnected`/`ClientDisconnected` on the
    supervisor, keyed by the connection (B8), abrupt disconnects included."""

    def __init__(self, sup: Supervisor, origin: Origin) -> None:
        self.s = sup
        self.origin = origin
        self.handshaken = False

    def HandshakeDoneState(self, e: am.Event) -> None:
        self.handshaken = True
        later(self.s.mach, "add", ss.CLIENT_CONNECTED,
              {ARG: ClientConnArgs(self.origin.conn_id, self.origin.client_id)}, e)

    def HandshakeDoneEnd(self, e: am.Event) -> None:
        later(self.s.mach, "add", ss.CLIENT_DISCONNECTED,
              {ARG: ClientConnArgs(self.origin.conn_id, self.origin.client_id)}, e)

    def ClientConnectedEnd(self, e: am.Event) -> None:
        if not self.handshaken:
            self.s.leases.conns.pop(self.origin.conn_id, None)


__all__ = ["CLIENT_POLICY", "Leases"]
