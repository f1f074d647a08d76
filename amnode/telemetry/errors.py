"""Errors of the telemetry package; all derive from `amnode.AmnodeError`.

Readers raise `RecordingError` for input they cannot use (missing, foreign, newer, garbage,
special files) and the lookup errors below for a machine or transition a recording does not
have; the recorder raises `RecorderError`. Lookup errors are also `KeyError` / `IndexError`,
and recorder errors `RuntimeError` / `FileExistsError`, so code written against the builtin
kinds keeps working.
"""

from __future__ import annotations

from amnode.machine.errors import AmnodeError


class RecordingError(AmnodeError):
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


class UnknownMachineError(AmnodeError, KeyError):
    """`Recording.machine(key)`: no machine with this key or id in the recording."""


class TransitionRangeError(AmnodeError, IndexError):
    """A transition number outside `1..len(machine)`."""


class RecorderError(AmnodeError):
    """The recorder cannot do what was asked."""


class RecorderClosedError(RecorderError, RuntimeError):
    """`attach()` on a recorder that was closed."""


class RecordingFileError(RecorderError, FileExistsError):
    """No new recording file could be created in the directory (every name was taken)."""


__all__ = ["NewerFormatError", "RecorderClosedError", "RecorderError", "RecordingError",
           "RecordingFileError", "TransitionRangeError", "UnknownMachineError"]
