"""The filter dialog (`f`): which kinds of transitions to hide, with how many there are."""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from ..timeline import FILTER_HELP, FILTERS

#: the mark in a ticked box (an unticked box is blank)
TICKED = "X"


class FilterList(SelectionList[str]):
    """A checklist whose boxes read `X` when ticked and blank when not: tick and no tick
    differ without colour (a monochrome terminal, a colour-blind user)."""

    def render_line(self, y: int) -> Strip:
        """The list's line with the box's mark set from the selection."""
        strip = super().render_line(y)
        segments = list(strip)
        index = int(self.scroll_offset.y) + y
        if len(segments) < 2 or len(segments[1].text) != 1 or \
                not 0 <= index < self.option_count:
            return strip
        selected = self.get_option_at_index(index).value in self.selected
        segments[1] = Segment(TICKED if selected else " ", segments[1].style)
        return Strip(segments, strip.cell_length)


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
            yield FilterList(*options, id="filter-list")
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


__all__ = ["FilterList", "FilterScreen"]
