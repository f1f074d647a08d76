"""Access control for node ports: which remote mutations a peer may make.

aRPC lets a connected client mutate any state of the exposed machine. Node ports are narrower:
a client on the supervisor's public port may only request a worker (`ProvideWorker`), a worker
process may only report to its bootstrap (`WorkerAddr`), and a leased client may not touch the
worker's node control states (`ServeClient`, `Reserved`, `Start`, ...).

`GuardedServer` marks each mutation it executes with its origin (a `RemoteGuard` tracer on the
exposed machine sees the mutation being queued), and the machine's `AnyEnter` asks the guard
whether that origin may make it. A refused mutation is canceled (the client gets `canceled`),
logged on the machine and on the `amnode.node` logger, and changes nothing.

Every node port also passes its allowlist to the aRPC server (`mutable_states`), which
refuses anything else before the machine sees it (`NoAccessError`, and the client's mirror
refuses it locally); the guard stays for what an allowlist cannot say (adds only, per-origin
rules, and telling a handler which connection asked).

`SupervisorPort` is a worker's local port: it admits only its supervisor's link, and, while no
supervisor is connected, a peer supervisor of the same group adopting the orphan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import amnode.machine as am
from amnode.machine import Event, Mutation, MutationType, Tracer, Transition
from amnode.rpc import NoAccessError, Server
from amnode.rpc.connection import Connection
from amnode.rpc.protocol import MUTATION_CALLS, MUTATION_NOTIFIES, Method
from amnode.states import rpc as ssrpc

log = logging.getLogger("amnode.node")


class Policy:
    """What one kind of remote peer may do: `allow` (only adds of these states) or `deny`
    (anything except touching these states)."""

    def __init__(self, name: str, allow: Iterable[str] | None = None,
                 deny: Iterable[str] | None = None) -> None:
        if (allow is None) == (deny is None):
            raise ValueError("a policy has either allow or deny")
        self.name = name
        self.allow = None if allow is None else frozenset(allow)
        self.deny = None if deny is None else frozenset(deny)

    def refusal(self, mut: Mutation) -> str:
        """Why `mut` is refused ("" = allowed)."""
        called = mut.called
        if self.allow is not None:
            if mut.type != MutationType.ADD:
                return f"{self.name} may not {mut.type} states"
            bad = [s for s in called if s not in self.allow]
            if bad:
                return f"{self.name} may not add {' '.join(bad)}"
            return ""
        assert self.deny is not None
        bad = [s for s in called if s in self.deny]
        return f"{self.name} may not {mut.type} {' '.join(bad)}" if bad else ""


class Origin:
    """Where remote mutations come from: a policy and the server (connection) they arrived on."""

    __slots__ = ("conn_id", "policy", "server")

    def __init__(self, policy: Policy, conn_id: str = "") -> None:
        self.policy = policy
        self.conn_id = conn_id
        self.server: Server | None = None

    @property
    def client_id(self) -> str:
        """The aRPC client id of the connection ("" before its handshake)."""
        return self.server.client_id if self.server is not None else ""

    def __repr__(self) -> str:
        return f"Origin({self.policy.name} {self.conn_id} {self.client_id})"


class RemoteGuard(Tracer):
    """Bound on an exposed machine: remembers which queued mutations came from which origin."""

    def __init__(self) -> None:
        self._window: Origin | None = None
        self._origins: dict[int, tuple[Mutation, Origin]] = {}

    def open(self, origin: Origin) -> None:
        """The next mutation queued on the machine comes from `origin`."""
        self._window = origin

    def close(self) -> None:
        """Nothing remote is being executed."""
        self._window = None

    def mutation_queued(self, machine: am.Machine, mutation: Mutation) -> None:
        origin = self._window
        if origin is not None:
            self._window = None
            self._origins[id(mutation)] = (mutation, origin)

    def transition_end(self, transition: Transition) -> None:
        entry = self._origins.get(id(transition.mutation))
        if entry is not None and entry[0] is transition.mutation:
            del self._origins[id(transition.mutation)]

    def machine_dispose(self, machine_id: str) -> None:
        self._origins.clear()

    def origin(self, mutation: Mutation) -> Origin | None:
        """The remote origin of a mutation, None for local ones."""
        entry = self._origins.get(id(mutation))
        return entry[1] if entry is not None and entry[0] is mutation else None

    def check(self, e: Event) -> bool:
        """For `AnyEnter`: False (logged) when a remote origin may not make this mutation."""
        origin = self.origin(e.mutation)
        if origin is None:
            return True
        why = origin.policy.refusal(e.mutation)
        if not why:
            return True
        m = e.machine
        m.log("[access] refused %s from %s: %s", e.mutation.describe(),
              origin.client_id or origin.conn_id or "a peer", why)
        log.warning("%s: refused %s from %s: %s", m.id, e.mutation.describe(),
                    origin.client_id or origin.conn_id or "a peer", why)
        return False


class GuardedServer(Server):
    """An aRPC server whose remote mutations carry `origin` for the machine's `RemoteGuard`."""

    def __init__(self, source: am.Machine, addr: str = "127.0.0.1:0", *, guard: RemoteGuard,
                 origin: Origin, **kwargs: Any) -> None:
        super().__init__(source, addr, **kwargs)
        self.guard = guard
        self.origin = origin
        origin.server = self

    def on_request(self, conn: Connection, seq: int, method: int, body: Any) -> None:
        """Mutation requests run inside the guard's window."""
        if method not in MUTATION_CALLS:
            super().on_request(conn, seq, method, body)
            return
        self.guard.open(self.origin)
        try:
            super().on_request(conn, seq, method, body)
        finally:
            self.guard.close()

    def on_notify(self, conn: Connection, method: int, body: Any) -> None:
        """Mutation notifications run inside the guard's window."""
        if method not in MUTATION_NOTIFIES:
            super().on_notify(conn, method, body)
            return
        self.guard.open(self.origin)
        try:
            super().on_notify(conn, method, body)
        finally:
            self.guard.close()


class SupervisorPort(Server):
    """A worker's local port (for its supervisor). While a supervisor link is live, only a
    reconnect of that same link id is admitted (no other id can push it out). Without one, it
    admits `allow_id` (the supervisor that spawned it; anyone when None) or, with an
    `adopt_token`, any link id ending in `-<token>`: a peer supervisor of the same group
    adopting this orphan, which becomes its supervisor."""

    def __init__(self, source: am.Machine, addr: str = "127.0.0.1:0", *,
                 adopt_token: str | None = None, **kwargs: Any) -> None:
        super().__init__(source, addr, **kwargs)
        self.adopt_token = adopt_token

    def _supervised_by_other(self, conn: Connection) -> bool:
        cur = self.conn
        return (cur is not None and cur is not conn and not cur.closed
                and not self.mach.is_disposed and self.mach.is_active(ssrpc.HANDSHAKE_DONE))

    def on_request(self, conn: Connection, seq: int, method: int, body: Any) -> None:
        """Hello: decide who may supervise this worker, then the usual handshake."""
        if method == Method.HELLO:
            hid = body.get("id") if type(body) is dict else None
            if not isinstance(hid, str):
                super().on_request(conn, seq, method, body)
                return
            if self._supervised_by_other(conn) and hid != self.client_id:
                log.info("%s: refused %s: supervised by %s", self.mach.id, hid, self.client_id)
                conn.reply_error(seq, NoAccessError(
                    f"{hid}: this worker is supervised by {self.client_id}"))
                conn.close(f"no access for {hid}: supervised")
                return
            token = self.adopt_token
            if token and hid != self.allow_id and hid.endswith("-" + token):
                self.source.log("[access] adopted by %s (was %s)", hid, self.allow_id)
                self.allow_id = hid
        super().on_request(conn, seq, method, body)


__all__ = ["GuardedServer", "Origin", "Policy", "RemoteGuard", "SupervisorPort"]
