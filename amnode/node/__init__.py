"""amnode.node: a supervisor with a pool of worker processes, leased one by one to clients.

    from amnode import node
    from amnode.states import node as ssnode

    sup = node.Supervisor("sq", worker_cmd=[sys.executable, "worker.py"], worker_schema=schema)
    await sup.start("127.0.0.1:0")            # public port: sup.public_addr
    client = node.Client("cli", "sq", worker_schema=schema)
    await client.start([sup.public_addr])
    worker = await client.req_worker()        # the leased worker's mirror
    payload = await client.work({"input": 2}) # WorkRequested -> the worker's payload

A worker script ends with `node.run_worker(kind, schema, handlers)`. The `amnode` command
(`amnode.node.cli`) runs a supervisor from a shell and shows its pool. docs/node.md has the rules,
the flow, every failure and the differences from the Go reference.
"""

from .access import GuardedServer, Origin, Policy, RemoteGuard
from .args import (
    ARG,
    ClientConnArgs,
    LeaseRefused,
    ListWorkersArgs,
    PeerHello,
    PoolStatus,
    ProvideWorkerArgs,
    ReturnWorkerArgs,
    ServeClientArgs,
    WorkerAddrArgs,
    WorkerGone,
    WorkerLease,
    WorkerRef,
    WorkerStatus,
    get_args,
)
from .bootstrap import Bootstrap
from .client import Client
from .config import ErrorPolicy, NodeTimeouts, PoolConfig
from .errors import (
    BootstrapError,
    NodeError,
    PoolError,
    SupervisorUnavailableError,
    WorkerExitError,
    WorkerHealthError,
    WorkerRequestTimeout,
    WorkerUnavailableError,
)
from .logs import LogFile, WorkerLogs
from .pool import WorkerInfo
from .spawn import (
    BOOT_ADDR_ENV,
    InProcessSpawner,
    ProcessSpawner,
    Spawner,
    WorkerHandle,
)
from .supervisor import Supervisor
from .worker import Worker, run_worker

__all__ = [
    "ARG",
    "BOOT_ADDR_ENV",
    "Bootstrap",
    "BootstrapError",
    "Client",
    "ClientConnArgs",
    "ErrorPolicy",
    "GuardedServer",
    "InProcessSpawner",
    "LeaseRefused",
    "ListWorkersArgs",
    "LogFile",
    "NodeError",
    "NodeTimeouts",
    "Origin",
    "PeerHello",
    "Policy",
    "PoolConfig",
    "PoolError",
    "PoolStatus",
    "ProcessSpawner",
    "ProvideWorkerArgs",
    "RemoteGuard",
    "ReturnWorkerArgs",
    "ServeClientArgs",
    "Spawner",
    "Supervisor",
    "SupervisorUnavailableError",
    "Worker",
    "WorkerAddrArgs",
    "WorkerExitError",
    "WorkerGone",
    "WorkerHandle",
    "WorkerHealthError",
    "WorkerInfo",
    "WorkerLease",
    "WorkerLogs",
    "WorkerRef",
    "WorkerRequestTimeout",
    "WorkerStatus",
    "WorkerUnavailableError",
    "get_args",
    "run_worker",
]
