"""The TUI's own colours for the dark and the light theme (`--theme`, `T`): what Textual's
theme does not cover (cursor rows, the step being shown, active states). Named ANSI colours
in the panes follow Textual's ANSI palette of the theme; these are the truecolour ones.

    palette.use("light"); palette.current().cursor_focus   # "#b7c9ee"
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Palette:
    """Colours of one theme."""

    #: background of the cursor row when its list has the focus / when it does not
    cursor_focus: str
    cursor_blur: str
    #: background of the step shown in the detail pane
    step_here: str
    #: an active state's name, an active error state's name
    active: str
    active_error: str


DARK = Palette(cursor_focus="#34466b", cursor_blur="#2a2f3a", step_here="#34466b",
               active="bold yellow", active_error="bold red")
LIGHT = Palette(cursor_focus="#b7c9ee", cursor_blur="#dde3ee", step_here="#b7c9ee",
                active="bold #9a5b00", active_error="bold #c01c28")
PALETTES = {"dark": DARK, "light": LIGHT}
#: the Textual theme of each
TEXTUAL_THEMES = {"dark": "textual-dark", "light": "textual-light"}

_current = [DARK]


def use(name: str) -> Palette:
    """Make theme `name` ("dark" or "light") the current one."""
    _current[0] = PALETTES[name]
    return _current[0]


def current() -> Palette:
    """The colours of the current theme."""
    return _current[0]


__all__ = ["DARK", "LIGHT", "PALETTES", "TEXTUAL_THEMES", "Palette", "current", "use"]
