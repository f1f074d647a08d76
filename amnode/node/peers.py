"""Redundant supervisors: peers of one kind that watch each other and adopt a lost peer's workers.

Every supervisor has a control port (its local port, an aRPC `Mux`): peer supervisors and
operators connect there. A supervisor with `peers` dials each peer's control port
(`PeerLink`), proves it knows the group's secret (`SuperConnected` with a `PeerHello`), and from
then on receives that peer's `PoolStatus` (payload `PeerSummary`) after every change of its
pool: its public address, its workers with their addresses, PIDs and lease holders.

When a link to a peer is lost (the peer process died: its sockets closed), each survivor adopts
the peer's orphaned workers, by the rules in docs/node.md ("Operating a pool"):

1. the survivors rank themselves by instance number among the live peers; the n-th waits
   n x `adopt_stagger` seconds, so the lowest number goes first;
2. a survivor skips a worker that shows up in another live peer's summary (adopted already),
   and gives up when the lost peer comes back (the same `incarnation`, not merely the same id:
   a new process at its address is another supervisor);
3. it dials the orphan's local port with a link id that ends in the group's adoption token; the
   worker admits it only while no supervisor is connected (so of two adopters, the first one
   wins, and a live original keeps its worker), and retries until the workers' own grace
   period would end;
4. an adopted worker keeps its lease (its client keeps its direct link); it is retired first
   when the pool is above its target and replaced by a fresh process when its lease ends;
5. a supervisor that finds one of its own workers held by another supervisor (its link is
   refused) gives it up without killing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import amnode.machine as am
from amnode.rpc import Client, Mux, Payload
from amnode.rpc.connection import Connection
from amnode.rpc.protocol import Method
from amnode.states import node as ss

from .access import GuardedServer, Origin, Policy
from .args import ARG, PeerHello, PoolStatus, WorkerRef, WorkerStatus
from .config import adopt
from .links import later

if TYPE_CHECKING:
    from .pool import PoolEntry
    from .supervisor import Supervisor

#: what peers and operators may do on a supervisor's control port
CONTROL_POLICY = Policy("a peer or operator", allow=ss.SUPERVISOR_CONTROL_STATES)
#: the payload a supervisor pushes to its authenticated peers
PAYLOAD_SUMMARY = "PeerSummary"
#: the payload answering `ListWorkers`
PAYLOAD_LIST = ss.LIST_WORKERS


def adoption_token(secret: str, kind: str) -> str:
    """The adoption token of a group (given to its workers): derived from the group's secret,
    so a worker process never learns the secret itself."""
    return hmac.new(secret.encode(), f"adopt|{kind}".encode(), hashlib.sha256).hexdigest()[:24]


def redact(client_id: str) -> str:
    """A lease holder's id without its secret (the last 16 hex digits), for status output."""
    head, _, tail = client_id.rpartition("-")
    if head and len(tail) == 16 and all(c in "0123456789abcdef" for c in tail):
        return head
    return client_id


class PeerLink(Client):
    """The link to one peer's control port: authenticates, then keeps the peer's summary."""

    def __init__(self, peers: Peers, addr: str) -> None:
        sup = peers.s
        t = sup.timeouts
        super().__init__(addr, id=f"{sup.mach.id}-peer", schema=ss.SupervisorSchema,
                         parent=sup.mach, conn_timeout=t.connect, conn_retry=t.peer_retry,
                         call_timeout=t.connect, call_retries=1, log_level=sup.log_level)
        self.peers = peers
        #: the peer's last summary (kept after the link is lost: what to adopt)
        self.summary: PoolStatus | None = None
        #: authenticated (our `SuperConnected` was accepted)
        self.authed = False
        #: the peer's machine id, once known
        self.peer_id = ""
        #: `summary` came over the current connection (not a lost one's leftover)
        self.fresh = False

    @property
    def live(self) -> bool:
        """Linked, authenticated and with a summary of the current connection."""
        return (self.authed and self.fresh and not self.mach.is_disposed
                and self.mach.is_active(ss.READY))

    def on_request(self, conn: Connection, seq: int, method: int, body: Any) -> None:
        """The peer's summaries are kept here (no consumer machine)."""
        if method == Method.SEND_PAYLOAD:
            try:
                payload = Payload.from_wire(body)
            except Exception:
                payload = None
            if payload is not None and payload.name == PAYLOAD_SUMMARY:
                data = payload.data
                nm = self.netmach
                if isinstance(data, PoolStatus) and nm is not None and data.id == nm.remote_id:
                    old = self.summary
                    if old is None or not self.fresh or data.seq >= old.seq \
                            or data.incarnation != old.incarnation:
                        self.summary = data
                        self.fresh = True
                    conn.reply(seq, None)
                    self.peers.summary_changed(self)
                else:
                    conn.reply_error(seq, am.AmnodeError("invalid peer summary"))
                return
        super().on_request(conn, seq, method, body)


class _PeerLinkWatch:
    def __init__(self, link: PeerLink) -> None:
        self.link = link

    def ReadyState(self, e: am.Event) -> None:
        peers = self.link.peers
        peers.s._go(peers._authenticate(self.link))

    def ReadyEnd(self, e: am.Event) -> None:
        link = self.link
        link.fresh = False
        if link.authed:
            link.authed = False
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon(link.peers.lost, link)


class Peers:
    """A supervisor's peers (`sup.peers`): the control port, the links, adoption."""

    def __init__(self, sup: Supervisor, addrs: list[str], secret: str | None) -> None:
        self.s = sup
        self.addrs = list(addrs)
        self.secret = secret or None
        #: given to this supervisor's workers (None: no group, no adoption)
        self.token = adoption_token(secret, sup.kind) if secret else None
        #: outbound links by peer address
        self.links: dict[str, PeerLink] = {}
        #: control-port connections by connection id
        self.conns: dict[str, Origin] = {}
        #: authenticated peers connected to our control port: connection id -> peer id
        self.authed: dict[str, str] = {}
        #: adoptions in flight by worker id
        self.adopting: dict[str, asyncio.Task[Any]] = {}
        #: why the last peers were refused on the control port (newest last)
        self.refusals: deque[str] = deque(maxlen=16)
        self._seq = 0
        self._push_pending = False
        #: what the last pushed summaries said (pushes that would say nothing new are skipped)
        self._pushed: object = None

    # --- the control port (inbound) ---

    def new_server(self, mux: Mux, sid: str, conn: Connection) -> GuardedServer:
        """The control Mux's factory: one guarded server per connection."""
        s = self.s
        origin = Origin(CONTROL_POLICY, "c" + sid)
        server = GuardedServer(s.mach, name=f"ns-loc-{sid}-{s.name}", parent=mux.mach,
                               conn=conn, registry=mux.codec.registry,
                               max_frame=mux.codec.max_frame, ping_interval=mux.ping_interval,
                               mutation_log=mux.mutation_log,
                               delivery_timeout=s.timeouts.delivery, guard=s.guard,
                               origin=origin, log_level=s.log_level,
                               mutable_states=ss.SUPERVISOR_CONTROL_STATES)
        adopt(server.mach, s.mach)
        self.conns[origin.conn_id] = origin
        server.mach.bind_handlers(_ControlConnWatch(self, origin), id="node-control")
        return server

    def proof(self, from_id: str, to_id: str) -> str:
        """What `from_id` presents to `to_id` to show it knows the group's secret."""
        assert self.secret is not None
        msg = f"peer|{self.s.kind}|{from_id}|{to_id}".encode()
        return hmac.new(self.secret.encode(), msg, hashlib.sha256).hexdigest()

    def check_hello(self, origin: Origin | None, args: PeerHello | None) -> str:
        """Why a `SuperConnected` is refused ("" = a peer of our group)."""
        if origin is None or origin.conn_id not in self.conns:
            return "not from the control port"
        if self.secret is None:
            return "this supervisor has no group secret"
        if args is None or not all(isinstance(getattr(args, f), str) for f in
                                   ("id", "public_addr", "local_addr", "proof")):
            return "invalid PeerHello"
        if origin.client_id != f"rc-{args.id}-peer":
            return f"{origin.client_id} is not the link of {args.id}"
        if args.id == self.s.mach.id:
            return "that is me"
        if not hmac.compare_digest(args.proof, self.proof(args.id, self.s.mach.id)):
            return "wrong proof (another group secret?)"
        return ""

    def connected(self, origin: Origin, args: PeerHello) -> None:
        """A peer authenticated on our control port: it gets our summary from now on."""
        self.authed[origin.conn_id] = args.id
        self.s.mach.log("peer %s (instance %d, public %s) connected", args.id,
                        args.instance_num, args.public_addr)
        self.s._go(self._send_summary(origin))

    def disconnected(self, conn_id: str) -> None:
        """A control-port connection ended."""
        self.conns.pop(conn_id, None)
        peer = self.authed.pop(conn_id, None)
        if peer is not None and not self.s.mach.is_disposed:
            self.s.mach.add(ss.SUPER_DISCONNECTED, {"id": peer})

    def push_soon(self) -> None:
        """Send our summary to every authenticated peer on the next loop iteration."""
        if self._push_pending or not self.authed:
            return
        self._push_pending = True

        def run() -> None:
            self._push_pending = False
            # only what a peer acts on: workers, their addresses, leases, what is dying
            mark = (self.s._stopping, tuple(
                (e.key, e.id, e.pid, e.local_addr, e.lease[1] if e.lease else "",
                 bool(e.killing), e.linked) for e in self.s.pool.entries.values()),
                    tuple(sorted(self.authed)))
            if mark == self._pushed:
                return
            self._pushed = mark
            for conn_id in list(self.authed):
                origin = self.conns.get(conn_id)
                if origin is not None:
                    self.s._go(self._send_summary(origin))

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_soon(run)

    async def push_now(self, timeout: float) -> None:
        """Send our summary to every authenticated peer and wait (e.g. "stopping")."""
        sends = [self._send_summary(self.conns[c]) for c in list(self.authed) if c in self.conns]
        if sends:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*sends, return_exceptions=True), timeout)

    async def _send_summary(self, origin: Origin) -> None:
        self._seq += 1
        status = self.s.status(redacted=False)
        status.seq = self._seq
        await self.s.leases.send(origin, PAYLOAD_SUMMARY, status)

    # --- links to the peers (outbound) ---

    async def start(self) -> None:
        """Dial every peer (each link retries forever)."""
        for addr in self.addrs:
            if addr in self.links:
                continue
            link = PeerLink(self, addr)
            adopt(link.mach, self.s.mach)
            link.mach.bind_handlers(_PeerLinkWatch(link), id="node-peer-link")
            self.links[addr] = link
            await link.start()

    def dispose(self) -> None:
        """Drop every link and adoption (no goodbye)."""
        for task in list(self.adopting.values()):
            task.cancel()
        self.adopting.clear()
        for link in list(self.links.values()):
            if not link.mach.is_disposed:
                link.dispose()
        self.links.clear()

    async def _authenticate(self, link: PeerLink) -> None:
        """Present ourselves to the peer (`SuperConnected` with a `PeerHello`)."""
        nm = link.netmach
        if nm is None or self.secret is None:
            return
        s = self.s
        hello = PeerHello(s.mach.id, s.instance_num, s.public_addr, s.local_addr,
                          self.proof(s.mach.id, nm.remote_id))
        try:
            res = await nm.add(ss.SUPER_CONNECTED, {ARG: hello})
        except Exception as err:
            s.mach.log("peer %s refused us: %s", link.addr, err)
            return
        if res != am.EXECUTED or not link.mach.is_active(ss.READY):
            s.mach.log("peer %s refused us (wrong group secret?)", link.addr)
            return
        link.authed = True
        link.peer_id = nm.remote_id
        s.mach.log("linked to peer %s at %s", link.peer_id, link.addr)

    def summary_changed(self, link: PeerLink) -> None:
        """A peer's summary arrived: adoptions of workers it holds are given up, and so are
        those of a lost peer that is back (the same incarnation, not a new process)."""
        summary = link.summary
        if summary is None:
            return
        held = {w.id for w in summary.workers}
        for wid, task in list(self.adopting.items()):
            back = getattr(task, "incarnation", None) == summary.incarnation
            if back or (wid in held and not summary.stopping):
                self.adopting.pop(wid).cancel()

    def live_peers(self) -> list[PeerLink]:
        """Links to peers that are linked and authenticated now."""
        return [x for x in self.links.values() if x.live]

    # --- adoption ---

    def lost(self, link: PeerLink) -> None:
        """The link to a peer was lost: adopt its orphaned workers (rules above)."""
        s = self.s
        summary = link.summary
        if s._stopping or s.mach.is_disposed or summary is None:
            return
        s.mach.log("lost peer %s (%d workers)", summary.id, len(summary.workers))
        if summary.stopping or not self.token:
            return
        s._go(self._adopt_all(link, summary))

    def _rank(self, lost: PeerLink) -> int:
        mine = self.s.instance_num
        others = [x.summary.instance_num for x in self.live_peers()
                  if x is not lost and x.summary is not None]
        return sum(1 for n in others if n < mine)

    def held_elsewhere(self, worker_id: str, lost: PeerLink | None) -> bool:
        """A live peer shows this worker in its pool (`lost` only if it is another process
        now)."""
        return any(x.summary is not None and any(w.id == worker_id for w in x.summary.workers)
                   for x in self.live_peers())

    async def _adopt_all(self, link: PeerLink, summary: PoolStatus) -> None:
        s = self.s
        loop = asyncio.get_running_loop()
        # every orphan exits `supervisor_grace` after losing its supervisor
        deadline = loop.time() + s.timeouts.supervisor_grace
        rank = self._rank(link)
        if rank:
            await asyncio.sleep(rank * s.timeouts.adopt_stagger)
        if self.back(link, summary.incarnation):
            return
        for w in summary.workers:
            if (not w.id or not w.local_addr or w.state == "killing" or w.id in self.adopting
                    or s.pool.by_id(w.id) is not None or self.held_elsewhere(w.id, link)):
                continue
            task = s._go(self._adopt(w, link, summary.incarnation, deadline))
            task.incarnation = summary.incarnation  # type: ignore[attr-defined]
            self.adopting[w.id] = task
            task.add_done_callback(self._adopted_cb(w.id))

    def _adopted_cb(self, wid: str) -> Callable[[asyncio.Task[Any]], None]:
        def done(_task: asyncio.Task[Any]) -> None:
            self.adopting.pop(wid, None)
            if not self.adopting:
                self.s._status_soon()
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().call_soon(self.s._normalize)

        return done

    def back(self, link: PeerLink, incarnation: str) -> bool:
        """The lost peer itself is linked again (not a new process at its address)."""
        return link.live and link.summary is not None \
            and link.summary.incarnation == incarnation

    async def _adopt(self, w: WorkerStatus, link: PeerLink, incarnation: str,
                     deadline: float) -> None:
        """Take one orphan over: an entry, then the link (retried until `deadline`)."""
        s = self.s
        entry = s.pool.new_entry(-1)
        entry.adopted = True
        entry.id = w.id
        entry.pid = w.pid
        entry.local_addr = w.local_addr
        entry.public_addr = w.public_addr
        if w.leased_to:
            entry.lease = ("", w.leased_to)
            entry.client_seen = True
        s.mach.add(ss.ADOPT_WORKER, {ARG: WorkerRef(entry.key, f"from {link.peer_id}")})
        ok = False
        try:
            ok = await s._adopt_link(entry, deadline, lambda: self.back(link, incarnation)
                                     or self.held_elsewhere(w.id, link))
        finally:
            if not ok and entry.key in s.pool.entries and not entry.linked:
                s._forget(entry, "adoption failed")


class _ControlConnWatch:
    """Bound on each control-port server: its end is `SuperDisconnected` for a peer."""

    def __init__(self, peers: Peers, origin: Origin) -> None:
        self.peers = peers
        self.origin = origin

    def ClientConnectedEnd(self, e: am.Event) -> None:
        peers = self.peers
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_soon(peers.disconnected, self.origin.conn_id)


def entry_status(entry: PoolEntry, now: float, redacted: bool) -> WorkerStatus:
    """One pool entry as a `WorkerStatus`."""
    leased = entry.lease[1] if entry.lease else ""
    return WorkerStatus(entry.key, entry.id, entry.pid, entry.state(), entry.local_addr,
                        entry.public_addr, redact(leased) if redacted else leased,
                        entry.jobs(), entry.errors.count(), round(max(0.0, now - entry.started), 3),
                        entry.adopted)


__all__ = ["CONTROL_POLICY", "PAYLOAD_LIST", "PAYLOAD_SUMMARY", "PeerLink", "Peers",
           "adoption_token", "entry_status", "later", "redact"]
