"""One registered args type per node message, the same type locally and over the wire.

Node mutations carry their arguments as one dataclass under the args key `ARG` ("am_node"),
e.g. `mach.add("ProvideWorker", {ARG: ProvideWorkerArgs(...)})`. Every type is registered with
aRPC (`register_args`), so a remote peer receives exactly the type a local caller passes; Go's
split between a local and a wire args struct (its defect B1) cannot happen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from amnode.machine import Event
from amnode.rpc import DEFAULT_REGISTRY

#: the args key of every node message
ARG = "am_node"

T = TypeVar("T")


def _wire(name: str) -> Callable[[type[T]], type[T]]:
    """Register a dataclass with aRPC under `name` (the same type on both ends)."""

    def register(cls: type[T]) -> type[T]:
        return DEFAULT_REGISTRY.register(cls, name)

    return register


@_wire("am_node.WorkerAddr")
@dataclass
class WorkerAddrArgs:
    """Worker -> bootstrap (`WorkerAddr`): where the worker listens, who it is; the bootstrap
    forwards it to its supervisor (`WorkerConnected`) with the pool entry's `key` filled in."""

    id: str
    local_addr: str
    public_addr: str
    pid: int = 0
    key: str = ""


@_wire("am_node.ProvideWorker")
@dataclass
class ProvideWorkerArgs:
    """Client -> supervisor (`ProvideWorker`): lease a worker to the aRPC client `worker_client_id`
    (the id the client will present to the worker); `request` numbers the client's requests."""

    worker_client_id: str
    request: int = 0


@_wire("am_node.ServeClient")
@dataclass
class ServeClientArgs:
    """Supervisor -> worker (`ServeClient`): accept exactly this aRPC client id."""

    client_id: str


@_wire("am_node.WorkerLease")
@dataclass
class WorkerLease:
    """Supervisor -> client, payload `ProvideWorker`: the leased worker and its public address."""

    worker_id: str
    public_addr: str
    request: int = 0
    kind: str = ""


@_wire("am_node.LeaseRefused")
@dataclass
class LeaseRefused:
    """Supervisor -> client, payload `ProvideWorker`: no worker for this request, and why.
    `retry` is True when asking again later may succeed (e.g. no idle worker right now)."""

    reason: str
    retry: bool = True
    request: int = 0


@_wire("am_node.WorkerGone")
@dataclass
class WorkerGone:
    """Supervisor -> client, payload `WorkerGone`: the leased worker died or was killed."""

    worker_id: str
    reason: str = ""


@_wire("am_node.WorkerRef")
@dataclass
class WorkerRef:
    """Supervisor-internal worker events (`ForkWorker`, `ForkingWorker`, `WorkerConnected`,
    `WorkerForked`, `WorkerReady`, `KillWorker`, `KillingWorker`, `WorkerKilled`,
    `ErrWorker`): the pool entry `key`, and a reason for logs and recordings."""

    key: str
    reason: str = ""


@_wire("am_node.ClientConn")
@dataclass
class ClientConnArgs:
    """Supervisor-internal (`ClientConnected`, `ClientDisconnected`): one public connection."""

    conn_id: str
    client_id: str = ""


@_wire("am_node.ReturnWorker")
@dataclass
class ReturnWorkerArgs:
    """Client -> supervisor (`ReturnWorker`): the lease of `worker_client_id` ends now; with
    `recycle` the worker is replaced by a fresh process instead of being reset to `Idle`."""

    worker_client_id: str
    recycle: bool = False


@_wire("am_node.ListWorkers")
@dataclass
class ListWorkersArgs:
    """Client, operator or peer -> supervisor (`ListWorkers`): send the pool's status back as a
    `ListWorkers` payload (a `PoolStatus`) tagged with `request`."""

    request: int = 0


@_wire("am_node.WorkerStatus")
@dataclass
class WorkerStatus:
    """One worker in a `PoolStatus`."""

    key: str
    id: str
    pid: int | None
    state: str
    local_addr: str = ""
    public_addr: str = ""
    #: the lease holder's aRPC id (without its secret, except between peers)
    leased_to: str = ""
    jobs: int = 0
    errors: int = 0
    uptime: float = 0.0
    #: taken over from a lost peer supervisor
    adopted: bool = False


@_wire("am_node.PoolStatus")
@dataclass
class PoolStatus:
    """A supervisor's pool: the `ListWorkers` payload, and what peers push to each other
    (payload `PeerSummary`) on every change."""

    id: str
    kind: str
    instance_num: int = 0
    public_addr: str = ""
    local_addr: str = ""
    min: int = 0
    max: int = 0
    warm: int = 0
    target: int = 0
    ready: int = 0
    leased: int = 0
    #: the supervisor's active states of interest (Ready, PoolReady, ErrPool, ...)
    states: list[str] = field(default_factory=list)
    workers: list[WorkerStatus] = field(default_factory=list)
    #: ids of the peer supervisors linked to this one
    peers: list[str] = field(default_factory=list)
    #: why the pool is not ready ("" if it is)
    error: str = ""
    #: the supervisor is stopping (its workers are being killed: nobody should adopt them)
    stopping: bool = False
    request: int = 0
    seq: int = 0
    #: random per supervisor object: a restarted supervisor (maybe with the same id) differs
    incarnation: str = ""


@_wire("am_node.PeerHello")
@dataclass
class PeerHello:
    """Supervisor -> peer supervisor (`SuperConnected` on its control port): who I am, with a
    proof that I know the group's secret."""

    id: str
    instance_num: int
    public_addr: str
    local_addr: str
    proof: str


def get_args(source: Event | dict[str, Any] | None, cls: type[T]) -> T | None:
    """The node args of an event (or an args dict) if they are a `cls`, else None."""
    if source is None:
        return None
    args = source.args if isinstance(source, Event) else source
    value = args.get(ARG) if args else None
    return value if isinstance(value, cls) else None


__all__ = [
    "ARG", "ClientConnArgs", "LeaseRefused", "ListWorkersArgs", "PeerHello", "PoolStatus",
    "ProvideWorkerArgs", "ReturnWorkerArgs", "ServeClientArgs", "WorkerAddrArgs", "WorkerGone",
    "WorkerLease", "WorkerRef", "WorkerStatus", "get_args",
]
