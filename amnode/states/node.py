"""Schemas of the node system: supervisor, worker, client and bootstrap (Go pkg/node/states).

Import as `from amnode.states import node as ssnode`. State names are identical to the Go
reference; relations follow it except where a fix needs another one (each such change is
marked "fix:" below and listed in docs/node.md). A user worker schema must contain every state
of `WorkerSchema`: extend it with `am.schema_merge(ssnode.WorkerSchema, {...})`.

The node `ClientSchema` is deliberately not re-exported from `amnode.states`, where that name
is the aRPC client's schema.
"""

from __future__ import annotations

from amnode.machine import State, schema_merge

from .basic import (
    ERR_HANDLER_TIMEOUT,
    ERR_NETWORK,
    EXCEPTION,
    HEALTHCHECK,
    HEARTBEAT,
    READY,
    START,
    BasicSchema,
)
from .rpc import ERR_ON_CLIENT, SERVER_PAYLOAD, ConsumerSchema, StateSourceSchema

# --- state names shared by several node machines ---

ERR_WORKER = "ErrWorker"
ERR_SUPERVISOR = "ErrSupervisor"
LOCAL_RPC_READY = "LocalRpcReady"
PUBLIC_RPC_READY = "PublicRpcReady"
SUPER_CONNECTED = "SuperConnected"
CLIENT_CONNECTED = "ClientConnected"
CLIENT_SEND_PAYLOAD = "ClientSendPayload"
SUPER_SEND_PAYLOAD = "SuperSendPayload"
WORKER_READY = "WorkerReady"

# --- supervisor ---

ERR_POOL = "ErrPool"
POOL_STARTING = "PoolStarting"
POOL_READY = "PoolReady"
NORMALIZING_POOL = "NormalizingPool"
POOL_NORMALIZED = "PoolNormalized"
WORKERS_AVAILABLE = "WorkersAvailable"
LIST_WORKERS = "ListWorkers"
SET_WORKER = "SetWorker"
FORK_WORKER = "ForkWorker"
FORKING_WORKER = "ForkingWorker"
WORKER_CONNECTED = "WorkerConnected"
WORKER_FORKED = "WorkerForked"
KILL_WORKER = "KillWorker"
KILLING_WORKER = "KillingWorker"
WORKER_KILLED = "WorkerKilled"
WORKER_GONE = "WorkerGone"
CLIENT_DISCONNECTED = "ClientDisconnected"
PROVIDE_WORKER = "ProvideWorker"
WORKER_ISSUES = "WorkerIssues"
SUPER_DISCONNECTED = "SuperDisconnected"
RETURN_WORKER = "ReturnWorker"
ADOPT_WORKER = "AdoptWorker"
ROTATE_LOGS = "RotateLogs"

#: groups of the supervisor (Go SupervisorGroups)
POOL_STATUS_GROUP: list[str] = [POOL_STARTING, POOL_READY]
ERRORS_GROUP: list[str] = [ERR_WORKER, ERR_POOL]
POOL_NORMALIZED_GROUP: list[str] = [POOL_NORMALIZED, NORMALIZING_POOL]

SupervisorSchema: dict[str, State] = schema_merge(BasicSchema, StateSourceSchema, ConsumerSchema, {
    # fix: Multi, so every worker error is its own tick (and its own record in amdbg)
    ERR_WORKER: State(multi=True, require=[EXCEPTION], add=[NORMALIZING_POOL, HEARTBEAT]),
    ERR_POOL: State(require=[EXCEPTION], remove=[POOL_NORMALIZED], add=[NORMALIZING_POOL]),
    START: State(add=[POOL_STARTING]),
    # fix (B6): really added by the supervisor once both ports listen and the pool is ready
    READY: State(require=[LOCAL_RPC_READY, PUBLIC_RPC_READY, POOL_READY]),
    LOCAL_RPC_READY: State(require=[START]),
    PUBLIC_RPC_READY: State(require=[START]),
    HEARTBEAT: State(require=[START]),
    HEALTHCHECK: State(multi=True),
    POOL_STARTING: State(remove=POOL_STATUS_GROUP, add=[NORMALIZING_POOL]),
    POOL_READY: State(require=[START], remove=POOL_STATUS_GROUP, add=[HEARTBEAT]),
    NORMALIZING_POOL: State(require=[START], remove=POOL_NORMALIZED_GROUP, after=[ERR_WORKER]),
    POOL_NORMALIZED: State(require=[START], remove=POOL_NORMALIZED_GROUP, add=[HEARTBEAT]),
    WORKERS_AVAILABLE: State(require=[POOL_READY]),
    LIST_WORKERS: State(multi=True, require=[START]),
    SET_WORKER: State(multi=True, require=[START]),
    FORK_WORKER: State(multi=True, require=[START]),
    FORKING_WORKER: State(multi=True, require=[START]),
    WORKER_CONNECTED: State(multi=True, require=[START]),
    WORKER_FORKED: State(multi=True, require=[START], add=[HEARTBEAT]),
    # fix (B13): a request to kill and replace one worker (Go: a no-op)
    KILL_WORKER: State(multi=True, require=[START]),
    KILLING_WORKER: State(multi=True),
    WORKER_KILLED: State(multi=True, add=[NORMALIZING_POOL, HEARTBEAT]),
    WORKER_READY: State(multi=True, require=[START], add=[POOL_READY]),
    WORKER_GONE: State(multi=True, require=[START], remove=[POOL_READY]),
    CLIENT_CONNECTED: State(multi=True),
    CLIENT_DISCONNECTED: State(multi=True),
    # fix (B2-B4): no Require WorkersAvailable; a request without an idle worker gets an
    # explicit refusal and makes the pool grow
    PROVIDE_WORKER: State(multi=True, require=[START]),
    WORKER_ISSUES: State(multi=True),
    CLIENT_SEND_PAYLOAD: State(multi=True),
    SUPER_SEND_PAYLOAD: State(multi=True),
    # failsafe: a peer supervisor authenticated on the control port / its link ended
    SUPER_CONNECTED: State(multi=True),
    SUPER_DISCONNECTED: State(multi=True),
    # failsafe: a client gives its worker back (args ReturnWorkerArgs)
    RETURN_WORKER: State(multi=True, require=[START]),
    # failsafe: an orphaned worker of a lost peer is being taken over (args WorkerRef)
    ADOPT_WORKER: State(multi=True, require=[START]),
    # failsafe: reopen every worker log file now (also SIGHUP in `amnode supervisor`)
    ROTATE_LOGS: State(multi=True, require=[START]),
})

#: the supervisor's state order
SUPERVISOR_STATES: list[str] = [
    EXCEPTION, ERR_NETWORK, ERR_HANDLER_TIMEOUT, ERR_ON_CLIENT, ERR_WORKER, ERR_POOL,
    START, READY, LOCAL_RPC_READY, PUBLIC_RPC_READY, HEARTBEAT, HEALTHCHECK,
    POOL_STARTING, POOL_READY, NORMALIZING_POOL, POOL_NORMALIZED, WORKERS_AVAILABLE,
    LIST_WORKERS, SET_WORKER, FORK_WORKER, FORKING_WORKER, WORKER_CONNECTED, WORKER_FORKED,
    KILL_WORKER, KILLING_WORKER, WORKER_KILLED, WORKER_READY, WORKER_GONE,
    CLIENT_CONNECTED, CLIENT_DISCONNECTED, PROVIDE_WORKER, WORKER_ISSUES,
    CLIENT_SEND_PAYLOAD, SUPER_SEND_PAYLOAD, SUPER_CONNECTED, SUPER_DISCONNECTED, SERVER_PAYLOAD,
    RETURN_WORKER, ADOPT_WORKER, ROTATE_LOGS,
]

#: the only states a node client may add on a supervisor's public port (access control):
#: request and return a worker, and ask for the pool's status (read-only, no secrets)
SUPERVISOR_CLIENT_STATES: list[str] = [PROVIDE_WORKER, RETURN_WORKER, LIST_WORKERS]

#: the only states peers and operators may add on a supervisor's control (local) port
SUPERVISOR_CONTROL_STATES: list[str] = [SUPER_CONNECTED, LIST_WORKERS, KILL_WORKER, ROTATE_LOGS]

# --- worker ---

ERR_WORK = "ErrWork"
ERR_WORK_TIMEOUT = "ErrWorkTimeout"
ERR_CLIENT = "ErrClient"
RPC_READY = "RpcReady"
IDLE = "Idle"
WORK_REQUESTED = "WorkRequested"
WORKING = "Working"
WORK_READY = "WorkReady"
SERVE_CLIENT = "ServeClient"
RESERVED = "Reserved"

#: "1 active at a time" work status (Go WorkerGroups.WorkStatus)
WORK_STATUS_GROUP: list[str] = [WORK_REQUESTED, WORKING, WORK_READY, IDLE]

WorkerSchema: dict[str, State] = schema_merge(BasicSchema, StateSourceSchema, {
    ERR_WORK: State(require=[EXCEPTION]),
    ERR_WORK_TIMEOUT: State(require=[EXCEPTION]),
    ERR_CLIENT: State(require=[EXCEPTION]),
    ERR_SUPERVISOR: State(require=[EXCEPTION]),
    START: State(),
    LOCAL_RPC_READY: State(require=[START]),
    PUBLIC_RPC_READY: State(require=[START]),
    SUPER_CONNECTED: State(require=[START]),
    CLIENT_CONNECTED: State(require=[START]),
    RPC_READY: State(auto=True, require=[LOCAL_RPC_READY, PUBLIC_RPC_READY]),
    READY: State(require=[LOCAL_RPC_READY]),
    IDLE: State(auto=True, require=[READY], remove=WORK_STATUS_GROUP),
    WORK_REQUESTED: State(require=[READY], remove=WORK_STATUS_GROUP),
    WORKING: State(require=[READY], remove=WORK_STATUS_GROUP),
    WORK_READY: State(require=[READY], remove=WORK_STATUS_GROUP),
    # fix: an event (Multi) handled by the worker itself
    SERVE_CLIENT: State(multi=True, require=[PUBLIC_RPC_READY]),
    # fix (lease): active while the worker is leased to one client; it keeps Idle away, so a
    # leased worker never looks idle to the pool
    RESERVED: State(require=[START], remove=[IDLE]),
    # fix (B5): Multi, so every payload is delivered (two in a row are two payloads)
    CLIENT_SEND_PAYLOAD: State(multi=True, require=[PUBLIC_RPC_READY]),
    SUPER_SEND_PAYLOAD: State(multi=True, require=[LOCAL_RPC_READY]),
    HEALTHCHECK: State(multi=True),
    HEARTBEAT: State(),
})

#: the worker's state order (a user schema adds its own states after these)
WORKER_STATES: list[str] = [
    EXCEPTION, ERR_NETWORK, ERR_HANDLER_TIMEOUT, ERR_ON_CLIENT, ERR_WORK, ERR_WORK_TIMEOUT,
    ERR_CLIENT, ERR_SUPERVISOR, START, LOCAL_RPC_READY, PUBLIC_RPC_READY, SUPER_CONNECTED,
    CLIENT_CONNECTED, RPC_READY, READY, IDLE, WORK_REQUESTED, WORKING, WORK_READY, SERVE_CLIENT,
    RESERVED, CLIENT_SEND_PAYLOAD, SUPER_SEND_PAYLOAD, HEALTHCHECK, HEARTBEAT,
]

#: node states of a worker that its leased client may NOT mutate (the supervisor may)
WORKER_CONTROL_STATES: list[str] = [
    EXCEPTION, ERR_NETWORK, ERR_HANDLER_TIMEOUT, ERR_CLIENT, ERR_SUPERVISOR,
    START, LOCAL_RPC_READY, PUBLIC_RPC_READY, SUPER_CONNECTED, CLIENT_CONNECTED, RPC_READY,
    READY, SERVE_CLIENT, RESERVED, SUPER_SEND_PAYLOAD, HEARTBEAT,
]



def worker_client_states(names: list[str]) -> list[str]:
    """Of a worker's states (`names`), those its leased client may mutate: everything but the
    node control states (the allowlist of the worker's public port)."""
    control = set(WORKER_CONTROL_STATES)
    return [n for n in names if n not in control]


# --- client ---

SUPER_CONNECTING = "SuperConnecting"
SUPER_DISCONNECTING = "SuperDisconnecting"
SUPER_READY = "SuperReady"
WORKER_REQUESTED = "WorkerRequested"
WORKER_DISCONNECTED = "WorkerDisconnected"
WORKER_CONNECTING = "WorkerConnecting"
WORKER_DISCONNECTING = "WorkerDisconnecting"

ClientSchema: dict[str, State] = schema_merge(BasicSchema, ConsumerSchema, {
    ERR_WORKER: State(require=[EXCEPTION]),
    ERR_SUPERVISOR: State(require=[EXCEPTION]),
    START: State(),
    SUPER_DISCONNECTED: State(),
    SUPER_CONNECTING: State(),
    SUPER_CONNECTED: State(),
    SUPER_DISCONNECTING: State(),
    SUPER_READY: State(),
    WORKER_REQUESTED: State(require=[SUPER_READY]),
    WORKER_DISCONNECTED: State(),
    WORKER_CONNECTING: State(),
    WORKER_CONNECTED: State(),
    WORKER_DISCONNECTING: State(),
    WORKER_READY: State(remove=[WORKER_REQUESTED]),
    READY: State(auto=True, require=[WORKER_READY]),
})

#: the client's state order (a user schema adds its own states after these)
CLIENT_STATES: list[str] = [
    EXCEPTION, ERR_NETWORK, ERR_HANDLER_TIMEOUT, ERR_WORKER, ERR_SUPERVISOR, START, READY,
    SUPER_DISCONNECTED, SUPER_CONNECTING, SUPER_CONNECTED, SUPER_DISCONNECTING, SUPER_READY,
    WORKER_REQUESTED, WORKER_DISCONNECTED, WORKER_CONNECTING, WORKER_CONNECTED,
    WORKER_DISCONNECTING, WORKER_READY, SERVER_PAYLOAD, HEALTHCHECK, HEARTBEAT,
]

# --- bootstrap ---

WORKER_ADDR = "WorkerAddr"

BootstrapSchema: dict[str, State] = schema_merge(BasicSchema, StateSourceSchema, {
    WORKER_ADDR: State(),
})

#: the bootstrap's state order
BOOTSTRAP_STATES: list[str] = [
    EXCEPTION, ERR_NETWORK, ERR_HANDLER_TIMEOUT, ERR_ON_CLIENT, START, READY, HEALTHCHECK,
    HEARTBEAT, WORKER_ADDR,
]

#: the only state a worker process may add on its bootstrap
BOOTSTRAP_CLIENT_STATES: list[str] = [WORKER_ADDR]


def missing_states(schema_or_names: object, required: list[str]) -> list[str]:
    """The names of `required` that a schema (a mapping) or a list of names lacks."""
    names = set(schema_or_names)  # type: ignore[call-overload]
    return [s for s in required if s not in names]


__all__ = [
    "ADOPT_WORKER",
    "BOOTSTRAP_CLIENT_STATES",
    "BOOTSTRAP_STATES",
    "CLIENT_CONNECTED",
    "CLIENT_DISCONNECTED",
    "CLIENT_SEND_PAYLOAD",
    "CLIENT_STATES",
    "ERRORS_GROUP",
    "ERR_CLIENT",
    "ERR_HANDLER_TIMEOUT",
    "ERR_NETWORK",
    "ERR_ON_CLIENT",
    "ERR_POOL",
    "ERR_SUPERVISOR",
    "ERR_WORK",
    "ERR_WORKER",
    "ERR_WORK_TIMEOUT",
    "EXCEPTION",
    "FORKING_WORKER",
    "FORK_WORKER",
    "HEALTHCHECK",
    "HEARTBEAT",
    "IDLE",
    "KILLING_WORKER",
    "KILL_WORKER",
    "LIST_WORKERS",
    "LOCAL_RPC_READY",
    "NORMALIZING_POOL",
    "POOL_NORMALIZED",
    "POOL_NORMALIZED_GROUP",
    "POOL_READY",
    "POOL_STARTING",
    "POOL_STATUS_GROUP",
    "PROVIDE_WORKER",
    "PUBLIC_RPC_READY",
    "READY",
    "RESERVED",
    "RETURN_WORKER",
    "ROTATE_LOGS",
    "RPC_READY",
    "SERVER_PAYLOAD",
    "SERVE_CLIENT",
    "SET_WORKER",
    "START",
    "SUPERVISOR_CLIENT_STATES",
    "SUPERVISOR_CONTROL_STATES",
    "SUPERVISOR_STATES",
    "SUPER_CONNECTED",
    "SUPER_CONNECTING",
    "SUPER_DISCONNECTED",
    "SUPER_DISCONNECTING",
    "SUPER_READY",
    "SUPER_SEND_PAYLOAD",
    "WORKERS_AVAILABLE",
    "WORKER_ADDR",
    "WORKER_CONNECTED",
    "WORKER_CONNECTING",
    "WORKER_CONTROL_STATES",
    "WORKER_DISCONNECTED",
    "WORKER_DISCONNECTING",
    "WORKER_FORKED",
    "WORKER_GONE",
    "WORKER_ISSUES",
    "WORKER_KILLED",
    "WORKER_READY",
    "WORKER_REQUESTED",
    "WORKER_STATES",
    "WORKING",
    "WORK_READY",
    "WORK_REQUESTED",
    "WORK_STATUS_GROUP",
    "BootstrapSchema",
    "ClientSchema",
    "SupervisorSchema",
    "WorkerSchema",
    "missing_states",
    "worker_client_states",
]
