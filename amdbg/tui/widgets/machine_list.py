"""The machine list: machines as a parent/child tree with how many of their transitions had
happened at the cursor's wall time, error and finished/disconnected marks; `/` searches as
you type and enter selects the first match. In a live session each machine is marked
connected (`●`) or disconnected (`⊘`: its process exited or its connection was lost), and
the first machine of each process names the process (`pid 123`)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Tree
from textual.widgets.tree import TreeNode

from amnode.telemetry import RecordedMachine

from ...escape import printable
from ...session import MachineNode, Session
from ..messages import MachineChosen

#: above this many machines the labels show totals only (no per-step recount)
LIVE_LABELS_MAX = 300


class MachineTree(Tree[str], inherit_bindings=False):
    """The tree itself: up/down move, enter or a click selects (no expand/collapse keys, so
    the app's left/right/space stay transition keys)."""

    BINDINGS = [
        Binding("up", "cursor_up", "up", show=False),
        Binding("down", "cursor_down", "down", show=False),
        Binding("enter", "select_cursor", "select", show=False),
    ]


class SearchInput(Input):
    """A search box that can only take the focus while it is shown: a hidden box must never
    swallow the app's keys (closing a dialog would otherwise focus it)."""

    def allow_focus(self) -> bool:
        """Focusable only while displayed."""
        return bool(self.display) and super().allow_focus()


class MachineList(Vertical):
    """Search box (hidden until `/`) above the machine tree."""

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.selected: str | None = None
        self.wall_ns: int | None = None
        self._tree_nodes: dict[str, TreeNode[str]] = {}
        self._machines: dict[str, RecordedMachine] = {m.key: m for m in session.machines}
        self.matches: list[str] = []
        self._shown: dict[str, tuple[bool, int, bool, bool, bool | None, int]] = {}
        #: keys of the first machine of each process (labelled with the process; live only)
        self._process_roots: set[str] = set()
        #: shown only for a search (the narrow layout hides the list): hidden again after
        self.peek = False

    def compose(self) -> ComposeResult:
        """The search input and the tree."""
        yield SearchInput(placeholder="machine id (enter selects, esc closes)",
                          id="machine-search")
        tree = MachineTree("machines", id="machine-tree")
        tree.show_root = False
        tree.auto_expand = False
        tree.guide_depth = 2
        yield tree

    def on_mount(self) -> None:
        """Build the tree; labels are refreshed as the cursor moves."""
        self.build()

    def build(self) -> None:
        """(Re)build the tree from the session's machines (again when a live session gets
        new ones), keeping the cursor on the selected machine."""
        tree = self.query_one(MachineTree)
        session = self.session
        self.border_title = f"Machines {len(session.machines)}"
        self._machines = {m.key: m for m in session.machines}
        self._process_roots = set()
        if session.live is not None:
            for m in session.machines:
                parent = session.parent(m)
                if parent is None or parent.process is not m.process:
                    self._process_roots.add(m.key)
        tree.clear()
        self._tree_nodes = {}
        self._shown = {}

        def add(parent: TreeNode[str], node: MachineNode) -> None:
            key = node.machine.key
            child = parent.add(self._label(node.machine), data=key, expand=True,
                               allow_expand=bool(node.children))
            self._tree_nodes[key] = child
            for sub in node.children:
                add(child, sub)

        for root in session.machine_tree():
            add(tree.root, root)
        tree.root.expand()
        current = self._tree_nodes.get(self.selected or "")
        if current is not None and not self.searching:
            tree.move_cursor(current)

    # ------------------------------------------------------------------ labels

    def _facts(self, m: RecordedMachine) -> tuple[bool, int, bool, bool, bool | None, int]:
        """What a label shows: selected, transitions so far, error active, disposed,
        connected (None: not live) and the total."""
        now = self.wall_ns
        live = now is not None and len(self._machines) <= LIVE_LABELS_MAX
        total = len(m)
        done = m.number_at(now) if live and now is not None else total
        error_now = bool(live and done and m.summary(done).is_error)
        disposed = m.disposed and (not live or now is None or (m.disposed_ns or 0) <= now)
        return m.key == self.selected, done, error_now, disposed, m.live, total

    def _label(self, m: RecordedMachine) -> Text:
        selected, done, error_now, disposed, connected, total = self._facts(m)
        style = "bold reverse" if selected else ""
        text = Text(printable(m.key), style=style + (" red" if error_now else ""))
        text.append(f" {done}/{total}" if done != total else f" {total}",
                    style="dim" if not done else "")
        if m.error_count:
            text.append(f" E{m.error_count}", style="bold red" if error_now else "red")
        if disposed:
            text.append(" ✓", style="green")
        elif not m.disposed and connected is None:
            text.append(" ⌁", style="yellow")
        if m.unverified_records:
            text.append(f" ?{m.unverified_records}", style="bold yellow")
        if connected is not None and not m.disposed:
            text.append(" ●" if connected else " ⊘", style="green" if connected else "bold red")
        if m.key in self._process_roots:
            text.append(f" pid {m.process.pid}", style="dim")
            text.append(" connected" if connected else " disconnected",
                        style="green" if connected else "bold red")
        return text

    def refresh_labels(self, selected: str | None, wall_ns: int | None, *,
                       force: bool = False) -> None:
        """Re-label the machines whose label changed for the selection and the cursor's
        wall time (most do not change from one step to the next); `force` looks again
        anyway (a live session's machines grew)."""
        if (selected, wall_ns) == (self.selected, self.wall_ns) and not force:
            return
        self.selected, self.wall_ns = selected, wall_ns
        for key, node in self._tree_nodes.items():
            m = self._machines[key]
            facts = self._facts(m)
            if self._shown.get(key) != facts:
                self._shown[key] = facts
                node.set_label(self._label(m))
        current = self._tree_nodes.get(selected or "")
        tree = self.query_one(MachineTree)
        if current is not None and tree.cursor_node is not current and not self.searching:
            tree.move_cursor(current)

    # ------------------------------------------------------------------ selection

    @on(Tree.NodeSelected, "#machine-tree")
    def _chosen(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        if event.node.data:
            self.post_message(MachineChosen(event.node.data))

    # ------------------------------------------------------------------ search

    @property
    def searching(self) -> bool:
        """True while the search box is open."""
        return self.query_one("#machine-search", Input).display

    def open_search(self) -> None:
        """Show and focus the search box."""
        box = self.query_one("#machine-search", Input)
        box.value = ""
        box.display = True
        self.matches = []
        # at once, not after the queued keys: what is typed after `/` belongs to the box
        self.screen.set_focus(box)

    def close_search(self) -> None:
        """Hide the search box and give the focus back to the tree."""
        box = self.query_one("#machine-search", Input)
        box.display = False
        self.border_subtitle = ""
        if self.peek:
            self.peek = False
            self.display = False
            ensure = getattr(self.app, "ensure_focus", None)
            if ensure is not None:
                ensure()
        elif self.display:
            self.screen.set_focus(self.query_one(MachineTree))

    def find(self, text: str) -> list[str]:
        """Machine keys containing `text` (case-insensitive), in tree order; exact id first."""
        low = text.strip().lower()
        if not low:
            return []
        keys = list(self._tree_nodes)
        found = [k for k in keys if low in k.lower()]
        exact = [k for k in found if k.lower() == low]
        return exact + [k for k in found if k not in exact]

    @on(Input.Changed, "#machine-search")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.matches = self.find(event.value)
        self.border_subtitle = (f"{len(self.matches)} match" + ("" if len(self.matches) == 1
                                                                 else "es")
                                if event.value else "")
        if self.matches:
            self.query_one(MachineTree).move_cursor(self._tree_nodes[self.matches[0]])

    @on(Input.Submitted, "#machine-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        matches = self.find(event.value)
        self.close_search()
        if matches:
            self.post_message(MachineChosen(matches[0]))
        else:
            self.app.notify(printable(f"no machine matches {event.value!r}"),
                            severity="warning", markup=False)

    def key_escape(self) -> None:
        """Escape closes the search box."""
        if self.searching:
            self.close_search()


__all__ = ["LIVE_LABELS_MAX", "MachineList", "MachineTree", "SearchInput"]
