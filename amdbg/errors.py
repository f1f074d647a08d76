"""Errors the debugger reports to its user: each one is a single line, no traceback needed."""

from __future__ import annotations

from collections.abc import Sequence


class DbgError(Exception):
    """A problem the user can fix (bad input, bad selection); `str()` is always one line."""

    #: process exit status the command line uses for this error
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class UsageError(DbgError):
    """The command line itself is wrong (unknown option, conflicting arguments)."""

    exit_code = 2


class SelectionError(DbgError):
    """A machine, transition or state that the recording does not have."""


class AmbiguousMachineError(SelectionError):
    """A machine id part that matches several machines; `candidates` holds their keys."""

    #: how many candidates the message lists before "... and N more"
    SHOWN = 10

    def __init__(self, part: str, candidates: Sequence[str]) -> None:
        self.part = part
        self.candidates = list(candidates)
        shown = ", ".join(self.candidates[:self.SHOWN])
        more = len(self.candidates) - self.SHOWN
        if more > 0:
            shown += f", ... and {more} more"
        super().__init__(f"machine {part!r} is ambiguous, {len(self.candidates)} machines "
                         f"match: {shown} (give a longer part or the full id)")


__all__ = ["AmbiguousMachineError", "DbgError", "SelectionError", "UsageError"]
