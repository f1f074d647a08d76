"""Generic building-block schemas for rpc and node (Go pkg/states: Basic, Connected, Disposed).

Each schema is a plain `dict[str, am.State]`; combine them with `am.schema_merge` (later wins per
state) and fix the order with the matching `*_STATES` list.
"""

from __future__ import annotations

from amnode.machine import State

# --- Basic ---

EXCEPTION = "Exception"
ERR_NETWORK = "ErrNetwork"
ERR_HANDLER_TIMEOUT = "ErrHandlerTimeout"
START = "Start"
READY = "Ready"
HEALTHCHECK = "Healthcheck"
HEARTBEAT = "Heartbeat"

#: Exception, network and handler-timeout errors, Start/Ready and health pulses (Go BasicSchema).
BasicSchema: dict[str, State] = {
    EXCEPTION: State(multi=True),
    ERR_NETWORK: State(multi=True, require=[EXCEPTION], add=[EXCEPTION]),
    ERR_HANDLER_TIMEOUT: State(multi=True, require=[EXCEPTION], add=[EXCEPTION]),
    START: State(),
    READY: State(require=[START]),
    HEALTHCHECK: State(multi=True),
    HEARTBEAT: State(),
}
BASIC_STATES: list[str] = [EXCEPTION, ERR_NETWORK, ERR_HANDLER_TIMEOUT, START, READY,
                           HEALTHCHECK, HEARTBEAT]

# --- Connected ---

ERR_CONNECTING = "ErrConnecting"
CONNECTING = "Connecting"
CONNECTED = "Connected"
DISCONNECTING = "Disconnecting"
DISCONNECTED = "Disconnected"

#: Mutually exclusive connection states (Go ConnectedGroups.Connected).
CONNECTED_GROUP: list[str] = [CONNECTING, CONNECTED, DISCONNECTING, DISCONNECTED]

#: A connection lifecycle; `Disconnected` auto-activates when no other group member is active.
ConnectedSchema: dict[str, State] = {
    ERR_CONNECTING: State(require=[EXCEPTION]),
    CONNECTING: State(require=[START], remove=CONNECTED_GROUP),
    CONNECTED: State(require=[START], remove=CONNECTED_GROUP),
    DISCONNECTING: State(remove=CONNECTED_GROUP),
    DISCONNECTED: State(auto=True, remove=CONNECTED_GROUP),
}
CONNECTED_STATES: list[str] = [ERR_CONNECTING, *CONNECTED_GROUP]

# --- Disposed ---

DISPOSING = "Disposing"
DISPOSED = "Disposed"

#: Two-phase disposal as states, for machines that clean up asynchronously (Go DisposedSchema).
DisposedSchema: dict[str, State] = {
    DISPOSING: State(remove=[DISPOSED]),
    DISPOSED: State(remove=[DISPOSING]),
}
DISPOSED_STATES: list[str] = [DISPOSING, DISPOSED]
