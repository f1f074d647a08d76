"""The views am-dbg users look for, as one part of the app: the matrix (`m`), rain (`r`), log
(`l`) and queue (`u`) views, shown in place of the detail pane, the state group (`G`) that
filters the state view, the matrix, the rain and the graph, and the tags bar (`#`; hidden at
the start, so that the first screen keeps its size).

`SideViews` is mixed into `ReplayApp`: the app composes `compose_side()` next to the detail
pane and `TagsBar` under the address bar, calls `show_side()` after every cursor move and
passes its machine graph through `group_graph()`. Only the view on screen is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import networkx as nx
from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget

from amnode.telemetry import RecordedMachine

from ..escape import printable
from .frame import Frame
from .matrix import columns
from .widgets.detail import TransitionDetail
from .widgets.log_pane import LogPane
from .widgets.matrix_view import MatrixView
from .widgets.queue_pane import QueueList, QueuePane
from .widgets.rain_view import RainView
from .widgets.state_view import StateView
from .widgets.tags_bar import TagsBar
from .widgets.transition_list import TransitionList

if TYPE_CHECKING:
    from .app import ReplayApp

#: view name -> widget id (and class)
SIDE_VIEWS: dict[str, tuple[str, type[Widget]]] = {
    "matrix": ("matrix", MatrixView),
    "rain": ("rain", RainView),
    "log": ("log", LogPane),
    "queue": ("queue", QueuePane),
}


class SideViews:
    """App mix-in: which side view is shown, the state group, and drawing them."""

    #: the side view shown instead of the detail pane (None: the detail pane)
    side: str | None = None
    #: the state group shown (None: every state)
    group: str | None = None
    _side_machine: RecordedMachine | None = None

    def compose_side(self) -> ComposeResult:
        """The side views, hidden until chosen."""
        for view_id, cls in SIDE_VIEWS.values():
            widget = cls(id=view_id)
            widget.display = False
            yield widget

    # ------------------------------------------------------------------ actions

    def action_side(self, view: str) -> None:
        """Show side view `view` instead of the detail pane (again: back to the detail)."""
        app = cast("ReplayApp", self)
        if view not in SIDE_VIEWS:
            raise ValueError(f"unknown view {view!r}")
        app.side = None if app.side == view else view
        focused = app.focused
        for name, (view_id, _) in SIDE_VIEWS.items():
            app.query_one(f"#{view_id}").display = name == app.side
        app.query_one(TransitionDetail).display = app.side is None
        if app.side is not None:
            app._side_machine = None  # load it afresh
            app.show_side()
            target = app.query_one(f"#{SIDE_VIEWS[app.side][0]}")
            (target.query_one(QueueList) if isinstance(target, QueuePane) else target).focus()
        else:
            app.refresh_views()  # the detail pane was not drawn meanwhile
            if focused is None or not _shown(focused):
                app.query_one(TransitionList).focus()

    def action_tags(self) -> None:
        """Show or hide the tags bar."""
        app = cast("ReplayApp", self)
        bar = app.query_one(TagsBar)
        bar.display = not bar.display
        app.show_side()

    def action_group(self) -> None:
        """Cycle the state group: all states, then each group of the machine."""
        app = cast("ReplayApp", self)
        machine = app.machine
        if machine is None or not machine.groups:
            app.group = None
            if machine is not None:
                app.notify("this machine has no state groups", severity="warning")
            return
        order = [g for g in machine.groups_order if g in machine.groups] or list(machine.groups)
        if app.group not in order:
            app.group = order[0]
        else:
            i = order.index(app.group) + 1
            app.group = order[i] if i < len(order) else None
        app.query_one(TagsBar).display = True  # it names the group
        app.refresh_views()

    # ------------------------------------------------------------------ drawing

    def group_states(self) -> list[int] | None:
        """State indexes of the chosen group in the selected machine (None: all states)."""
        app = cast("ReplayApp", self)
        machine = app.machine
        if machine is None or app.group is None or app.group not in machine.groups:
            return None
        return list(machine.groups[app.group])

    def group_graph(self, g: nx.DiGraph) -> nx.DiGraph:
        """The machine graph cut down to the chosen group's states."""
        app = cast("ReplayApp", self)
        idx = app.group_states()
        if idx is None or app.machine is None:
            return g
        names = app.machine.state_names
        keep = {names[i] for i in idx if i < len(names)}
        return g.subgraph([n for n in g.nodes if n in keep]).copy()

    def show_side(self) -> None:
        """Draw the tags bar, the group's states and the side view on screen."""
        app = cast("ReplayApp", self)
        machine = app.machine
        if machine is None:
            return
        if app.group is not None and app.group not in machine.groups:
            app.group = None
        bar = app.query_one(TagsBar)
        if bar.display:
            bar.show(machine, app._ancestors(machine), app.group)
        idx = app.group_states()
        if idx is not None and app.frame is not None:
            names = machine.state_names
            keep = {names[i] for i in idx if i < len(names)}
            states = app.query_one(StateView)
            states.show(Frame(app.frame.machine, app.frame.tx, app.frame.step,
                              tuple(r for r in app.frame.rows if r.name in keep)))
            title = Text.from_markup(states.border_title or "")
            title.append(f" · group {printable(app.group or '')}")
            states.border_title = title
            if app.state not in keep:
                app.state = states.selected
        if app.side is None:
            return
        cols = columns(machine.state_names, idx)
        view = app.query_one(f"#{SIDE_VIEWS[app.side][0]}")
        tl = app.timeline(machine)
        fresh = machine is not app._side_machine
        app._side_machine = machine
        if isinstance(view, MatrixView):
            view.show(app.tx, cols, app.step, app.state)
        elif isinstance(view, RainView):
            if fresh or view.timeline is not tl:
                view.load(machine, tl, app.cache, app.session.start_ns)
            view.show(app.number, cols, app.state, app.time_mode)
        elif isinstance(view, LogPane):
            view.show(machine, tl, app.cache, app.number, app.session.start_ns)
        elif isinstance(view, QueuePane):
            view.show(machine, app.tx, app.session.start_ns, app.time_mode)

    def _ancestors(self, machine: RecordedMachine) -> list[RecordedMachine]:
        app = cast("ReplayApp", self)
        out: list[RecordedMachine] = []
        seen = {machine.key}
        parent = app.session.parent(machine)
        while parent is not None and parent.key not in seen and len(out) < 16:
            out.append(parent)
            seen.add(parent.key)
            parent = app.session.parent(parent)
        return out


def _shown(widget: Widget) -> bool:
    """True when `widget` and all its ancestors are displayed."""
    node: Widget | None = widget
    while node is not None and isinstance(node, Widget):
        if not node.display:
            return False
        parent = node.parent
        node = parent if isinstance(parent, Widget) else None
    return True


__all__ = ["SIDE_VIEWS", "SideViews"]
