"""The tags bar: the selected machine's tags, its ancestors' tags, and the state group (`G`).

One line under the address bar, e.g.
`#node-worker #kind:hash … ⇡ #node-supervisor   group: WorkStatus (4 of 22 states)`.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from amnode.telemetry import RecordedMachine

from ...escape import printable


class TagsBar(Widget):
    """A one-line widget redrawn in place."""

    text = Text()

    def render(self) -> Text:
        """The bar's text."""
        return self.text

    def show(self, machine: RecordedMachine | None, ancestors: list[RecordedMachine],
             group: str | None) -> None:
        """Tags of `machine`, then of each of its `ancestors` (nearest first), and the group
        (None: all states)."""
        text = Text()
        if machine is None:
            self.text = text
            self.refresh()
            return
        for tag in machine.tags:
            text.append(f"#{printable(tag)} ", style="bold cyan")
        if not machine.tags:
            text.append("no tags ", style="dim")
        for parent in ancestors:
            if parent.tags:
                text.append("⇡ ", style="dim")
                for tag in parent.tags:
                    text.append(f"#{printable(tag)} ", style="cyan")
        groups = machine.groups
        if groups:
            text.append("  group: ", style="dim")
            if group is None or group not in groups:
                text.append(f"all ({len(groups)} groups, G cycles)", style="bold")
            else:
                text.append(printable(group), style="bold magenta")
                text.append(f" ({len(groups[group])} of {len(machine.state_names)} states)",
                            style="dim")
        self.text = text
        self.refresh()


__all__ = ["TagsBar"]
