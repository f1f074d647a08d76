"""The graph pane: the selected machine's relation graph (states touched by the current
transition highlighted, the relations its steps resolved in bold) or the network of machines.
Drawn by `amdbg.tui.canvas`; scrolls both ways; clicking a box selects that state or machine."""

from __future__ import annotations

import networkx as nx
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...escape import printable, printable_segments
from ..canvas import Drawing, draw_graph, edge_relations, legend
from ..messages import MachineChosen, StateChosen


class GraphView(ScrollView, can_focus=True, inherit_bindings=False):
    """A drawn graph plus a legend line on top. Arrows scroll up and down, shift+arrows
    sideways: plain left/right stay the app's transition keys."""

    BINDINGS = [
        Binding("up", "scroll_up", "scroll up", show=False),
        Binding("down", "scroll_down", "scroll down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("shift+left", "scroll_left", "scroll left", show=False),
        Binding("shift+right", "scroll_right", "scroll right", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.drawing = Drawing([])
        self.kind = "machine"
        self.legend = Text()

    def show(self, g: nx.DiGraph, *, kind: str, title: str,
             bold_edges: set[tuple[str, str]] | None = None) -> None:
        """Draw `g` ("machine" graph of states or "network" of machines)."""
        self.kind = kind
        self.drawing = draw_graph(g, edges=bold_edges or set())
        self.legend = legend(edge_relations(g))
        if kind == "machine":
            self.legend.append("   ")
            self.legend.append(" touched ", style="black on yellow")
            self.legend.append(" ")
            self.legend.append("called", style="underline")
            self.legend.append("  Name* active", style="dim")
        self.border_title = Text(printable(title))  # a Text: never parsed as markup
        self.virtual_size = Size(self.drawing.width + 1, self.drawing.height + 2)
        self.refresh()

    @property
    def text(self) -> str:
        """The drawing as plain text (for tests)."""
        return self.legend.plain + "\n\n" + self.drawing.plain()

    def render_line(self, y: int) -> Strip:
        """Legend, a blank line, then the drawing, scrolled."""
        width = self.scrollable_content_region.width
        base = self.rich_style
        sx, sy = int(self.scroll_x), int(self.scroll_y)
        line_no = sy + y
        if line_no == 0:
            text = self.legend
        elif line_no == 1 or line_no - 2 >= self.drawing.height:
            return Strip.blank(width, base)
        else:
            text = self.drawing.lines[line_no - 2]
        segments = [Segment(s.text, base + s.style if s.style else base)  # escaped: a safety net
                    for s in printable_segments(text.render(self.app.console))
                    if s.text != "\n"]
        return Strip(segments).crop_extend(sx, sx + width, base)

    def on_click(self, event: events.Click) -> None:
        """A click on a box selects that state (machine graph) or machine (network)."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x = int(self.scroll_x) + offset.x
        y = int(self.scroll_y) + offset.y - 2
        for node, (bx, by, bw) in self.drawing.boxes.items():
            if by == y and bx <= x < bx + bw:
                event.stop()
                if self.kind == "machine":
                    self.post_message(StateChosen(node))
                else:
                    self.post_message(MachineChosen(node))
                return


__all__ = ["GraphView"]
