"""Pipes from aRPC machines to application states (Go BindServer*, BindMux).

They let a node-style machine follow a server or mux without knowing rpc's state names, e.g.
`bind_server(server.mach, worker, "PublicRpcReady", "ClientConnected")`.
"""

from __future__ import annotations

from typing import Any

from amnode.states import pipes
from amnode.states import rpc as ss

from .errors import RpcConfigError


def bind_server(source: Any, target: Any, rpc_ready: str, client_ready: str) -> str:
    """`RpcReady` <-> `rpc_ready` and `HandshakeDone` <-> `client_ready` (add/remove)."""
    if not rpc_ready or not client_ready:
        raise RpcConfigError("rpc_ready and client_ready must be set")
    return pipes.bind_handlers(source, {
        ss.RPC_READY + "State": pipes.pipe_add(target, rpc_ready),
        ss.RPC_READY + "End": pipes.pipe_remove(target, rpc_ready),
        ss.HANDSHAKE_DONE + "State": pipes.pipe_add(target, client_ready),
        ss.HANDSHAKE_DONE + "End": pipes.pipe_remove(target, client_ready),
    }, "bind-server")


def bind_server_multi(source: Any, target: Any, rpc_ready: str, client_conn: str,
                      client_disconn: str) -> str:
    """`RpcReady` <-> `rpc_ready`; a handshake adds `client_conn`, its end adds `client_disconn`
    (both usually Multi states)."""
    if not rpc_ready or not client_conn or not client_disconn:
        raise RpcConfigError("rpc_ready, client_conn and client_disconn must be set")
    return pipes.bind_handlers(source, {
        ss.RPC_READY + "State": pipes.pipe_add(target, rpc_ready),
        ss.RPC_READY + "End": pipes.pipe_remove(target, rpc_ready),
        ss.HANDSHAKE_DONE + "State": pipes.pipe_add(target, client_conn),
        ss.HANDSHAKE_DONE + "End": pipes.pipe_add(target, client_disconn),
    }, "bind-server-multi")


def bind_server_rpc_ready(source: Any, target: Any, rpc_ready: str) -> str:
    """Add `rpc_ready` (usually Multi) whenever the server starts listening."""
    return pipes.bind_add(source, target, ss.RPC_READY, rpc_ready)


def bind_mux(source: Any, target: Any, active: str, inactive: str | None = None) -> str:
    """Pipe the mux's `HasClients` to `active` (or add `inactive` when it ends)."""
    if not active:
        raise RpcConfigError("active state must be set")
    return pipes.bind(source, target, ss.HAS_CLIENTS, active, inactive)


__all__ = ["bind_mux", "bind_server", "bind_server_multi", "bind_server_rpc_ready"]
