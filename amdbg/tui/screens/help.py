"""The help dialog (`?`): every key, and what the marks in the panes mean."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import KEYS, PANE_KEYS

LEGEND: tuple[tuple[str, str], ...] = (
    ("● / ○", "state active / inactive (odd tick = active); red = Exception or Err*"),
    ("underlined", "called by the transition"),
    ("+  \u2212", "activated / deactivated by the transition (or by the steps so far)"),
    ("*", "a handler of the state ran"),
    ("!", "the state that canceled the transition"),
    ("A M", "Auto / Multi state"),
    ("req add rm aft", "relations: require, add, remove, after"),
    ("3/12 E2 ✓ ⌁", "machines: transitions so far / total, error transitions, "
                    "disposed, ended without disposal"),
    ("✓ ok  ✗ cancel", "transition accepted / canceled"),
    ("1 2 | c * .", "rain: active, active+touched, deactivated, called but canceled, "
                    "touched, nothing"),
    ("matrix", "rows: called, tick deltas, then relations into a state (bits: rel 1, handler "
               "2, activate 4, deactivate 8, passive 16, called 32, cancel 64)"),
)


def help_table() -> Table:
    """Keys and legend as one rich table."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    t.add_row(Text("Keys", style="bold underline"), "")
    for key in KEYS:
        t.add_row(key.shown, key.description)
    for shown, what in PANE_KEYS:
        t.add_row(shown, what)
    t.add_row("", "")
    t.add_row(Text("Marks", style="bold underline"), "")
    for shown, what in LEGEND:
        t.add_row(shown, what)
    return t


class HelpScreen(ModalScreen[None]):
    """A modal page; escape or ? closes it (q quits the app, as everywhere)."""

    AUTO_FOCUS = "#help-box"
    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("question_mark", "close", "close"),
        Binding("q", "app.quit", "quit"),
    ]

    def compose(self) -> ComposeResult:
        """The table in a scrollable box."""
        with VerticalScroll(id="help-box") as box:
            box.border_title = "amdbg replay: keys"
            box.border_subtitle = "esc / ? closes"
            yield Static(help_table(), id="help-text")

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)


__all__ = ["LEGEND", "HelpScreen", "help_table"]
