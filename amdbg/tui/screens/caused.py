"""The caused-transitions chooser (`c` when a transition caused several): pick one with the
arrows and enter; escape closes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...escape import printable


class CausedScreen(ModalScreen[tuple[str, int] | None]):
    """A list of `machine #number` entries; dismisses with the chosen (key, number)."""

    AUTO_FOCUS = "#caused-list"
    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self, targets: list[tuple[str, int]], note: str = "") -> None:
        super().__init__()
        self.targets = targets
        self.note = note

    def compose(self) -> ComposeResult:
        """The list in a box."""
        with Vertical(id="caused-box") as box:
            box.border_title = f"Caused {len(self.targets)} transitions"
            box.border_subtitle = "enter goes there · esc closes" + (
                f" · {self.note}" if self.note else "")
            yield OptionList(*[Option(Text(f"{printable(key)} #{number}"), id=str(i))
                               for i, (key, number) in enumerate(self.targets)],
                             id="caused-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Go to the chosen transition."""
        event.stop()
        self.dismiss(self.targets[event.option_index])

    def action_cancel(self) -> None:
        """Close without moving."""
        self.dismiss(None)


__all__ = ["CausedScreen"]
