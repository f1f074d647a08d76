"""The filter dialog (`f`): which kinds of transitions to hide, with how many there are."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from ..timeline import FILTER_HELP, FILTERS


class FilterScreen(ModalScreen[frozenset[str] | None]):
    """Tick the kinds to hide; enter or f applies, escape cancels; c/a/e/h toggle directly."""

    BINDINGS = [
        Binding("enter", "apply", "apply", priority=True),
        Binding("f", "apply", "apply"),
        Binding("escape", "cancel", "cancel"),
        Binding("q", "app.quit", "quit"),
        *[Binding(name[0], f"toggle_filter('{name}')", name, show=False) for name in FILTERS],
    ]

    def __init__(self, hidden: frozenset[str], counts: dict[str, int] | None) -> None:
        super().__init__()
        self.hidden = hidden
        self.counts = counts

    def compose(self) -> ComposeResult:
        """A checklist of the filters."""
        with Vertical(id="filter-box") as box:
            box.border_title = "Hide transitions"
            box.border_subtitle = "space/click toggles · enter applies · esc cancels"
            options = []
            for name in FILTERS:
                count = "…" if self.counts is None else str(self.counts[name])
                label = f"[{name[0]}] {name:<9} {count:>8}  {FILTER_HELP[name]}"
                options.append(Selection(Text(label), name, name in self.hidden))
            yield SelectionList[str](*options, id="filter-list")
            if self.counts is None:
                yield Static("counting... (filters apply when the count is done)",
                             classes="dim")

    def on_mount(self) -> None:
        """Focus the list."""
        self.query_one(SelectionList).focus()

    def action_toggle_filter(self, name: str) -> None:
        """Toggle filter `name`."""
        self.query_one(SelectionList).toggle(name)

    def action_apply(self) -> None:
        """Close, hiding the ticked kinds."""
        self.dismiss(frozenset(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        """Close without changes."""
        self.dismiss(None)


__all__ = ["FilterScreen"]
