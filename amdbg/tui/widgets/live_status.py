"""The live status line: follow mode, connections, the stream's rate, drops, recording."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ...escape import printable


class LiveStatus(Widget):
    """One line under the transition list while a live session runs, e.g.
    `● LIVE following · 3 connected · 1,204 tx/s · 8,311 transitions · 1.2 MB · dropped 0`.
    A plain widget redrawn in place."""

    text = Text()

    def render(self) -> Text:
        """The line's text."""
        return self.text

    def show(self, *, following: bool, connected: int, disconnected: int, rate: float,
             transitions: int, bytes_in: int, dropped: int, note: str = "",
             record: str = "") -> None:
        """Redraw the line (`note` and `record` may quote peers: they are escaped)."""
        text = Text()
        text.append(" ● LIVE " if connected else " ○ LIVE ", style="bold green reverse"
                    if connected else "bold red reverse")
        text.append("  following" if following else "  paused (end: follow)",
                    style="bold green" if following else "yellow")
        text.append(f"  ·  {connected} connected", style="green" if connected else "dim")
        if disconnected:
            text.append(f" · {disconnected} disconnected", style="bold red")
        text.append(f"  ·  {rate:,.0f} tx/s  ·  {transitions:,} transitions  ·  "
                    f"{_size(bytes_in)}")
        text.append(f"  ·  dropped {dropped:,}", style="bold red" if dropped else "dim")
        if record:
            text.append(f"  ·  recording to {printable(record)}", style="dim")
        if note:
            text.append(f"  ·  {printable(note)}", style="yellow")
        self.text = text
        self.refresh()


def _size(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


__all__ = ["LiveStatus"]
