"""amnode.rpc: aRPC, a state machine mirrored over the network (asyncio + msgpack).

`Server` exposes a machine to one client, `Mux` serves many clients on one port, `Client` keeps
`client.netmach`, a `NetworkMachine` whose reads are local and whose mutations run on the source
(they return awaitables: see `amnode.machine.protocols.RemoteMachine`). The wire protocol, its
limits and its guarantees are described in docs/arpc-protocol.md.
"""

from .binds import bind_mux, bind_server, bind_server_multi, bind_server_rpc_ready
from .client import PREFIX_CLIENT, TAG_RPC_CLIENT, Client
from .connection import Connection
from .dedupe import MutationLog
from .errors import (
    CanceledError,
    ConnectionLostError,
    ErrorCode,
    InvalidParamsError,
    InvalidResponseError,
    ListenError,
    MirrorUnsupportedError,
    NoAccessError,
    NotConnectedError,
    ProtocolVersionError,
    ProtocolViolation,
    RpcConfigError,
    RpcError,
    RpcTimeoutError,
    TypedArgsError,
    UnknownMethodError,
    WrongDestinationError,
)
from .frames import MAX_FRAME, Codec, FrameReader
from .limits import CLIENT_LIMITS, SERVER_LIMITS, Limits
from .mux import TAG_RPC_MUX, Mux
from .netmach import PREFIX_NETMACH, TAG_NETMACH, MutationSender, NetworkMachine
from .protocol import PROTOCOL_VERSION, Method, Payload
from .retry import CALL_RETRY, CONN_RETRY, Backoff, RetryPolicy
from .server import TAG_RPC_SERVER, Server
from .typed_args import DEFAULT_REGISTRY, ArgsRegistry, RemoteError, register_args

__all__ = [
    "CALL_RETRY",
    "CLIENT_LIMITS",
    "CONN_RETRY",
    "DEFAULT_REGISTRY",
    "MAX_FRAME",
    "PREFIX_CLIENT",
    "PREFIX_NETMACH",
    "PROTOCOL_VERSION",
    "SERVER_LIMITS",
    "TAG_NETMACH",
    "TAG_RPC_CLIENT",
    "TAG_RPC_MUX",
    "TAG_RPC_SERVER",
    "ArgsRegistry",
    "Backoff",
    "CanceledError",
    "Client",
    "Codec",
    "Connection",
    "ConnectionLostError",
    "ErrorCode",
    "FrameReader",
    "InvalidParamsError",
    "InvalidResponseError",
    "Limits",
    "ListenError",
    "Method",
    "MirrorUnsupportedError",
    "MutationLog",
    "MutationSender",
    "Mux",
    "NetworkMachine",
    "NoAccessError",
    "NotConnectedError",
    "Payload",
    "ProtocolVersionError",
    "ProtocolViolation",
    "RemoteError",
    "RetryPolicy",
    "RpcConfigError",
    "RpcError",
    "RpcTimeoutError",
    "Server",
    "TypedArgsError",
    "UnknownMethodError",
    "WrongDestinationError",
    "bind_mux",
    "bind_server",
    "bind_server_multi",
    "bind_server_rpc_ready",
    "register_args",
]
