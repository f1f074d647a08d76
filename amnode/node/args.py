"""One registered args type per node message, the same type locally and over the wire.

Node mutations carry their arguments as one dataclass under the args key `ARG` ("am_node"),
e.g. `mach.add("ProvideWorker", {ARG: ProvideWorkerArgs(...)})`. Every type is registered with
aRPC (`register_args`), so a remote peer receives exactly the type a local caller passes; Go's
split between a local and a wire args struct (its defect B1) cannot happen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def get_args(source: Event | dict[str, Any] | None, cls: type[T]) -> T | None:
    """The node args of an event (or an args dict) if they are a `cls`, else None."""
    if source is None:
        return None
    args = source.args if isinstance(source, Event) else source
    value = args.get(ARG) if args else None
    return value if isinstance(value, cls) else None


__all__ = [
    "ARG", "ClientConnArgs", "LeaseRefused", "ProvideWorkerArgs", "ServeClientArgs",
    "WorkerAddrArgs", "WorkerGone", "WorkerLease", "WorkerRef", "get_args",
]
