"""amnode.states: shared schemas (`BasicSchema`, `ConnectedSchema`, the aRPC schemas) and pipes.

Schemas are plain dicts of `am.State`; merge them with `am.schema_merge` and order them with the
matching `*_STATES` lists (`verify_states`).
"""

from . import pipes
from .basic import (
    BASIC_STATES,
    CONNECTED_GROUP,
    CONNECTED_STATES,
    DISPOSED_STATES,
    BasicSchema,
    ConnectedSchema,
    DisposedSchema,
)
from .rpc import (
    CLIENT_STATES,
    CONSUMER_STATES,
    HANDSHAKE_GROUP,
    MUX_STATES,
    RPC_GROUP,
    SERVER_STATES,
    STATE_SOURCE_STATES,
    ClientSchema,
    ConsumerSchema,
    MuxSchema,
    ServerSchema,
    SharedSchema,
    StateSourceSchema,
)

__all__ = [
    "BASIC_STATES", "CLIENT_STATES", "CONNECTED_GROUP", "CONNECTED_STATES", "CONSUMER_STATES",
    "DISPOSED_STATES", "HANDSHAKE_GROUP", "MUX_STATES", "RPC_GROUP", "SERVER_STATES",
    "STATE_SOURCE_STATES", "BasicSchema", "ClientSchema", "ConnectedSchema", "ConsumerSchema",
    "DisposedSchema", "MuxSchema", "ServerSchema", "SharedSchema", "StateSourceSchema", "pipes",
]
