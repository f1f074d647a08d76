"""Schemas of the aRPC machines: state source, server, client, mux and payload consumer (Go
pkg/rpc/states). Relations are the *effective* ones after merging; the lifecycles are in
docs/arpc-protocol.md "Endpoint machines".
"""

from __future__ import annotations

from amnode.machine import State, schema_merge

from .basic import (
    CONNECTED,
    CONNECTED_GROUP,
    CONNECTING,
    DISCONNECTED,
    DISCONNECTING,
    ERR_CONNECTING,
    ERR_HANDLER_TIMEOUT,
    ERR_NETWORK,
    EXCEPTION,
    HEALTHCHECK,
    HEARTBEAT,
    READY,
    START,
    BasicSchema,
    ConnectedSchema,
)

# --- state source (any machine exposed over aRPC) ---

ERR_ON_CLIENT = "ErrOnClient"

#: The only state an exposed machine needs: marks errors a client added through its mirror.
StateSourceSchema: dict[str, State] = {ERR_ON_CLIENT: State(require=[EXCEPTION])}
STATE_SOURCE_STATES: list[str] = [ERR_ON_CLIENT]

# --- shared by server and client ---

ERR_NETWORK_TIMEOUT = "ErrNetworkTimeout"
ERR_RPC = "ErrRpc"
ERR_DELIVERY = "ErrDelivery"
HANDSHAKING = "Handshaking"
HANDSHAKE_DONE = "HandshakeDone"
METRIC_SYNC = "MetricSync"

HANDSHAKE_GROUP: list[str] = [HANDSHAKING, HANDSHAKE_DONE]

SharedSchema: dict[str, State] = schema_merge(BasicSchema, StateSourceSchema, {
    ERR_NETWORK: State(require=[EXCEPTION]),
    ERR_NETWORK_TIMEOUT: State(require=[EXCEPTION]),
    ERR_RPC: State(require=[EXCEPTION]),
    ERR_DELIVERY: State(require=[EXCEPTION]),
    HANDSHAKING: State(require=[START], remove=HANDSHAKE_GROUP),
    HANDSHAKE_DONE: State(require=[START], remove=HANDSHAKE_GROUP),
})

# --- server ---

RPC_STARTING = "RpcStarting"
RPC_ACCEPTING = "RpcAccepting"
RPC_READY = "RpcReady"
CLIENT_CONNECTED = "ClientConnected"
WEB_SOCKET_TUNNEL = "WebSocketTunnel"

RPC_GROUP: list[str] = [RPC_STARTING, RPC_ACCEPTING, RPC_READY]

ServerSchema: dict[str, State] = schema_merge(SharedSchema, {
    ERR_NETWORK: State(require=[EXCEPTION], remove=[CLIENT_CONNECTED]),
    HANDSHAKE_DONE: State(require=[START, CLIENT_CONNECTED],
                          remove=[*HANDSHAKE_GROUP, EXCEPTION]),
    START: State(add=[RPC_STARTING]),
    READY: State(auto=True, require=[HANDSHAKE_DONE, RPC_READY]),
    RPC_STARTING: State(require=[START], remove=RPC_GROUP),
    RPC_ACCEPTING: State(require=[START], remove=RPC_GROUP),
    RPC_READY: State(require=[START], remove=RPC_GROUP),
    CLIENT_CONNECTED: State(require=[RPC_READY]),
    METRIC_SYNC: State(multi=True),
    WEB_SOCKET_TUNNEL: State(),
})
SERVER_STATES: list[str] = [
    EXCEPTION, READY, RPC_STARTING, RPC_ACCEPTING, RPC_READY, CLIENT_CONNECTED, HANDSHAKE_DONE,
    METRIC_SYNC, WEB_SOCKET_TUNNEL, ERR_NETWORK_TIMEOUT, ERR_RPC, ERR_DELIVERY, HANDSHAKING,
    ERR_NETWORK, ERR_HANDLER_TIMEOUT, START, HEALTHCHECK, HEARTBEAT, ERR_ON_CLIENT,
]

# --- client ---

RETRYING_CALL = "RetryingCall"
CALL_RETRY_FAILED = "CallRetryFailed"
RETRYING_CONN = "RetryingConn"
CONN_RETRY_FAILED = "ConnRetryFailed"
SERVER_DELIVERING = "ServerDelivering"
SERVER_PAYLOAD = "ServerPayload"

ClientSchema: dict[str, State] = schema_merge(SharedSchema, ConnectedSchema, {
    ERR_NETWORK: State(require=[EXCEPTION], remove=[CONNECTING]),
    START: State(add=[CONNECTING], remove=[CONN_RETRY_FAILED]),
    READY: State(auto=True, require=[HANDSHAKE_DONE]),
    CONNECTED: State(require=[START], remove=[*CONNECTED_GROUP, RETRYING_CONN],
                     add=[HANDSHAKING]),
    HANDSHAKING: State(require=[START, CONNECTED], remove=HANDSHAKE_GROUP),
    HANDSHAKE_DONE: State(require=[START, CONNECTED], remove=HANDSHAKE_GROUP),
    RETRYING_CALL: State(require=[START]),
    CALL_RETRY_FAILED: State(remove=[RETRYING_CALL], add=[ERR_NETWORK, EXCEPTION]),
    RETRYING_CONN: State(require=[START]),
    CONN_RETRY_FAILED: State(remove=[START]),
    SERVER_DELIVERING: State(multi=True, require=[CONNECTED]),
    SERVER_PAYLOAD: State(multi=True, require=[CONNECTED]),
    METRIC_SYNC: State(multi=True),
})
CLIENT_STATES: list[str] = [
    EXCEPTION, RETRYING_CALL, CALL_RETRY_FAILED, RETRYING_CONN, CONN_RETRY_FAILED, READY,
    HANDSHAKE_DONE, SERVER_DELIVERING, SERVER_PAYLOAD, METRIC_SYNC, ERR_NETWORK_TIMEOUT, ERR_RPC,
    ERR_DELIVERY, HANDSHAKING, ERR_NETWORK, ERR_HANDLER_TIMEOUT, START, HEALTHCHECK, HEARTBEAT,
    ERR_ON_CLIENT, ERR_CONNECTING, CONNECTING, CONNECTED, DISCONNECTING, DISCONNECTED,
]

# --- mux ---

HAS_CLIENTS = "HasClients"
NEW_SERVER_ERR = "NewServerErr"

MuxSchema: dict[str, State] = schema_merge(BasicSchema, {
    EXCEPTION: State(multi=True, remove=[READY]),
    READY: State(require=[START]),
    CLIENT_CONNECTED: State(multi=True, require=[START]),
    HAS_CLIENTS: State(require=[START]),
    NEW_SERVER_ERR: State(),
})
MUX_STATES: list[str] = [
    EXCEPTION, READY, CLIENT_CONNECTED, HAS_CLIENTS, NEW_SERVER_ERR, ERR_NETWORK,
    ERR_HANDLER_TIMEOUT, START, HEALTHCHECK, HEARTBEAT,
]

# --- consumer (receives server payloads through a client) ---

ConsumerSchema: dict[str, State] = {SERVER_PAYLOAD: State(multi=True)}
CONSUMER_STATES: list[str] = [EXCEPTION, SERVER_PAYLOAD]

__all__ = [
    "CALL_RETRY_FAILED",
    "CLIENT_CONNECTED",
    "CLIENT_STATES",
    "CONNECTED",
    "CONNECTING",
    "CONN_RETRY_FAILED",
    "CONSUMER_STATES",
    "DISCONNECTED",
    "DISCONNECTING",
    "ERR_CONNECTING",
    "ERR_DELIVERY",
    "ERR_NETWORK_TIMEOUT",
    "ERR_ON_CLIENT",
    "ERR_RPC",
    "HANDSHAKE_DONE",
    "HANDSHAKE_GROUP",
    "HANDSHAKING",
    "HAS_CLIENTS",
    "METRIC_SYNC",
    "MUX_STATES",
    "NEW_SERVER_ERR",
    "RETRYING_CALL",
    "RETRYING_CONN",
    "RPC_ACCEPTING",
    "RPC_GROUP",
    "RPC_READY",
    "RPC_STARTING",
    "SERVER_DELIVERING",
    "SERVER_PAYLOAD",
    "SERVER_STATES",
    "STATE_SOURCE_STATES",
    "WEB_SOCKET_TUNNEL",
    "ClientSchema",
    "ConsumerSchema",
    "MuxSchema",
    "ServerSchema",
    "SharedSchema",
    "StateSourceSchema",
]
