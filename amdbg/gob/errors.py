"""The one error the gob codec raises: a one-line message naming where the input went wrong."""

from __future__ import annotations

from ..errors import DbgError


class GobError(DbgError):
    """Malformed, hostile or unsupported gob input (or a value the encoder cannot write).

    `offset` is the byte position in the decompressed stream where the problem was found
    (-1 when not tied to a position); `path` names the type and field being read, e.g.
    `Exportable.MsgTxs[12].Steps[3].Type`.
    """

    def __init__(self, message: str, *, offset: int = -1, path: str = "") -> None:
        self.reason = message
        self.offset = offset
        self.path = path
        where = []
        if path:
            where.append(f"in {path}")
        if offset >= 0:
            where.append(f"at byte {offset}")
        super().__init__(f"gob: {message}" + (f" ({', '.join(where)})" if where else ""))


__all__ = ["GobError"]
