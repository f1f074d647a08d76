"""`amdbg replay`: the Textual app. It owns the cursor (machine, transition, step, state) and
the filters, asks the session for data, and tells each pane what to show.

    app = ReplayApp(Session.open("rec/"), machine="order-1002", number=7)
    app.run()

Data is read lazily: the transition list renders only its visible rows, a big machine's filter
counts are computed a slice at a time between frames on the event loop (pausing while keys are
pressed), and causes found by scanning ("caused") are looked up in a worker thread after the
cursor rests, so stepping stays fast on recordings of millions of transitions.

Focus always lands on a visible pane (`ensure_focus` after view switches, layout changes
and dialogs); below NARROW_WIDTH columns the layout is narrow (no machine list unless asked
for). Jumps (home/end, `j`, alt+arrows, searches, source and caused links) are remembered
for `<` / `>` (`history`); the theme is dark or light (`palette`).

Live (`amdbg attach`, `amdbg listen`): the session's recording grows while the app runs. A
timer reads what arrived (`Session.refresh`) every LIVE_REFRESH seconds: new machines join
the tree, new transitions the lists, and in follow mode (on at the start; off after any move
of the cursor; `end` turns it back on) the newest transition of the selected machine is
selected. Machines are marked connected or disconnected; a status line shows the rate, the
connections and the transitions the processes had to drop because the debugger was slow.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from pathlib import Path

import networkx as nx
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Footer
from textual.worker import get_current_worker

from amnode.telemetry import RecordedMachine, RecordingError, TransitionRecord, mach_url

from ..errors import DbgError
from ..escape import printable
from ..live import connect
from ..session import FORK_MAX_SCAN, Selection, Session
from . import gc_idle, palette
from .cache import TxCache
from .frame import Frame, build_frame
from .history import History, Position
from .jump import JUMP_MAX_SCAN, find_touching, nearest
from .keys import PLAY_INTERVAL, bindings
from .messages import MachineChosen, StateChosen, StepChosen, TransitionChosen
from .screens.caused import CausedScreen
from .screens.filters import FilterScreen
from .screens.help import HelpScreen
from .side_views import SideViews
from .timefmt import next_mode, spans_days, when
from .timeline import SYNC_SCAN, Timeline
from .widgets.detail import TransitionDetail
from .widgets.graph_view import GraphView
from .widgets.header import AddressBar
from .widgets.live_status import LiveStatus
from .widgets.machine_list import MachineList, MachineTree
from .widgets.state_view import StateView
from .widgets.tags_bar import TagsBar
from .widgets.transition_list import TransitionList

#: seconds the cursor must rest before "caused" transitions are searched
FORKS_DELAY = 0.2
#: summaries counted per slice between frames (~5 ms), and the delay before the first one
SCAN_CHUNK = 2_000
SCAN_START = 0.05
#: above this many transitions the network view shows parent edges only (links need a scan)
NETWORK_LINKS_MAX = 200_000
#: counting waits this long after each key press
SCAN_PAUSE = 0.1
#: seconds between two looks at a live recording (its bytes are indexed as they arrive)
LIVE_REFRESH = 0.1
#: seconds of history the status line's rate is computed over
RATE_WINDOW = 2.0
#: below this many columns the layout is narrow (the machine list hidden, as in am-dbg)
NARROW_WIDTH = 100


class ReplayApp(SideViews, App[None]):
    """The debugger: machine list, state view, detail or graph, transition list."""

    CSS_PATH = "app.tcss"
    TITLE = "amdbg replay"
    BINDINGS = bindings()
    #: where the focus goes when a screen opens or comes back with nothing focused (never
    #: the first focusable widget: that may be a hidden search box)
    AUTO_FOCUS = "#transitions"

    def __init__(self, session: Session, *, machine: str | None = None,
                 number: int | None = None, step: int | None = None,
                 time_mode: str = "offset", attach: list[str] | None = None,
                 listen: str | None = None, theme: str = "dark") -> None:
        super().__init__()
        if theme not in palette.TEXTUAL_THEMES:
            raise ValueError(f"unknown theme {theme!r} (dark or light)")
        #: "dark" or "light" (`T` switches)
        self.theme_name = theme
        palette.use(theme)
        self.session = session
        #: the connections of a live session (None when replaying files)
        self.live = session.live
        self.attach_addrs = list(attach or [])
        self.listen_addr = listen
        #: the address listened on, once listening
        self.listening = ""
        #: follow mode: the newest transition stays selected as records arrive
        self.follow = self.live is not None
        #: the machine labels were drawn once: the first screen does not wait for them
        self._labels_deferred = False
        #: why the app ended early (a live target could not be reached), "" otherwise
        self.error = ""
        self.exit_status = 0
        self._rate: deque[tuple[float, int]] = deque()
        self._live_timer: Timer | None = None
        self.cache = TxCache()
        self.timelines: dict[str, Timeline] = {}
        self.hidden: frozenset[str] = frozenset()
        self.time_mode = time_mode
        self.machine: RecordedMachine | None = None
        self.number: int | None = None
        self.step: int | None = None
        self.state: str | None = None
        self.view = "panes"
        self.frame: Frame | None = None
        self.source_sel: Selection | None = None
        self.forks: list[Selection] | None = None
        self.forks_note = ""
        self._startup = (machine, number, step)
        self._play: Timer | None = None
        self._forks_timer: Timer | None = None
        self._scan_timer: Timer | None = None
        self._last_key = 0.0
        self._gc = gc_idle.IdleCollector(lambda: self._last_key)
        self._network: nx.DiGraph | None = None
        self.status = ""
        self.sub_title = printable(Path(session.path).name)
        #: the narrow layout (below NARROW_WIDTH columns) is on
        self.narrow = False
        #: positions jumped between (`<` / `>`)
        self.history = History()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        """Address bar; machines | (states + detail, or graph); transitions; footer."""
        yield AddressBar(id="address")
        yield TagsBar(id="tags")
        with Horizontal(id="main"):
            yield MachineList(self.session, id="machines")
            with ContentSwitcher(initial="panes", id="views"):
                with Horizontal(id="panes"):
                    yield StateView(id="states")
                    yield TransitionDetail(id="detail")
                    yield from self.compose_side()
                yield GraphView(id="graph")
        yield TransitionList(id="transitions")
        yield LiveStatus(id="live-status", classes="live" if self.live is not None else "")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        """Switch to the narrow layout below NARROW_WIDTH columns (as am-dbg does)."""
        self.set_narrow(event.size.width < NARROW_WIDTH)

    def set_narrow(self, narrow: bool) -> None:
        """Narrow layout: the machine list is hidden (`m` or `/` shows it), the panes share
        the width, the footer is compact."""
        if narrow == self.narrow:
            return
        self.narrow = narrow
        self.set_class(narrow, "-narrow")
        self.query_one(MachineList).display = not narrow
        self.query_one(Footer).compact = narrow
        self.ensure_focus()

    def action_machines(self) -> None:
        """Show or hide the machine list (hidden at first in the narrow layout)."""
        machines = self.query_one(MachineList)
        machines.display = not machines.display
        if machines.display:
            self.screen.set_focus(machines.query_one(MachineTree))
        else:
            if machines.searching:
                machines.close_search()
            self.ensure_focus()

    def on_mount(self) -> None:
        """Open at the start-up selection (or the first machine with transitions); a live
        session connects first and opens once machines arrive."""
        self.theme = palette.TEXTUAL_THEMES[self.theme_name]
        self._gc.start()  # full collections when the user rests, not during a key
        self.set_interval(gc_idle.CHECK, self._gc.tick)
        if self.live is not None:
            self.query_one(AddressBar).update(self._waiting_text())
            self.query_one(TransitionList).focus()
            self._connect()
            self._live_timer = self.set_interval(LIVE_REFRESH, self._live_tick)
            return
        self._open_startup()

    def _open_startup(self) -> bool:
        """Select the start-up machine and transition; False while there is none (live)."""
        key, number, step = self._startup
        if key and self.live is not None:
            found = self.session.match_machines(key)
            machine = found[0] if len(found) == 1 else None
        else:
            machine = self.session.recording.machine(key) if key else self._default_machine()
        if machine is None:
            if self.live is None:
                self.query_one(AddressBar).update("the recording holds no machines")
            return False
        if self.follow and len(machine):
            number = len(machine)
        if number is None and len(machine):
            number = 1
        self.goto(machine.key, number, step)
        self.query_one(TransitionList).focus()
        # what is loaded now lives until exit: keep the collector from re-scanning it
        # (full collections otherwise add tens of ms to random key presses)
        gc.freeze()
        if self.session.damaged and self.live is None:
            what = "ends with a torn record" if self.session.torn_tail_only else "is damaged"
            self.notify(printable(f"recording {what}: {self.session.damage_summary()}; "
                                  "showing the readable records (unverified ones marked)"),
                        severity="warning", timeout=8, markup=False)
        return True

    # ------------------------------------------------------------------ live

    async def on_unmount(self) -> None:
        """Close a live session's connections and record files."""
        self._gc.stop()
        if self._live_timer is not None:
            self._live_timer.stop()
        if self.live is not None:
            await self.live.close()

    def _waiting_text(self) -> str:
        if self.listen_addr is not None:
            where = self.listening or self.listen_addr
            return (f"listening on {where}: start a program with AMNODE_DBG_ADDR={where} "
                    "(its machines appear here)")
        return "attaching to " + ", ".join(self.attach_addrs) + "..."

    @work(group="live", exclusive=True)
    async def _connect(self) -> None:
        """Attach to every address and listen (a live session), on the app's loop."""
        assert self.live is not None
        try:
            self.listening = await connect(self.live, self.attach_addrs, self.listen_addr)
        except DbgError as err:
            self.error = str(err)
            self.exit_status = 1
            self.exit()
            return
        if self.machine is None:
            self.query_one(AddressBar).update(self._waiting_text())

    def _live_tick(self) -> None:
        """Take in what arrived: new machines, new transitions, connection changes."""
        live = self.live
        if live is None or not self.query(LiveStatus):
            return  # not live, or shutting down: a last tick may come after the panes went
        growth = self.session.refresh()
        now = time.monotonic()
        total = self.session.recording.transition_count
        rate = self._rate
        rate.append((now, total))
        while len(rate) > 2 and now - rate[0][0] > RATE_WINDOW:
            rate.popleft()
        machines = self.query_one(MachineList)
        if growth.new_machines:
            machines.build()
        for key in growth.grown:
            tl = self.timelines.get(key)
            if tl is not None:
                tl.grow()
        if self.machine is None:
            if not self._open_startup():
                self._show_status()
                return
        elif self.machine.key in growth.grown or growth.new_machines:
            tl = self.timelines[self.machine.key]
            if self.follow and tl.last() is not None and tl.last() != self.number:
                self.goto(self.machine.key, tl.last())
            else:
                tlist = self.query_one(TransitionList)
                tlist.reset()
                tlist.set_current(self.number)
                self._show_address()
        tx = self.tx if self.machine is not None else None
        machines.refresh_labels(self.machine.key if self.machine is not None else None,
                                tx.end_ns if tx is not None else None, force=True)
        self._show_status()

    def _show_status(self) -> None:
        live = self.live
        if live is None:
            return
        rate = self._rate
        per_s = 0.0
        if len(rate) >= 2 and rate[-1][0] > rate[0][0]:
            per_s = (rate[-1][1] - rate[0][1]) / (rate[-1][0] - rate[0][0])
        streams = self.session.recording.streams
        connected = sum(1 for f in streams if f.state == "growing")
        note = ""
        if not streams:
            note = self._waiting_text()
        record = str(live.record.dir) if live.record is not None else ""
        self.query_one(LiveStatus).show(
            following=self.follow, connected=connected,
            disconnected=len(streams) - connected, rate=per_s,
            transitions=self.session.recording.transition_count, bytes_in=live.bytes_in,
            dropped=live.dropped, note=note, record=record)

    def _manual(self) -> None:
        """The user moved the cursor: stop following the newest transition."""
        if self.follow:
            self.follow = False
            self._show_status()
            if self.machine is not None:
                self._show_address()

    def _default_machine(self) -> RecordedMachine | None:
        nodes = list(self.session.walk_tree())
        with_tx = [n.machine for n in nodes if len(n.machine)]
        if with_tx:
            return with_tx[0]
        return nodes[0].machine if nodes else None

    # ------------------------------------------------------------------ the cursor

    @property
    def tx(self) -> TransitionRecord | None:
        """The current transition, decoded (cached)."""
        if self.machine is None or self.number is None:
            return None
        return self.cache.get(self.machine, self.number)

    def timeline(self, machine: RecordedMachine) -> Timeline:
        """The machine's timeline with the current filters (scanned on first use)."""
        tl = self.timelines.get(machine.key)
        if tl is None:
            tl = Timeline(machine)
            self.timelines[machine.key] = tl
            tl.set_hidden(self.hidden)
            if tl.total <= SYNC_SCAN:
                tl.scan()
            else:
                self._scan(tl)
        return tl

    def goto(self, key: str, number: int | None, step: int | None = None) -> None:
        """Move the cursor to transition `number` of machine `key` (as of `step`)."""
        machine = self.session.recording.machine(key)
        changed = machine is not self.machine
        # a move makes old messages stale, and a running `j` search moot
        self.status = ""
        self.workers.cancel_group(self, "jump")
        self.machine = machine
        tl = self.timeline(machine)
        if number is not None:
            number = max(1, min(number, len(machine))) if len(machine) else None
        self.number = number
        self.step = step
        if changed:
            self.query_one(TransitionList).load(machine, tl, self.cache, self.session.start_ns)
            tlist = self.query_one(TransitionList)
            tlist.set_time_mode(self.time_mode)
            tlist.many_days = spans_days(machine.first_ns, machine.last_ns)
        self.refresh_views()

    @property
    def position(self) -> Position | None:
        """Where the cursor is (None before a machine is selected)."""
        if self.machine is None:
            return None
        return Position(self.machine.key, self.number, self.step)

    def jump(self, key: str, number: int | None, step: int | None = None) -> None:
        """`goto` that the back/forward history remembers (every jump, search, link)."""
        here = self.position
        if key != (self.machine.key if self.machine is not None else None):
            self.state = None
        self.goto(key, number, step)
        there = self.position
        if here is not None and there is not None:
            self.history.jump(here, there)

    def action_history(self, direction: int) -> None:
        """Back (-1) to where the last jump came from, or forward (1) again."""
        self._manual()
        here = self.position
        if here is None:
            return
        pos = self.history.back(here) if direction < 0 else self.history.forward(here)
        if pos is None:
            self.status = "no earlier jump to go back to" if direction < 0 else \
                "nothing to go forward to"
            self.bell()
            self._show_address()
            return
        if pos.machine != here.machine:
            self.state = None
        self.goto(pos.machine, pos.number, pos.step)
        self.status = f"{'back' if direction < 0 else 'forward'} " \
                      f"{self.history.index + 1}/{len(self.history.entries)}"
        self._show_address()

    def action_skip(self, rows: int) -> None:
        """JUMP_ROWS shown transitions forward or back (alt+arrows)."""
        self._manual()
        tl = self._timeline()
        if tl is None or self.number is None or self.machine is None:
            return
        target = tl.skip(self.number, rows)
        if target is None or target == self.number:
            self.bell()
            return
        self.jump(self.machine.key, target)

    def action_caused(self) -> None:
        """Go to a transition this one caused (a chooser when there are several)."""
        self._manual()
        if self.forks is None:
            self.status = "still looking for the transitions this one caused..."
            self._show_address()
            return
        targets = [(f.machine.key, f.number) for f in self.forks
                   if f.machine is not None and f.number is not None]
        if not targets:
            self.status = "this transition caused no recorded transition" + (
                f" {self.forks_note}" if self.forks_note else "")
            self.bell()
            self._show_address()
            return
        if len(targets) == 1:
            self.jump(*targets[0])
            return
        self.push_screen(CausedScreen(targets, self.forks_note), self._caused_chosen)

    def _caused_chosen(self, target: tuple[str, int] | None) -> None:
        self.ensure_focus()
        if target is not None:
            self.jump(*target)

    def action_copy(self) -> None:
        """Copy the current mach:// address to the clipboard (OSC 52). The text is the one
        the address bar shows, control characters escaped: never raw recording bytes."""
        tx = self.tx if self.machine is not None else None
        if self.machine is None:
            return
        url = tx.url if tx is not None else mach_url(self.machine.id)
        if tx is not None and self.step is not None:
            url += f"/{self.step}"
        text = printable(url)
        self.copy_to_clipboard(text)
        self.status = f"copied {text}" + ("" if text == url else " (escaped)")
        self._show_address()

    def action_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.set_theme("light" if self.theme_name == "dark" else "dark")

    def set_theme(self, name: str) -> None:
        """Use the "dark" or "light" theme (Textual's colours and the panes' own)."""
        palette.use(name)
        self.theme_name = name
        self.theme = palette.TEXTUAL_THEMES[name]
        if self.machine is not None:
            self.refresh_views()
        for widget in self.query("*"):
            widget.refresh()

    def refresh_views(self) -> None:
        """Tell every pane about the cursor."""
        machine = self.machine
        if machine is None:
            return
        try:
            tx = self.tx
        except RecordingError as err:  # a damaged record: say so, keep going
            self._show_unreadable(str(err))
            return
        if tx is not None and self.step is not None:
            self.step = max(0, min(self.step, len(tx.steps)))
        self.frame = build_frame(machine, tx, self.step)
        states = self.query_one(StateView)
        if self.state is not None:
            states.selected = self.state
        states.show(self.frame)
        self.state = states.selected
        self.source_sel = self.session.source(tx) if tx is not None and tx.source else None
        self.forks, self.forks_note = None, ""
        self._show_detail()
        self._schedule_forks()
        self.query_one(TransitionList).set_current(self.number)
        self._show_address()
        if self._labels_deferred:
            self._show_labels()
        else:  # the first screen: labels at the cursor's time scan every transition's time
            self._labels_deferred = True
            self.call_after_refresh(self._show_labels)
        if self.view != "panes":
            self._show_graph()
        self.show_side()

    def _show_labels(self) -> None:
        """Label the machines for the cursor's wall time (transitions so far, errors)."""
        if self.machine is None:
            return
        try:
            tx = self.tx
        except RecordingError:
            tx = None
        self.query_one(MachineList).refresh_labels(self.machine.key,
                                                   tx.end_ns if tx is not None else None)

    def _show_unreadable(self, error: str) -> None:
        assert self.machine is not None
        self.frame = build_frame(self.machine, None)
        self.query_one(StateView).show(self.frame)
        self.query_one(TransitionDetail).show_error(self.number, error)
        self.query_one(TransitionList).set_current(self.number)
        self.status = "unreadable record"
        self.query_one(AddressBar).show(
            url=mach_url(self.machine.id), number=self.number, total=len(self.machine),
            step=None, steps=0, at="", time_sum=None, playing=self.playing, note=self.status,
            following=self.follow)

    def _show_detail(self) -> None:
        assert self.machine is not None
        if not self.query_one(TransitionDetail).display:  # a side view is shown instead
            return
        self.query_one(TransitionDetail).show(
            self.tx, step=self.step, base_ns=self.session.start_ns, mode=self.time_mode,
            total=len(self.machine), source=self.source_sel, forks=self.forks,
            forks_note=self.forks_note)

    def _show_address(self) -> None:
        assert self.machine is not None
        tx = self.tx
        self.query_one(AddressBar).show(
            url=tx.url if tx is not None else mach_url(self.machine.id),
            number=self.number, total=len(self.machine), step=self.step,
            steps=len(tx.steps) if tx is not None else 0,
            at=when(tx.end_ns, self.session.start_ns, self.time_mode) if tx else "",
            time_sum=tx.time_sum if tx is not None else None,
            playing=self._play is not None, note=self.status,
            unverified=tx is not None and tx.unverified, following=self.follow)

    def _show_graph(self) -> None:
        assert self.machine is not None
        view = self.query_one(GraphView)
        if self.view == "graph":
            tx = self.tx  # from the cache: the graph decodes nothing itself
            g = self.group_graph(self.session.machine_graph(self.machine, self.number, tx=tx))
            if self.frame is not None and self.step is not None:
                # step mode: the same moment as the state view (ticks as of the step)
                rows = {r.name: r for r in self.frame.rows}
                for node in g.nodes:
                    row = rows.get(node)
                    g.nodes[node]["touched"] = row is not None and row.touched
                    g.nodes[node]["active"] = row is not None and row.active
                    g.nodes[node]["called"] = row is not None and row.called
            bold = set()
            if tx is not None:
                steps = tx.steps if self.step is None else tx.steps[:self.step]
                bold = {(s.from_state, s.to_state) for s in steps if s.type == "rel"}
            title = f"Relations of {self.machine.key}"
            if tx is not None:
                title += f" at #{tx.number}" + (f" step {self.step}" if self.step is not None
                                                else "")
            view.show(g, kind="machine", title=title, bold_edges=bold)
        else:
            links = self.session.recording.transition_count <= NETWORK_LINKS_MAX
            g = self._network
            note = ""
            if g is None:
                g = self.session.network_graph(links=False)  # parent edges: no scan
                if links:
                    note = " · finding mutates links..."
                    self._find_links()
            if not links:
                note = f" · no mutates links (over {NETWORK_LINKS_MAX:,} transitions)"
            g = g.copy()
            for node in g.nodes:
                g.nodes[node]["highlight"] = node == self.machine.key
            view.show(g, kind="network",
                      title=f"Network of machines (click one to select it){note}")

    @work(thread=True, exclusive=True, group="network")
    def _find_links(self) -> None:
        """Build the network with its mutates links (reads every transition) off the UI
        thread, once."""
        g = self.session.network_graph(links=True)
        self.call_from_thread(self._links_found, g)

    def _links_found(self, g: nx.DiGraph) -> None:
        self._network = g
        if self.view == "network":
            self._show_graph()

    # ------------------------------------------------------------------ background work

    def _schedule_forks(self) -> None:
        if self._forks_timer is not None:
            self._forks_timer.stop()
        tx = self.tx
        if tx is None:
            self.forks = []
            return
        self._forks_timer = self.set_timer(FORKS_DELAY, lambda: self._find_forks(tx))

    @work(thread=True, exclusive=True, group="forks")
    def _find_forks(self, tx: TransitionRecord) -> None:
        """Search the transitions this one caused, off the UI thread."""
        forks, complete = self.session.forks(tx, max_scan=FORK_MAX_SCAN)
        note = "" if complete else f"(searched the next {FORK_MAX_SCAN:,} transitions only)"
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._forks_found, tx, forks, note)

    def _forks_found(self, tx: TransitionRecord, forks: list[Selection], note: str) -> None:
        current = self.tx
        if current is None or current.id != tx.id or current.machine != tx.machine:
            return
        self.forks, self.forks_note = forks, note
        self._show_detail()

    @work(group="scan")
    async def _scan(self, tl: Timeline) -> None:
        """Count the filter kinds of a big machine a chunk at a time, between frames (not in
        a thread: a CPU-bound thread would hold the GIL and slow every key press)."""
        # let the first screen draw first (the first chunk may index every transition's
        # header: ~0.5 s on a million)
        drawn = asyncio.Event()
        self.call_after_refresh(drawn.set)
        await drawn.wait()
        await asyncio.sleep(SCAN_START)
        if self._scan_timer is None:
            self._scan_timer = self.set_interval(0.25, self._scan_progress)
        while not tl.scan_chunk(SCAN_CHUNK):
            # keys first: while the user is stepping, count only when idle
            idle = time.monotonic() - self._last_key
            await asyncio.sleep(SCAN_PAUSE if idle < SCAN_PAUSE else 0)
        self._scanned(tl)

    def _scan_progress(self) -> None:
        tlists = self.query(TransitionList)
        if not tlists:  # the timer fired while the app was closing
            return
        tlists.first().update_title()
        if all(t.ready for t in self.timelines.values()) and self._scan_timer is not None:
            self._scan_timer.stop()
            self._scan_timer = None

    def _scanned(self, tl: Timeline) -> None:
        tl.set_hidden(self.hidden)
        if self.machine is not None and tl.machine is self.machine:
            tlist = self.query_one(TransitionList)
            tlist.reset()
            tlist.set_current(self.number)

    # ------------------------------------------------------------------ messages

    def on_key(self) -> None:
        """Note the time of every key (background counting yields to typing)."""
        self._last_key = time.monotonic()

    @on(MachineChosen)
    def _machine_chosen(self, event: MachineChosen) -> None:
        self.select_machine(event.key)

    def select_machine(self, key: str) -> None:
        """Switch machines, keeping the wall-clock time: open the other machine at its
        transition nearest (by end time) to the current one."""
        machine = self.session.recording.machine(key)
        if machine is self.machine:
            return
        tx = self.tx
        number: int | None = 1 if len(machine) else None
        if self.follow and len(machine):
            number = len(machine)
        elif tx is not None and len(machine):
            number = nearest(machine, tx.end_ns)
        self.jump(machine.key, number)

    @on(TransitionChosen)
    def _transition_chosen(self, event: TransitionChosen) -> None:
        self._manual()
        if self.machine is None:
            return
        tl = self._timeline()
        far = self.number is None or tl is None or \
            abs(tl.row(event.number) - tl.row(self.number)) > 1
        # a click or a page far away is a jump; a step up or down is not
        (self.jump if far else self.goto)(self.machine.key, event.number)

    @on(StateChosen)
    def _state_chosen(self, event: StateChosen) -> None:
        self.state = event.name
        self.query_one(StateView).select(event.name)
        self.status = f"state {event.name} (j / J jump)"
        self._show_address()

    @on(StepChosen)
    def _step_chosen(self, event: StepChosen) -> None:
        self.action_goto_step(event.step)

    # ------------------------------------------------------------------ actions

    def _move(self, number: int | None, step: int | None = None) -> bool:
        if number is None or self.machine is None:
            return False
        self.goto(self.machine.key, number, step)
        return True

    def _timeline(self) -> Timeline | None:
        return self.timelines.get(self.machine.key) if self.machine is not None else None

    def action_next_tx(self) -> None:
        """Next visible transition."""
        self._manual()
        tl = self._timeline()
        if tl is None:
            return
        if self.number is None:
            self._move(tl.first())
        elif not self._move(tl.next(self.number)):
            self.bell()

    def action_prev_tx(self) -> None:
        """Previous visible transition."""
        self._manual()
        tl = self._timeline()
        if tl is None or self.number is None:
            return
        if not self._move(tl.prev(self.number)):
            self.bell()

    def action_first_tx(self) -> None:
        """First visible transition."""
        self._manual()
        tl = self._timeline()
        if tl is not None and self.machine is not None and tl.first() is not None:
            self.jump(self.machine.key, tl.first())

    def action_last_tx(self) -> None:
        """Last visible transition (live: and follow the newest from now on)."""
        if self.live is not None:
            self.follow = True
            self._show_status()
            if self.machine is not None:
                self._show_address()
        tl = self._timeline()
        if tl is not None and self.machine is not None and tl.last() is not None:
            self.jump(self.machine.key, tl.last())

    def action_next_step(self) -> None:
        """Next step; past the last one, step 0 of the next transition."""
        self._manual()
        tx = self.tx
        tl = self._timeline()
        if tx is None or tl is None:
            return
        if self.step is None:
            self._move(self.number, 0)
        elif self.step < len(tx.steps):
            self._move(self.number, self.step + 1)
        elif not self._move(tl.next(tx.number), 0):
            self.bell()

    def action_prev_step(self) -> None:
        """Previous step; before step 0, the last step of the previous transition."""
        self._manual()
        tx = self.tx
        tl = self._timeline()
        if tx is None or tl is None:
            return
        if self.step is None:
            self._move(self.number, max(len(tx.steps) - 1, 0))
        elif self.step > 0:
            self._move(self.number, self.step - 1)
        else:
            prev = tl.prev(tx.number)
            if prev is None:
                self.bell()
                return
            assert self.machine is not None
            self._move(prev, len(self.cache.get(self.machine, prev).steps))

    def action_goto_step(self, step: int) -> None:
        """Show the machine as of `step` of the current transition (a click on a step)."""
        self._manual()
        if self.number is not None:
            self._move(self.number, step)

    def action_goto(self, key: str, number: int) -> None:
        """Go to transition `number` of machine `key` (a click on a caused transition)."""
        self._manual()
        self.jump(key, number)

    def action_source(self) -> None:
        """Go to the transition that caused the current one."""
        self._manual()
        tx = self.tx
        if tx is None or tx.source is None:
            self.notify("this transition has no recorded source", severity="warning")
            return
        sel = self.source_sel
        if sel is None or sel.machine is None or sel.number is None:
            self.notify(printable(f"source {tx.source} is not in this recording"),
                        severity="warning", markup=False)
            return
        self.jump(sel.machine.key, sel.number)

    def action_play(self) -> None:
        """Start or stop playing (one transition every PLAY_INTERVAL seconds)."""
        self._manual()
        if self._play is not None:
            self._play.stop()
            self._play = None
        else:
            tl = self._timeline()
            if tl is not None and self.number is not None and tl.next(self.number) is None:
                # nothing to play: say so rather than start and stop unseen
                self.status = "at the last transition: nothing to play (home: the first)"
                self.bell()
                self._show_address()
                return
            self._play = self.set_interval(PLAY_INTERVAL, self._play_tick)
        self._show_address()

    @property
    def playing(self) -> bool:
        """True while playing."""
        return self._play is not None

    def _play_tick(self) -> None:
        tl = self._timeline()
        nxt = tl.next(self.number) if tl is not None and self.number is not None else None
        if nxt is None:
            self.action_play()  # the end: pause
            return
        self._move(nxt)

    def action_state_jump(self, direction: int) -> None:
        """Jump to the next (1) or previous (-1) transition touching the selected state."""
        self._manual()
        if self.machine is None or self.number is None or not self.state:
            self.notify("select a state first (click it, or move in the state view)",
                        severity="warning")
            return
        self.status = f"searching {self.state}..."
        self._show_address()
        self._jump(self.machine, self.state, self.number, direction)

    @work(thread=True, exclusive=True, group="jump")
    def _jump(self, machine: RecordedMachine, state: str, start: int, direction: int) -> None:
        worker = get_current_worker()
        tl = self.timelines[machine.key]
        try:
            found, complete = find_touching(machine, state, start, direction,
                                            visible=tl.visible,
                                            stop=lambda: worker.is_cancelled,
                                            max_scan=JUMP_MAX_SCAN)
        except Exception as err:  # e.g. a damaged record: say so, never "searching" forever
            if not worker.is_cancelled:
                self.call_from_thread(self._jump_failed, machine, start, str(err))
            return
        if not worker.is_cancelled:
            self.call_from_thread(self._jumped, machine, state, found, direction, complete,
                                  start)

    def _jump_failed(self, machine: RecordedMachine, start: int, error: str) -> None:
        if machine is self.machine and self.number == start:
            self.status = f"search failed: {error}"
            self._show_address()

    def _jumped(self, machine: RecordedMachine, state: str, found: int | None,
                direction: int, complete: bool = True, start: int | None = None) -> None:
        if machine is not self.machine or (start is not None and start != self.number):
            return  # the cursor moved meanwhile: the answer is stale
        if found is None:
            where = "after" if direction > 0 else "before"
            self.status = f"no transition {where} this one touches {state}" if complete else \
                f"none of the {JUMP_MAX_SCAN:,} transitions {where} this one touches {state}"
            self._show_address()
            self.bell()
            return
        self.jump(machine.key, found)
        self.status = f"{state}: touched by #{found}"
        self._show_address()

    def action_search(self) -> None:
        """Search states when the states pane has the focus, else open the machine search
        box (showing the machine list for it if hidden)."""
        states = self.query_one(StateView)
        if self.focused is states:
            states.start_search()
            return
        machines = self.query_one(MachineList)
        if not machines.display:
            machines.display = True
            machines.peek = True
        machines.open_search()

    def action_filters(self) -> None:
        """Open the filter dialog."""
        tl = self._timeline()
        counts = tl.counts if tl is not None else None
        self.push_screen(FilterScreen(self.hidden, counts), self._filters_chosen)

    def _filters_chosen(self, hidden: frozenset[str] | None) -> None:
        self.ensure_focus()
        if hidden is None:
            return
        self.set_filters(hidden)

    def set_filters(self, hidden: frozenset[str]) -> None:
        """Hide these kinds of transitions in every machine's list."""
        self.hidden = frozenset(hidden)
        for tl in self.timelines.values():
            tl.set_hidden(self.hidden)
        tlist = self.query_one(TransitionList)
        tlist.reset()
        current = self._timeline()
        if current is not None and self.number is not None and \
                not current.visible(self.number) and current.ready:
            nxt = current.next(self.number) or current.prev(self.number)
            if nxt is not None:
                self._move(nxt)
                return
        tlist.set_current(self.number)

    def action_graph(self) -> None:
        """Show or hide the relation graph."""
        self._toggle_view("graph")

    def action_network(self) -> None:
        """Show or hide the network of machines."""
        self._toggle_view("network")

    def _toggle_view(self, view: str) -> None:
        focused = self.screen.focused
        self.view = "panes" if self.view == view else view
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "panes" if self.view == "panes" else "graph"
        if self.view != "panes":
            self._show_graph()
        # the focus follows the pane it was in (states <-> graph), else stays where it was
        graph = self.query_one(GraphView)
        if self.view == "panes":
            self.ensure_focus(self.query_one(StateView) if focused is graph else None)
        else:
            self.ensure_focus(graph)

    def action_times(self) -> None:
        """Cycle the time display: offsets, wall clock, hidden."""
        self.time_mode = next_mode(self.time_mode)
        self.query_one(TransitionList).set_time_mode(self.time_mode)
        self.refresh_views()

    def action_help(self) -> None:
        """Show the keys."""
        self.push_screen(HelpScreen(), lambda _: self.ensure_focus())

    # ------------------------------------------------------------------ focus

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The app's priority keys act on the main screen only (a dialog keeps its keys)."""
        return not (action == "search" and len(self.screen_stack) > 1)

    def shown(self, widget: Widget) -> bool:
        """True if `widget` and every container above it are displayed."""
        node: Widget | None = widget
        while node is not None and not isinstance(node, Screen):
            if not node.display:
                return False
            parent = node.parent
            node = parent if isinstance(parent, Widget) else None
        return True

    def ensure_focus(self, prefer: Widget | None = None) -> None:
        """Put the focus on a visible pane if the focused one was hidden (a view switch, a
        layout change, a closed dialog): `prefer`, else the transition list."""
        if len(self.screen_stack) > 1:
            return
        focused = self.screen.focused
        if focused is not None and focused.focusable and self.shown(focused):
            return
        for target in (prefer, self.query_one(TransitionList)):
            if target is not None and target.focusable and self.shown(target):
                self.screen.set_focus(target)
                return

    def key_escape(self) -> None:
        """Escape stops a running `j` search, else closes the search box or the graph."""
        machines = self.query_one(MachineList)
        if self.status.startswith("searching"):
            self.workers.cancel_group(self, "jump")
            self.status = "search stopped"
            if self.machine is not None:
                self._show_address()
        elif machines.searching:
            machines.close_search()
        elif self.view != "panes":
            self._toggle_view(self.view)


__all__ = ["FORKS_DELAY", "NARROW_WIDTH", "NETWORK_LINKS_MAX", "PLAY_INTERVAL", "SCAN_CHUNK",
           "ReplayApp"]
