"""Back / forward through the positions the user jumped between (`<` / `>`), like a browser.
UI-independent.

Every jump (home/end, `j`, jump by 50, a search, a source or caused link, another machine)
records where the user was and where they went; stepping by one does not. Going back first
remembers where the user is now, so forward returns there.

    h = History()
    h.jump(here=("m", 3, None), there=("m", 90, None))
    h.back(here=("m", 91, None))     # -> ("m", 3, None)
    h.forward(here=("m", 3, None))   # -> ("m", 91, None)
"""

from __future__ import annotations

from typing import NamedTuple

#: entries kept, at most (the oldest are dropped)
HISTORY_MAX = 100


class Position(NamedTuple):
    """A cursor position: machine key, transition number, step (None: the whole one)."""

    machine: str
    number: int | None
    step: int | None = None


class History:
    """A list of positions and a cursor into it."""

    def __init__(self, limit: int = HISTORY_MAX) -> None:
        self.limit = limit
        self.entries: list[Position] = []
        self.index = -1

    def jump(self, here: Position, there: Position) -> None:
        """The user jumps from `here` to `there` (forward entries are dropped)."""
        if here == there:
            return
        del self.entries[self.index + 1:]
        if self.entries:
            self.entries[-1] = here
        else:
            self.entries.append(here)
        self.entries.append(there)
        if len(self.entries) > self.limit:
            del self.entries[:len(self.entries) - self.limit]
        self.index = len(self.entries) - 1

    @property
    def can_back(self) -> bool:
        """True if there is an entry before the current one."""
        return self.index > 0

    @property
    def can_forward(self) -> bool:
        """True if there is an entry after the current one."""
        return 0 <= self.index < len(self.entries) - 1

    def back(self, here: Position) -> Position | None:
        """The previous position (None: none); `here` replaces the current entry."""
        if not self.can_back:
            return None
        self.entries[self.index] = here
        self.index -= 1
        return self.entries[self.index]

    def forward(self, here: Position) -> Position | None:
        """The next position (None: none); `here` replaces the current entry."""
        if not self.can_forward:
            return None
        self.entries[self.index] = here
        self.index += 1
        return self.entries[self.index]

    def forget(self, machine: str) -> None:
        """Drop the entries of a machine that is gone."""
        current = self.entries[self.index] if self.entries else None
        self.entries = [e for e in self.entries if e.machine != machine]
        self.index = self.entries.index(current) if current in self.entries else \
            len(self.entries) - 1


__all__ = ["HISTORY_MAX", "History", "Position"]
