"""The one error type readers raise for input they cannot use (missing, foreign, newer, garbage)."""

from __future__ import annotations


class RecordingError(Exception):
    """A recording (or one record of it) cannot be read; `str()` is always a single line.

    `path` names the file or directory and `offset` the byte position when one is known, so a CLI
    can print `str(err)` as is and exit non-zero.
    """

    def __init__(self, message: str, path: str = "", offset: int | None = None) -> None:
        message = " ".join(message.split())
        where = path
        if path and offset is not None:
            where = f"{path} @{offset}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.offset = offset
        self.reason = message


class NewerFormatError(RecordingError):
    """The recording was written with a newer major format version than this reader knows."""


__all__ = ["NewerFormatError", "RecordingError"]
