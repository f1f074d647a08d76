"""Draw a networkx graph in a terminal: layered rows of boxes joined by labelled, routed edges.

UI-independent (returns rich Text lines). Rows are `amdbg.graph.layers()` (require/add/parent
edges point down the page; remove/after edges may point up or sideways). An edge spanning
several rows passes through a one-cell gap in each row between them; the lines between two rows
form a channel where each edge that has to move sideways gets its own horizontal track, so edges
never run on top of each other horizontally. Each edge is labelled once with its relations
(`req`, `add`, `rm`, `aft`, ...) and coloured by the first one.

    drawing = draw_graph(g, highlight={"Paid"}, edges={("Paid", "Validated")})
    for line in drawing.lines: console.print(line)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from rich.text import Text

from ..escape import printable
from ..graph import RELATIONS, layers

#: relation -> (abbreviation, colour)
RELATION_STYLE: dict[str, tuple[str, str]] = {
    "require": ("req", "cyan"),
    "add": ("add", "green"),
    "remove": ("rm", "red"),
    "after": ("aft", "bright_black"),
    "parent": ("parent", "white"),  # the word the CLI uses for the same edge
    "mutates": ("mutates", "magenta"),
}
_DEFAULT_EDGE = ("", "blue")
_ORDER = (*RELATIONS, "parent")


def _relation_rank(relation: str) -> tuple[int, str]:
    """Schema relations first (require, add, remove, after), then parent, then by name."""
    return (_ORDER.index(relation), "") if relation in _ORDER else (len(_ORDER), relation)

_N, _E, _S, _W = 1, 2, 4, 8
_BOX = {
    _N | _S: "│", _E | _W: "─", _S | _E: "┌", _S | _W: "┐", _N | _E: "└", _N | _W: "┘",
    _N | _S | _E: "├", _N | _S | _W: "┤", _E | _W | _S: "┬", _E | _W | _N: "┴",
    _N | _E | _S | _W: "┼", _N: "│", _S: "│", _E: "─", _W: "─",
}
_GAP = 2


@dataclass
class Drawing:
    """A drawn graph: one Text per line, and where each node's box is (x, y, width)."""

    lines: list[Text]
    boxes: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Widest line, in cells."""
        return max((line.cell_len for line in self.lines), default=0)

    @property
    def height(self) -> int:
        """Number of lines."""
        return len(self.lines)

    def plain(self) -> str:
        """The drawing without styles (for tests and plain terminals)."""
        return "\n".join(line.plain.rstrip() for line in self.lines)


@dataclass
class _Item:
    """A node box or a one-cell pass-through of a long edge in one row."""

    key: Any
    width: int
    row: int
    x: int = 0
    order: float = 0.0


@dataclass
class _Edge:
    src: str
    dst: str
    relations: list[str]
    #: the chain of items from the upper end to the lower end (same-layer edges: 2 items)
    chain: list[_Item] = field(default_factory=list)
    #: True when the arrow points up (the target is the upper end)
    up: bool = False
    same_row: bool = False
    #: the same relations point back too (mutual remove): one line, arrows at both ends
    both: bool = False

    @property
    def label(self) -> str:
        return printable("/".join(RELATION_STYLE.get(r, (r, ""))[0] or r for r in self.relations))

    @property
    def colour(self) -> str:
        return RELATION_STYLE.get(self.relations[0], _DEFAULT_EDGE)[1]


def default_label(node: str, data: Mapping[str, Any]) -> str:
    """`Name`, with `*` when active, as drawn inside the box (control characters escaped:
    names come from the recording)."""
    return printable(str(node)) + ("*" if data.get("active") else "")


def default_style(node: str, data: Mapping[str, Any]) -> str:
    """Touched states on yellow, called ones underlined, active bold, missing dim."""
    parts = []
    if data.get("touched") or data.get("highlight"):
        parts.append("black on yellow")
    if data.get("called"):
        parts.append("underline")
    if data.get("active"):
        parts.append("bold")
    if data.get("missing"):
        parts.append("dim")
    if str(node) == "Exception" or str(node).startswith("Err"):
        parts.append("red" if not parts or "on yellow" not in parts[0] else "")
    return " ".join(p for p in parts if p)


def draw_graph(g: nx.DiGraph, *, edges: Collection[tuple[str, str]] = (),
               label: Callable[[str, Mapping[str, Any]], str] = default_label,
               style: Callable[[str, Mapping[str, Any]], str] = default_style) -> Drawing:
    """Lay out and draw `g`; edges in `edges` (src, dst) are drawn bold (e.g. the relations a
    transition's steps resolved)."""
    rows = layers(g)
    if not rows:
        return Drawing([Text("(no nodes)", style="dim")])
    row_of = {node: r for r, members in enumerate(rows) for node in members}
    items: list[list[_Item]] = [[] for _ in rows]
    node_item: dict[str, _Item] = {}
    for r, members in enumerate(rows):
        for i, node in enumerate(members):
            item = _Item(node, len(label(node, g.nodes[node])) + 2, r, order=i)
            items[r].append(item)
            node_item[node] = item

    drawn: list[_Edge] = []
    merged: set[tuple[str, str]] = set()
    for u, v, data in g.edges(data=True):
        if u == v or (u, v) in merged:
            continue
        rels = sorted(data.get("relations") or [data.get("relation", "")], key=_relation_rank)
        e = _Edge(u, v, rels)
        if g.has_edge(v, u):
            back = g.edges[v, u]
            if sorted(back.get("relations") or [back.get("relation", "")],
                      key=_relation_rank) == rels:
                e.both = True
                merged.add((v, u))
        ru, rv = row_of[u], row_of[v]
        if ru == rv:
            e.same_row = True
            e.chain = [node_item[u], node_item[v]]
        else:
            e.up = rv < ru
            top, bottom = (v, u) if e.up else (u, v)
            chain = [node_item[top]]
            for r in range(min(ru, rv) + 1, max(ru, rv)):
                dummy = _Item(("edge", len(drawn), r), 1, r, order=len(items[r]))
                items[r].append(dummy)
                chain.append(dummy)
            chain.append(node_item[bottom])
            e.chain = chain
        drawn.append(e)

    # wide enough for a separate port per edge end (2 cells apart)
    ends: dict[str, list[int]] = {}
    for e in drawn:
        for node, lower in ((e.src, e.up), (e.dst, not e.up)):
            pair = ends.setdefault(node, [0, 0])
            pair[0 if e.same_row or lower else 1] += 1
    for node, (down, up) in ends.items():
        item = node_item[node]
        item.width = max(item.width, 2 * max(down, up) + 1)
    _order(items, drawn)
    _place(items, drawn)
    return _render(g, items, drawn, set(edges), label, style)


def _neighbours(drawn: list[_Edge]) -> dict[int, list[_Item]]:
    """Item id -> items it is joined to in the adjacent rows."""
    out: dict[int, list[_Item]] = {}
    for e in drawn:
        if e.same_row:
            continue
        for a, b in zip(e.chain, e.chain[1:], strict=False):
            out.setdefault(id(a), []).append(b)
            out.setdefault(id(b), []).append(a)
    return out


def _order(items: list[list[_Item]], drawn: list[_Edge]) -> None:
    """Barycentre sweeps (down, up, down) to reduce crossings; deterministic."""
    near = _neighbours(drawn)
    sweeps = [range(1, len(items)), range(len(items) - 2, -1, -1), range(1, len(items))]
    for sweep, rows in enumerate(sweeps):
        for r in rows:
            other = r - 1 if sweep != 1 else r + 1
            for item in items[r]:
                linked = [n.order for n in near.get(id(item), ()) if n.row == other]
                if linked:
                    item.order = sum(linked) / len(linked)
            items[r].sort(key=lambda it: it.order)
            for i, item in enumerate(items[r]):
                item.order = i


def _place(items: list[list[_Item]], drawn: list[_Edge]) -> None:
    """x positions: each row left to right, an item near the centre of its upper neighbours."""
    near = _neighbours(drawn)
    for r, row in enumerate(items):
        cursor = 0
        for item in row:
            want = cursor
            upper = [n.x + n.width // 2 for n in near.get(id(item), ()) if n.row == r - 1]
            if upper:
                want = max(cursor, sum(upper) // len(upper) - item.width // 2)
            item.x = want
            cursor = item.x + item.width + _GAP


def _ports(item: _Item, others: list[int]) -> list[int]:
    """x of each edge end on `item`, spread over its width in the order of the other ends."""
    if item.width <= 2 or len(others) == 0:
        return [item.x + item.width // 2] * len(others)
    inner = list(range(item.x + 1, item.x + item.width - 1))
    order = sorted(range(len(others)), key=lambda i: others[i])
    out = [0] * len(others)
    n = len(others)
    for rank, i in enumerate(order):
        out[i] = inner[min(len(inner) - 1, (2 * rank + 1) * len(inner) // (2 * n))]
    return out


class _Grid:
    """Line cells with N/E/S/W bits and a style, then text written on top."""

    def __init__(self) -> None:
        self.bits: dict[tuple[int, int], int] = {}
        self.style: dict[tuple[int, int], str] = {}
        self.text: dict[tuple[int, int], tuple[str, str]] = {}

    def line(self, y1: int, x1: int, y2: int, x2: int, style: str) -> None:
        if x1 == x2:
            a, b = sorted((y1, y2))
            for y in range(a, b + 1):
                bits = (_N if y > a else 0) | (_S if y < b else 0)
                self._set(y, x1, bits or _N | _S, style)
        else:
            a, b = sorted((x1, x2))
            for x in range(a, b + 1):
                bits = (_W if x > a else 0) | (_E if x < b else 0)
                self._set(y1, x, bits, style)

    def _set(self, y: int, x: int, bits: int, style: str) -> None:
        self.bits[y, x] = self.bits.get((y, x), 0) | bits
        self.style[y, x] = style

    def put(self, y: int, x: int, text: str, style: str) -> None:
        for i, ch in enumerate(text):
            self.text[y, x + i] = (ch, style)

    def free(self, y: int, x: int, length: int) -> bool:
        return all((y, x + i) not in self.bits and (y, x + i) not in self.text
                   for i in range(length))

    def lines(self, height: int) -> list[Text]:
        width = 1 + max([x for _, x in [*self.bits, *self.text]], default=0)
        out = []
        for y in range(height):
            line = Text(no_wrap=True)
            for x in range(width):
                if (y, x) in self.text:
                    ch, st = self.text[y, x]
                elif (y, x) in self.bits:
                    ch, st = _BOX.get(self.bits[y, x], "┼"), self.style[y, x]
                else:
                    ch, st = " ", ""
                line.append(ch, st or None)
            line.rstrip()
            out.append(line)
        return out


def _render(g: nx.DiGraph, items: list[list[_Item]], drawn: list[_Edge],
            bold: set[tuple[str, str]], label: Callable[[str, Mapping[str, Any]], str],
            style: Callable[[str, Mapping[str, Any]], str]) -> Drawing:
    # segments per channel: (upper item, lower item, edge, index of the segment in the chain)
    down_ends: dict[int, list[tuple[_Edge, int, int]]] = {}  # id(item) -> (edge, seg, other x)
    up_ends: dict[int, list[tuple[_Edge, int, int]]] = {}
    for e in drawn:
        if e.same_row:
            a, b = e.chain
            down_ends.setdefault(id(a), []).append((e, -1, b.x))
            down_ends.setdefault(id(b), []).append((e, -2, a.x))
            continue
        for s, (a, b) in enumerate(zip(e.chain, e.chain[1:], strict=False)):
            down_ends.setdefault(id(a), []).append((e, s, b.x + b.width // 2))
            up_ends.setdefault(id(b), []).append((e, s, a.x + a.width // 2))
    port: dict[tuple[int, int, int], int] = {}  # (edge id, seg, end 0=upper 1=lower) -> x
    for row in items:
        for item in row:
            for ends, which in ((down_ends.get(id(item), []), 0), (up_ends.get(id(item), []), 1)):
                xs = _ports(item, [other for _, _, other in ends])
                for (e, s, _), x in zip(ends, xs, strict=True):
                    if s == -2:
                        port[id(e), -1, 1] = x
                    else:
                        port[id(e), s, which] = x

    # channel r lies below row r; collect its segments
    channels: list[list[tuple[_Edge, int, int, int]]] = [[] for _ in items]  # (edge, x1, x2, s)
    for e in drawn:
        if e.same_row:
            channels[e.chain[0].row].append((e, port[id(e), -1, 0], port[id(e), -1, 1], -1))
            continue
        for s, (a, _) in enumerate(zip(e.chain, e.chain[1:], strict=False)):
            channels[a.row].append((e, port[id(e), s, 0], port[id(e), s, 1], s))

    # tracks per channel: greedy interval colouring of the horizontal spans
    track_of: dict[tuple[int, int], int] = {}
    heights: list[int] = []
    for r, segs in enumerate(channels):
        track_ends: list[int] = []  # where each track's last span ends
        for e, x1, x2, s in sorted(segs, key=lambda t: (min(t[1], t[2]), max(t[1], t[2]))):
            if x1 == x2:
                continue
            lo, hi = min(x1, x2), max(x1, x2)
            for t, end in enumerate(track_ends):
                if end < lo - 1:
                    track_ends[t] = hi
                    track_of[id(e), s] = t
                    break
            else:
                track_ends.append(hi)
                track_of[id(e), s] = len(track_ends) - 1
        if not segs:
            heights.append(0 if r == len(items) - 1 else 1)
        else:
            heights.append(max(len(track_ends), 1) + 2)

    row_y: list[int] = []
    y = 0
    for r in range(len(items)):
        row_y.append(y)
        y += 1 + heights[r]
    height = y

    grid = _Grid()
    # edge, track y (-1: none), x1, x2, x of its vertical part, channel top and bottom
    labels: list[tuple[_Edge, int, int, int, int, int, int]] = []
    ty: int | None  # the track an edge runs on in its channel (None: straight down)
    for r, segs in enumerate(channels):
        top = row_y[r] + 1
        bottom = top + heights[r] - 1
        for e, x1, x2, s in segs:
            st = e.colour + (" bold" if (e.src, e.dst) in bold or (e.dst, e.src) in bold
                             else "")
            if s == -1:  # same row: down from x1, along a track, back up to x2
                ty = top + 1 + track_of[id(e), s]
                grid.line(top, x1, ty, x1, st)
                grid.line(ty, x1, ty, x2, st)
                grid.line(ty, x2, top, x2, st)
                grid.put(top, x2, "▲", st)
                if e.both:
                    grid.put(top, x1, "▲", st)
                labels.append((e, ty, x1, x2, x1, top, bottom))
                continue
            if x1 == x2:
                grid.line(top, x1, bottom, x1, st)
                ty = None
            else:
                ty = top + 1 + track_of[id(e), s]
                grid.line(top, x1, ty, x1, st)
                grid.line(ty, x1, ty, x2, st)
                grid.line(ty, x2, bottom, x2, st)
            last = s == len(e.chain) - 2
            if last and (not e.up or e.both):
                grid.put(bottom, x2, "▼", st)
            if s == 0 and (e.up or e.both):
                grid.put(top, x1, "▲", st)
            if (s == 0 and not e.up) or (last and e.up):
                labels.append((e, ty if ty is not None else -1, x1, x2,
                               x1 if not e.up else x2, top, bottom))
        # long edges pass through the next row
        for e, _, x2, s in segs:
            if s >= 0 and s < len(e.chain) - 2:
                st = e.colour + (" bold" if (e.src, e.dst) in bold else "")
                grid.line(row_y[r + 1], x2, row_y[r + 1], x2, st)

    # node boxes
    boxes: dict[str, tuple[int, int, int]] = {}
    for r, row in enumerate(items):
        for item in row:
            if isinstance(item.key, tuple):
                continue
            node = item.key
            data = g.nodes[node]
            text = label(node, data)
            pad = item.width - 2 - len(text)
            grid.put(row_y[r], item.x, "[", "bright_black")
            grid.put(row_y[r], item.x + 1, " " * (pad // 2) + text + " " * (pad - pad // 2),
                     style(node, data))
            grid.put(row_y[r], item.x + item.width - 1, "]", "bright_black")
            boxes[node] = (item.x, row_y[r], item.width)

    # labels: on the track when it is long enough, else beside the vertical part
    unlabelled: list[Text] = []
    for e, ty, x1, x2, vx, ctop, cbottom in labels:
        text = e.label
        st = e.colour + (" bold" if (e.src, e.dst) in bold else "")
        placed = False
        if ty >= 0 and abs(x2 - x1) - 1 >= len(text) + 2:
            start = min(x1, x2) + 1 + (abs(x2 - x1) - 1 - len(text)) // 2
            for i, ch in enumerate(text):
                grid.text[ty, start + i] = (ch, st)
            placed = True
        if not placed:
            for yy in range(ctop, cbottom + 1):
                if grid.free(yy, vx + 1, len(text) + 2):
                    grid.put(yy, vx + 1, text, st)
                    placed = True
                    break
                start = vx - len(text)
                if start >= 1 and grid.free(yy, start - 1, len(text) + 1):
                    grid.put(yy, start, text, st)
                    placed = True
                    break
        if not placed:  # across its own vertical line: ─req─ style, `│` hidden under it
            start = max(vx - len(text) // 2, 0)
            for yy in range(ctop + 1, cbottom):
                cells = [(yy, x) for x in range(start - 1, start + len(text) + 1) if x != vx]
                if all(c not in grid.bits and c not in grid.text for c in cells) and \
                        grid.bits.get((yy, vx)) == _N | _S:
                    grid.put(yy, start, text, st)
                    placed = True
                    break
        if not placed:
            unlabelled.append(Text.assemble((f"{printable(e.src)} ", ""),
                                            (f"──{text}──▶", e.colour),
                                            (f" {printable(e.dst)}", "")))
    lines = grid.lines(height)
    if unlabelled:
        lines.append(Text())
        lines.append(Text("edges without room for a label:", style="dim"))
        lines.extend(Text("  ") + t for t in unlabelled)
    return Drawing(lines, boxes)


def legend(relations: Collection[str]) -> Text:
    """`req require  add add  rm remove ...` for the relations present, in their colours."""
    text = Text()
    for rel in sorted(set(relations), key=_relation_rank):
        abbr, colour = RELATION_STYLE.get(rel, (rel, _DEFAULT_EDGE[1]))
        if text:
            text.append("  ")
        text.append(f"──{abbr}──▶", style=colour)
        text.append(f" {rel}", style="dim")
    return text


def edge_relations(g: nx.DiGraph) -> set[str]:
    """Every relation name used on an edge of `g`."""
    out: set[str] = set()
    for _, _, data in g.edges(data=True):
        out.update(data.get("relations") or [data.get("relation", "")])
    return out


__all__ = ["RELATION_STYLE", "Drawing", "default_label", "default_style", "draw_graph",
           "edge_relations", "legend"]
