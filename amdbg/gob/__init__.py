"""A small, strict Go `encoding/gob` codec: reads and writes self-describing gob streams.

`Decoder` / `decode` read a stream held in memory under explicit `Limits`; `Encoder` writes
values of types described by `WireType`s. Nothing is ever executed or looked up outside the
stream; every problem is a one-line `GobError`. The format and the mapping of am-dbg's
messages are described in docs/go-interop.md.
"""

from .decoder import Decoder, GobInterface, decode
from .encoder import Encoder, encode
from .errors import GobError
from .limits import DEFAULT_LIMITS, Limits
from .types import BUILTIN_TYPES, WireType

__all__ = ["BUILTIN_TYPES", "DEFAULT_LIMITS", "Decoder", "Encoder", "GobError", "GobInterface",
           "Limits", "WireType", "decode", "encode"]
