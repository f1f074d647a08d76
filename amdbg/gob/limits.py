"""Size limits of the gob decoder: what one stream may cost, checked while reading it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound the decoder enforces; a stream beyond one fails with a GobError naming it.

    The defaults are far above the largest real am-dbg export seen (26 MB of gob, 2.7 MB
    compressed) and far below what would exhaust memory on a developer machine.
    """

    #: bytes of one gob message (Go's own decoder allows 1 GiB)
    max_message: int = 256 * 1024 * 1024
    #: elements of one slice, array or map
    max_elements: int = 10_000_000
    #: bytes of one string or byte slice
    max_string: int = 16 * 1024 * 1024
    #: type definitions in one stream
    max_types: int = 10_000
    #: fields of one struct type
    max_fields: int = 1_000
    #: nesting depth of values (structs, slices, maps, interfaces inside each other)
    max_depth: int = 64
    #: elements, map entries and struct fields decoded in the whole stream (bounds memory)
    max_items: int = 60_000_000
    #: bytes of all strings and byte slices decoded in the whole stream
    max_total_bytes: int = 1024 * 1024 * 1024


DEFAULT_LIMITS = Limits()

__all__ = ["DEFAULT_LIMITS", "Limits"]
