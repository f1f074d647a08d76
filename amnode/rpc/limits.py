"""Bounds on what one aRPC peer can make an endpoint buffer, decode or keep (docs/arpc-protocol.md
"Limits").

A frame is checked three times, each before the next step costs anything: its length against
the connection's absolute limit (before buffering), its envelope head against the limit of its
message kind (before buffering the body: a Ping never needs 16 MiB), and its decoded size
against a value budget (while decoding, which stops at the first value too many). A frame still
incomplete after `frame_timeout` closes its connection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from .errors import RpcConfigError
from .protocol import (
    MAX_HEARTBEAT,
    MUTATION_CALLS,
    MUTATION_NOTIFIES,
    REQUEST,
    RESPONSE,
    Envelope,
    Method,
)
from .typed_args import MAX_TYPED_DEPTH

#: Frames that may carry user data: mutations (to a server); everything from a server but
#: pings and goodbyes (to a client).
MAX_FRAME = 16 * 1024 * 1024
#: Any frame before a connection's valid Hello, and the Hello itself (to a server): a Hello
#: listing thousands of states fits; an unauthenticated peer cannot make a server buffer more.
MAX_HELLO_FRAME = 256 * 1024
#: Frames that never carry user data: Handshake, Sync, Args, Bye, Ping and replies to a server's
#: requests (to a server); Bye and Ping (to a client).
MAX_CONTROL_FRAME = 64 * 1024
#: Values (each array, map, map key and element counts one) one frame may decode into on a
#: server: a mutation's args of a quarter million values, at most ~30 MB of Python objects.
MAX_OBJECTS_SERVER = 1 << 18
#: The same on a client, which gets whole schemas (a Welcome of 65 535 states is ~600 000).
MAX_OBJECTS_CLIENT = 1 << 20
#: Seconds a started frame may take to arrive completely.
FRAME_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-connection bounds of an endpoint; see the module docstring."""

    max_frame: int = MAX_FRAME
    max_hello_frame: int = MAX_HELLO_FRAME
    max_control_frame: int = MAX_CONTROL_FRAME
    max_objects: int = MAX_OBJECTS_SERVER
    max_typed_depth: int = MAX_TYPED_DEPTH
    frame_timeout: float = FRAME_TIMEOUT
    #: a peer's announced heartbeat interval is clamped to this (its idle timeout is 3x)
    max_heartbeat: float = MAX_HEARTBEAT

    def __post_init__(self) -> None:
        for name in ("max_frame", "max_hello_frame", "max_control_frame", "max_objects",
                     "max_typed_depth"):
            if getattr(self, name) < 1:
                raise RpcConfigError(f"Limits.{name} must be at least 1")
        for name in ("frame_timeout", "max_heartbeat"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise RpcConfigError(f"Limits.{name} must be a positive number of seconds")

    def with_(self, **changes: float | int | None) -> Limits:
        """A copy with the given (non-None) fields changed."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self  # type: ignore[arg-type]


#: Defaults of a `Server` / `Mux` and of a `Client`.
SERVER_LIMITS = Limits()
CLIENT_LIMITS = Limits(max_objects=MAX_OBJECTS_CLIENT)

#: the limit in bytes of a frame with this envelope head (None: not an envelope)
FrameLimit = Callable[[Envelope | None], int]

_SERVER_MUTATIONS = frozenset(MUTATION_CALLS) | frozenset(MUTATION_NOTIFIES)
_CLIENT_DATA = frozenset({Method.SET_CLOCK, Method.SET_CLOCK_MANY, Method.SCHEMA_CHANGE,
                          Method.SENDING_PAYLOAD, Method.SEND_PAYLOAD})


def describe(env: Envelope | None) -> str:
    """What a frame is, for a log line: "ADD frame", "response", ..."""
    if env is None:
        return "frame"
    if env[0] == RESPONSE:
        return "response"
    try:
        return Method(env[2]).name + " frame"
    except ValueError:
        return f"method {env[2]} frame"


def server_frame_limit(limits: Limits) -> FrameLimit:
    """What a server accepts from a client, by message kind."""
    big, hello, small = limits.max_frame, limits.max_hello_frame, limits.max_control_frame

    def limit(env: Envelope | None) -> int:
        if env is None or env[0] == RESPONSE:
            return small
        method = env[2]
        if method in _SERVER_MUTATIONS:
            return big
        if method == Method.HELLO and env[0] == REQUEST:
            return hello
        return small

    return limit


def client_frame_limit(limits: Limits) -> FrameLimit:
    """What a client accepts from a server, by message kind."""
    big, small = limits.max_frame, limits.max_control_frame

    def limit(env: Envelope | None) -> int:
        if env is None:
            return small
        if env[0] == RESPONSE or env[2] in _CLIENT_DATA:
            return big
        return small

    return limit


__all__ = ["CLIENT_LIMITS", "FRAME_TIMEOUT", "MAX_CONTROL_FRAME", "MAX_FRAME", "MAX_HEARTBEAT",
           "MAX_HELLO_FRAME", "MAX_OBJECTS_CLIENT", "MAX_OBJECTS_SERVER", "SERVER_LIMITS",
           "FrameLimit", "Limits", "client_frame_limit", "describe", "server_frame_limit"]
