"""The top bar: the cursor's mach:// address, position, step, time and play state."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ...escape import printable


class AddressBar(Widget):
    """One line: `▶ mach://order-1002/1a2b… · #7/12 · step 3/9 · +0.002190s · t14`.

    A plain widget redrawn in place (a Static would re-lay out the screen on every update).
    """

    text = Text()

    def render(self) -> Text:
        """The bar's text."""
        return self.text

    def update(self, text: Text | str) -> None:
        """Replace the text and redraw this line only."""
        self.text = text if isinstance(text, Text) else Text(text)
        self.refresh()

    def show(self, *, url: str, number: int | None, total: int, step: int | None,
             steps: int, at: str, time_sum: int | None, playing: bool, note: str = "",
             unverified: bool = False, following: bool = False) -> None:
        """Redraw the bar (`note` may quote the recording: it is escaped); `following`: a live
        session keeps the newest transition selected (as the live status line says)."""
        text = Text()
        if following:
            text.append("● following ", style="bold green")
        else:
            text.append("▶ playing " if playing else "❚❚ paused ", style="bold green" if playing
                        else "dim")
        text.append(printable(url) or "no transition", style="bold cyan")
        text.append(f"   #{number if number is not None else '-'}/{total}", style="bold")
        if step is not None:
            text.append(f"   step {step}/{steps}", style="bold yellow")
        if at:
            text.append(f"   {at}", style="dim")
        if time_sum is not None:
            text.append(f"   t{time_sum}", style="dim")
        if unverified:
            text.append("   UNVERIFIED", style="bold yellow reverse")
        if note:
            text.append(f"   {printable(note)}", style="yellow")
        self.update(text)


__all__ = ["AddressBar"]
