"""`amdbg replay` driven through Textual's Pilot: every key, every pane, mouse selection, the
start-up selection and its errors, and the lazy loading that keeps big recordings fast.

The recordings are made here, from the example workflow (seeded ids) and from a small machine
driven in a loop, so the tests do not depend on the shipped samples' bytes.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from helpers.tui import header, settle
from textual.widgets import SelectionList

import amnode as am
from amdbg import cli
from amdbg.filters import involves
from amdbg.session import Session
from amdbg.tui import ReplayApp
from amdbg.tui import app as app_module
from amdbg.tui import timeline as timeline_module
from amdbg.tui.jump import nearest
from amdbg.tui.keys import KEYS
from amdbg.tui.screens.filters import FilterScreen
from amdbg.tui.screens.help import HelpScreen, help_table
from amdbg.tui.timefmt import when
from amdbg.tui.widgets.detail import TransitionDetail
from amdbg.tui.widgets.graph_view import GraphView
from amdbg.tui.widgets.machine_list import MachineList, MachineTree
from amdbg.tui.widgets.state_view import StateView
from amdbg.tui.widgets.transition_list import TransitionList
from amnode.telemetry import Recorder

ROOT = Path(__file__).resolve().parents[2]
SIZE = (160, 48)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine with 3,000 transitions (a toggling loop) for the lazy-loading tests."""
    path = tmp_path_factory.mktemp("rec") / "busy.amrec"
    m = am.Machine({"On": am.State(remove=["Off"]), "Off": am.State(remove=["On"]),
                    "Count": am.State(multi=True), "Key": am.State(),
                    "Gated": am.State(require=["Key"])}, id="busy")
    with Recorder(path) as rec:
        rec.attach(m)
        for i in range(1000):
            m.add("On")
            m.add("Off")
            m.add("Count" if i % 7 else "Gated")  # Gated: canceled, Key is never active
    m.dispose()
    return path


# ---------------------------------------------------------------------- start-up


async def test_opens_at_the_selected_machine_and_transition(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert (app.machine.key, app.number, app.step) == ("order-1002", 7, None)
        tx = session.transition(app.machine, 7)
        assert tx.url in header(app)
        assert "#7/12" in header(app)
        tl = app.query_one(TransitionList)
        assert tl.current == 7 and tl.cursor == 6
        assert tl.border_title == "Transitions 7 / 12"
        assert app.query_one(TransitionDetail).border_title == "Transition #7 of 12"
        assert app.query_one(MachineTree).cursor_node.data == "order-1002"


async def test_opens_at_first_machine_without_selection(session: Session) -> None:
    app = ReplayApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.machine.key == "orders" and app.number == 1


async def test_address_step_opens_in_step_mode(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7, step=2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.step == 2
        assert app.query_one(StateView).border_title == "States at step 2/9 of #7"


# ---------------------------------------------------------------------- navigation keys


async def test_right_left_home_end(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right")
        await settle(pilot)
        assert app.number == 8 and "#8/12" in header(app)
        await pilot.press("left", "left")
        await settle(pilot)
        assert app.number == 6
        await pilot.press("end")
        await settle(pilot)
        assert app.number == 12
        await pilot.press("right")  # at the end: stays
        await settle(pilot)
        assert app.number == 12
        await pilot.press("home")
        await settle(pilot)
        assert app.number == 1
        await pilot.press("left")
        await settle(pilot)
        assert app.number == 1


async def test_up_down_in_the_transition_list_select(session: Session) -> None:
    app = ReplayApp(session, machine="order-1001", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.focused is app.query_one(TransitionList)
        await pilot.press("down", "down")
        await settle(pilot)
        assert app.number == 5
        await pilot.press("up")
        await settle(pilot)
        assert app.number == 4


async def test_steps_show_the_machine_as_of_each_step(session: Session) -> None:
    app = ReplayApp(session, machine="order-1001", number=5)  # add PaymentPending, accepted
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tx = app.tx
        assert tx.accepted and "PaymentPending" in tx.activated
        assert app.frame.row("PaymentPending").active
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.step == 0
        row = app.frame.row("PaymentPending")
        assert not row.active and not row.added  # before the transition
        assert app.query_one(StateView).border_title == f"States before #5 (step 0/{len(tx.steps)})"
        activate = next(i for i, s in enumerate(tx.steps, 1) if s.type == "activate")
        for _ in range(activate):
            await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.step == activate
        row = app.frame.row("PaymentPending")
        assert row.active and row.added and row.marks == "+"
        assert f"step {activate}/{len(tx.steps)}" in header(app)
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert app.step == activate - 1 and not app.frame.row("PaymentPending").active
        # past the last step: step 0 of the next transition
        for _ in range(len(tx.steps) - activate + 2):
            await pilot.press("right_square_bracket")
        await settle(pilot)
        assert (app.number, app.step) == (6, 0)
        # before step 0: the last step of the previous transition
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert (app.number, app.step) == (5, len(tx.steps))
        await pilot.press("right")  # a transition key leaves step mode
        await settle(pilot)
        assert (app.number, app.step) == (6, None)


async def test_space_plays_and_pauses(session: Session, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setattr(app_module, "PLAY_INTERVAL", 0.01)
    app = ReplayApp(session, machine="order-1001", number=1)
    # the player's ticks pass a gate the test opens: how many ticks fire while a key press is
    # processed (the app is never idle while playing) does not change what is asserted
    allowed = {"ticks": 0}
    tick = app._play_tick

    def gated_tick() -> None:
        if allowed["ticks"] > 0:
            allowed["ticks"] -= 1
            tick()

    monkeypatch.setattr(app, "_play_tick", gated_tick)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")
        assert app.playing and "playing" in header(app)
        assert app.number == 1
        allowed["ticks"] = 2
        await settle(pilot, lambda: app.number == 3)
        await pilot.press("space")
        await settle(pilot)
        stopped_at = app.number
        assert not app.playing and "paused" in header(app)
        allowed["ticks"] = 100  # paused: no timer runs, so nothing moves
        await pilot.pause(0.05)
        assert app.number == stopped_at == 3
        await pilot.press("space")  # plays to the end, then pauses itself
        await settle(pilot, lambda: not app.playing)
        assert app.number == len(app.machine)


async def test_j_and_shift_j_jump_by_the_selected_state(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        states = app.query_one(StateView)
        states.focus()
        names = [r.name for r in app.frame.rows]
        target = names.index("Paid")
        await pilot.press(*["down"] * (target - states.cursor))
        await settle(pilot)
        assert app.state == "Paid"
        expected = [tx.number for tx in app.machine.transitions() if involves(tx, "Paid")]
        assert len(expected) >= 2
        await pilot.press("j")
        await settle(pilot, lambda: app.number == expected[0])
        await pilot.press("j")
        await settle(pilot, lambda: app.number == expected[1])
        await pilot.press("J")
        await settle(pilot, lambda: app.number == expected[0])
        await pilot.press("J")
        await settle(pilot, lambda: "no transition before" in app.status)
        assert app.number == expected[0]


async def test_j_over_thousands_of_hidden_heartbeats_keeps_the_app_running(
        tmp_path: Path) -> None:
    """With the health filter on, every Heartbeat add is a hidden tick change: `j` used to
    recurse once per one (RecursionError in its worker, and Textual exited the app)."""
    path = tmp_path / "hb.amrec"
    m = am.Machine({"Start": am.State(), "Heartbeat": am.State(multi=True)}, id="pool/worker 1")
    with Recorder(path) as rec:
        rec.attach(m)
        m.add("Start")
        for _ in range(3000):
            m.add("Heartbeat")
        m.add(["Heartbeat", "Start"])  # not a health transition: shown
    m.dispose()
    with Session.open(path) as s:
        app = ReplayApp(s, machine="pool/worker 1", number=1)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            # any machine id can be given back to amdbg: the address is percent-encoded
            assert "mach://pool%2Fworker%201/" in header(app)
            app.set_filters(frozenset({"health"}))
            await settle(pilot, lambda: app.timelines["pool/worker 1"].ready)
            app.query_one(StateView).select("Heartbeat")
            app.state = "Heartbeat"
            await pilot.press("j")
            await settle(pilot, lambda: app.number == len(app.machine))
            assert app.is_running and app.status == f"Heartbeat: touched by #{app.number}"
            await pilot.press("j")
            await settle(pilot, lambda: "no transition after" in app.status)
            assert app.is_running


async def test_t_cycles_the_time_display(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # the offset of #7 from the start, however long the recorded run took to get there
        offset = when(app.tx.end_ns, session.start_ns, "offset")
        assert offset.startswith("+") and offset.endswith("s")
        assert app.time_mode == "offset" and f"   {offset}" in header(app)
        await pilot.press("t")
        await settle(pilot)
        assert app.time_mode == "wall" and offset not in header(app)
        assert when(app.tx.end_ns, session.start_ns, "wall") in header(app)
        await pilot.press("t")
        await settle(pilot)
        assert app.time_mode == "off" and offset not in header(app)
        assert not re.search(r"\+\d+\.\d+s", header(app))
        assert app.query_one(TransitionList).render_header(0, 100).plain.split()[:2] == \
            ["#", "type"]


# ---------------------------------------------------------------------- machines


async def test_search_switches_machine_keeping_the_wall_time(session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=10)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        wall = app.tx.end_ns
        await pilot.press("slash")
        await settle(pilot)
        machines = app.query_one(MachineList)
        assert machines.searching
        await pilot.press(*"1004")
        await settle(pilot)
        assert machines.matches == ["order-1004"]
        assert machines.border_subtitle == "1 match"
        await pilot.press("enter")
        await settle(pilot)
        assert not machines.searching
        assert app.machine.key == "order-1004"
        m = app.machine
        expected = nearest(m, wall)
        assert app.number == expected
        distances = [abs(t - wall) for t in m.end_times]
        assert abs(m.end_times[expected - 1] - wall) == min(distances)


async def test_typing_in_the_search_box_is_not_a_command(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", "q", "g", "j", "f", "space", "question_mark", "n", "t")
        await settle(pilot)
        assert app.query_one("#machine-search").value == "qgjf ?nt"
        assert not app._exit and app.view == "panes" and not app.playing
        assert app.number == 7 and app.time_mode == "offset"
        assert not isinstance(app.screen, HelpScreen)


async def test_search_escape_and_no_match(session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "z", "z", "enter")
        await settle(pilot)
        assert app.machine.key == "orders"
        await pilot.press("slash", "o")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert not app.query_one(MachineList).searching and app.machine.key == "orders"


async def test_machine_labels_show_counts_at_the_cursor_time_and_marks(session: Session
                                                                       ) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(MachineTree)
        labels = {n.data: str(n.label) for n in tree.root.children[0].children}
        labels["orders"] = str(tree.root.children[0].label)
        assert labels["order-1002"].startswith("order-1002 7/12 E")
        assert labels["order-1001"] == "order-1001 13"   # all done, disposed later
        assert "0/16" in labels["order-1004"]          # nothing yet at this time
        await pilot.press("slash", *"orders", "enter", "end")
        await settle(pilot)
        assert app.machine.key == "orders"
        disposed = app.session.recording.machine("order-1001").disposed_ns
        if disposed is not None and disposed <= app.tx.end_ns:
            assert str(tree.root.children[0].children[0].label) == "order-1001 13 ✓"


async def test_clicking_a_machine_selects_it(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(MachineTree)
        line = next(i for i in range(tree.last_line + 1)
                    if tree.get_node_at_line(i).data == "order-1001")
        await pilot.click(MachineTree, offset=(6, line))
        await settle(pilot)
        assert app.machine.key == "order-1001"


# ---------------------------------------------------------------------- panes and mouse


async def test_state_view_marks_the_current_transition(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)  # add Paid, vetoed by PaidEnter
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        paid = app.frame.row("Paid")
        assert paid.called and paid.handler and paid.cancel and not paid.active
        assert "*" in paid.marks and "!" in paid.marks
        view = app.query_one(StateView)
        line = view.render_row([r.name for r in app.frame.rows].index("Paid"), 120, False).plain
        assert "○ Paid" in line and "req Validated" in line and "rm PaymentPending" in line
        auto = view.render_row([r.name for r in app.frame.rows].index("ReadyToShip"),
                               120, False).plain
        assert " A " in auto


async def test_clicking_a_state_and_a_transition(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = [r.name for r in app.frame.rows]
        await pilot.click(StateView, offset=(5, 2 + names.index("Validated")))  # border, header
        await settle(pilot)
        assert app.state == "Validated"
        tl = app.query_one(TransitionList)
        await pilot.click(TransitionList, offset=(5, 2 + 2))  # border, header, rows 1, 2, 3
        await settle(pilot)
        assert app.number == 3 and tl.cursor == 2


async def test_detail_shows_result_steps_handlers_args_log(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.forks is not None)
        plain = "\n".join(app.query_one(TransitionDetail).lines())
        assert "✗ CANCELED" in plain and "vetoed by PaidEnter" in plain
        assert "Steps (9)" in plain and "Paid require Validated" in plain
        assert "Handlers (" in plain and "Args (1)" in plain and "card 0000-declined" in plain
        assert "Log (" in plain and "[cancel]" in plain
        assert "caused  -" in plain and "source  -" in plain


async def test_s_goes_to_the_source_and_caused_links_go_back(session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        src = app.tx.source
        assert src is not None
        await pilot.press("s")
        await settle(pilot, lambda: app.forks is not None)
        assert app.machine.key == src.machine_id and app.tx.id == src.tx_id
        caused = [(f.machine.key, f.number) for f in app.forks]
        assert ("orders", 5) in caused
        app.action_goto("orders", 5)  # what a click on the link runs
        await settle(pilot)
        assert (app.machine.key, app.number) == ("orders", 5)
        await pilot.press("home", "s")  # no source: a warning, no move
        await settle(pilot)
        assert app.number == 1 and app.machine.key == "orders"


async def test_clicking_a_step_and_a_source_link(session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        detail = app.query_one(TransitionDetail)
        width = detail.scrollable_content_region.width
        lines = detail.lines(width)
        row = next(i for i, line in enumerate(lines) if line.strip().startswith("2 "))
        await pilot.click(TransitionDetail, offset=(1 + 1 + 3, 1 + row))  # border, padding
        await settle(pilot)
        assert app.step == 2
        lines = detail.lines(width)
        src_row = next(i for i, line in enumerate(lines) if line.startswith("source"))
        await pilot.click(TransitionDetail, offset=(1 + 1 + 10, 1 + src_row))
        await settle(pilot)
        assert app.machine.key == app.tx.machine and app.machine.key != "orders"


# ---------------------------------------------------------------------- filters


async def test_f_hides_canceled_transitions_with_counts(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        m = app.machine
        canceled = [tx.number for tx in m.transitions() if not tx.accepted]
        tl = app.query_one(TransitionList)
        assert f"canceled {len(canceled)}" in tl.border_subtitle
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FilterScreen)
        options = app.screen.query_one(SelectionList)
        prompt = str(options.get_option_at_index(0).prompt).split()
        assert prompt[:3] == ["[c]", "canceled", str(len(canceled))]
        await pilot.press("c", "enter")
        await settle(pilot)
        assert app.hidden == frozenset({"canceled"})
        assert tl.row_count() == len(m) - len(canceled)
        assert tl.border_subtitle == f"hiding canceled {len(canceled)}"
        seen = [app.number]
        for _ in range(len(m)):
            await pilot.press("right")
        await settle(pilot)
        for _ in range(len(m)):
            await pilot.press("left")
            await settle(pilot)
            seen.append(app.number)
        assert not set(seen) & set(canceled)
        await pilot.press("f", "escape")  # escape keeps the filters
        await settle(pilot)
        assert app.hidden == frozenset({"canceled"})
        await pilot.press("f", "space", "enter")  # space toggles the focused (first) one off
        await settle(pilot)
        assert app.hidden == frozenset() and tl.row_count() == len(m)


async def test_filtered_out_cursor_moves_to_a_visible_transition(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)  # canceled
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.set_filters(frozenset({"canceled", "auto"}))
        await settle(pilot)
        assert app.tx.accepted and not app.tx.is_auto


# ---------------------------------------------------------------------- graph, help, quit


async def test_g_draws_the_relation_graph_with_the_transition_highlighted(session: Session
                                                                          ) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await settle(pilot)
        assert app.view == "graph"
        graph = app.query_one(GraphView)
        assert graph.display and graph.kind == "machine"
        text = graph.text
        for name in app.machine.state_names:
            assert re.search(rf"\[ *{name}\*? *\]", text), name
        assert "req" in text and "rm" in text and "require" in text
        touched = {n for n, (_, _, _) in graph.drawing.boxes.items()
                   if app.frame.row(n) is not None and app.frame.row(n).touched}
        assert "Paid" in touched
        x, y, _ = graph.drawing.boxes["Paid"]
        line = graph.drawing.lines[y]
        assert any("yellow" in str(span.style) for span in line.spans
                   if span.start <= x + 1 < span.end)
        graph.focus()
        await pilot.press("right")  # keys still step, even with the graph focused
        await settle(pilot)
        assert "#8" in graph.border_title and app.number == 8
        boxes = graph.drawing.boxes
        name = sorted(boxes, key=lambda n: (boxes[n][1], boxes[n][0]))[1]  # 2nd of the top row
        x, y, _ = boxes[name]  # + border, + legend and a blank line
        await pilot.click(GraphView, offset=(x + 2, y + 3))
        await settle(pilot)
        assert app.state == name and app.query_one(StateView).selected == name
        await pilot.press("g")
        await settle(pilot)
        assert app.view == "panes" and not graph.display


async def test_texts_follow_the_limits(session: Session, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    from amdbg.tui.keys import PLAY_INTERVAL

    play = next(k for k in KEYS if k.action == "play")
    assert f"one transition every {PLAY_INTERVAL:g} s" in play.description
    monkeypatch.setattr(app_module, "FORK_MAX_SCAN", 3)
    monkeypatch.setattr(app_module, "FORKS_DELAY", 0.01)
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.forks is not None)
        assert app.forks_note == "(searched the next 3 transitions only)"
        assert "searched the next 3 transitions only" in "\n".join(
            app.query_one(TransitionDetail).lines(200))


async def test_the_graph_decodes_nothing_outside_the_cache(
        busy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amnode.telemetry import RecordedMachine

    monkeypatch.setattr(app_module, "FORKS_DELAY", 60)  # no "caused" scan reading ahead
    decoded: dict[int, int] = {}
    read = RecordedMachine.transition

    def counting(self: RecordedMachine, n: int):
        decoded[n] = decoded.get(n, 0) + 1
        return read(self, n)

    monkeypatch.setattr(RecordedMachine, "transition", counting)
    with Session.open(busy) as s:
        app = ReplayApp(s, machine="busy", number=5)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("g")
            await settle(pilot)
            for _ in range(3):
                await pilot.press("right")
                await settle(pilot)
            assert app.view == "graph" and app.number == 8
            assert "#8" in app.query_one(GraphView).border_title
    assert all(decoded[n] == 1 for n in range(5, 9)), decoded


async def test_n_draws_the_network_and_a_click_selects_a_machine(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        graph = app.query_one(GraphView)
        assert app.view == "network" and graph.kind == "network"
        await settle(pilot, lambda: "mutates" in graph.text)  # links are found in a thread
        for m in session.machines:
            assert re.search(rf"\[ *{m.key} *\]", graph.text), m.key
        assert "parent" in graph.text and "child" not in graph.text  # as the CLI says
        x, y, _ = graph.drawing.boxes["order-1003"]
        await pilot.click(GraphView, offset=(x + 2, y + 3))
        await settle(pilot)
        assert app.machine.key == "order-1003"
        await pilot.press("escape")
        await settle(pilot)
        assert app.view == "panes"


async def test_help_lists_every_key(session: Session) -> None:
    app = ReplayApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join("".join(seg.text for seg in line)
                         for line in app.console.render_lines(help_table()))
        for key in KEYS:
            assert key.shown in text and key.description[:30] in text
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)


async def test_every_key_has_a_binding_and_the_footer_shows_the_main_ones(session: Session
                                                                          ) -> None:
    app = ReplayApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bound = {b.key for b in app.BINDINGS}
        for key in KEYS:
            assert key.keys in bound or key.action == "focus_next"
            if key.action != "focus_next":
                assert hasattr(app, "action_" + key.action.split("(")[0])
        shown = {b.key for b in app.BINDINGS if b.show}
        assert {"right", "left", "space", "slash", "f", "g", "question_mark", "q"} <= shown


async def test_tab_moves_between_the_panes(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seen = []
        for _ in range(4):
            await pilot.press("tab")
            await settle(pilot)
            seen.append(type(app.focused).__name__)
        assert seen == ["MachineTree", "StateView", "TransitionDetail", "TransitionList"]
        await pilot.press("shift+tab", "shift+tab")
        await settle(pilot)
        assert isinstance(app.focused, StateView)
        await pilot.press("right")  # transition keys work whatever pane has the focus
        await settle(pilot)
        assert app.number == 8
        app.query_one(MachineTree).focus()
        await pilot.press("right", "end")
        await settle(pilot)
        assert app.number == 12 and app.machine.key == "order-1002"


async def test_q_quits(session: Session) -> None:
    app = ReplayApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app._exit


# ---------------------------------------------------------------------- big recordings


async def test_transition_list_is_virtual_and_counts_between_frames(
        busy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline_module, "SYNC_SCAN", 10)
    monkeypatch.setattr(app_module, "SYNC_SCAN", 10)
    with Session.open(busy) as s:
        app = ReplayApp(s, machine="busy")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            m = app.machine
            assert len(m) >= 3000
            tl = app.query_one(TransitionList)
            assert tl.row_count() == len(m)
            assert len(app.cache) <= 2 * tl.page + 10  # only the rows on screen were decoded
            await settle(pilot, lambda: app.timelines["busy"].ready)
            await settle(pilot, lambda: "canceled" in tl.border_subtitle)
            counts = app.timelines["busy"].counts
            assert counts["canceled"] == sum(1 for tx in m.transitions() if not tx.accepted)
            await pilot.press("end")
            await settle(pilot)
            assert app.number == len(m) and tl.cursor == len(m) - 1
            assert int(tl.scroll_y) > len(m) - tl.page - 5
            assert len(app.cache) <= 4 * tl.page + 10


async def test_opening_deep_in_a_big_machine_scrolls_the_list_there(busy: Path) -> None:
    with Session.open(busy) as s:
        app = ReplayApp(s, machine="busy", number=2000)
        async with app.run_test(size=SIZE) as pilot:
            tl = app.query_one(TransitionList)
            await settle(pilot, lambda: tl.cursor == 1999
                         and int(tl.scroll_y) <= 1999 < int(tl.scroll_y) + tl.page)
            assert len(app.cache) <= 2 * tl.page + 10


# ---------------------------------------------------------------------- the command line


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("args", "fragment"), [
    (["/nonexistent.amrec"], "/nonexistent.amrec"),
    (["{rec}", "-m", "nosuch"], "no machine matches 'nosuch'"),
    (["{rec}", "-m", "order"], "is ambiguous"),
    (["{rec}", "-m", "order-1002", "-t", "99"], "there is no transition 99"),
    (["{rec}", "mach://order-1002/ffffffffffffffff"], "no transition"),
    (["{rec}", "-t", "3"], "needs a machine"),
])
def test_bad_arguments_print_one_line(orders: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, args: list[str],
                                      fragment: str) -> None:
    monkeypatch.setenv("AMDBG_FORCE_TUI", "1")
    monkeypatch.setattr(ReplayApp, "run", lambda self: pytest.fail("the TUI started"))
    status, out, err = _run(capsys, "replay", *[a.format(rec=orders) for a in args])
    assert status != 0 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("amdbg: error: ")
    assert fragment in err


def test_replay_without_a_terminal_refuses(orders: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMDBG_FORCE_TUI", raising=False)
    status, _, err = _run(capsys, "replay", str(orders))
    assert status == 2 and "needs a terminal" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("args", "expected"), [
    (["-m", "1002", "-t", "3"], ("order-1002", 3, None)),
    (["--select-machine", "order-1004", "--select-transition", "-1"], ("order-1004", 16, None)),
    (["mach://order-1002/{tx}/2"], ("order-1002", 7, 2)),
    ([], (None, None, None)),
])
def test_replay_starts_the_app_at_the_selection(orders: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch,
                                                args: list[str], expected: tuple) -> None:
    started = []

    def fake_run(self: ReplayApp) -> None:
        started.append((self._startup, self.time_mode))

    monkeypatch.setenv("AMDBG_FORCE_TUI", "1")
    monkeypatch.setattr(ReplayApp, "run", fake_run)
    with Session.open(orders) as s:
        tx_id = s.transition(s.select_machine("order-1002"), 7).id
    status, _, err = _run(capsys, "replay", str(orders), *[a.format(tx=tx_id) for a in args],
                          "--times", "off")
    assert status == 0, err
    assert started == [(expected, "off")]


# ---------------------------------------------------------------------- repainting lines


async def screen_lines(app: ReplayApp, pilot) -> list[str]:
    """The screen as drawn, with its colours (each pane's lines as Textual keeps them
    between frames)."""
    from rich.console import Console
    await settle(pilot)
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, simplify=True))
    return console.export_text(styles=True).splitlines()


async def assert_drawn_as_redrawn(app: ReplayApp, pilot) -> None:
    """What the panes repainted line by line shows the same as drawing them all again."""
    await settle(pilot, lambda: app.forks is not None)  # "caused" found: nothing more comes
    drawn = await screen_lines(app, pilot)
    for widget in app.screen.query("*"):
        widget.refresh()
    redrawn = await screen_lines(app, pilot)
    assert [(y, line) for y, line in enumerate(drawn) if line != redrawn[y]] == []


async def test_steps_repaint_the_lines_that_changed_and_only_those(busy: Path) -> None:
    """A step repaints the rows, detail lines and border titles that changed (LineRepaint);
    the screen then reads exactly as after a full redraw, scrolled or not."""
    with Session.open(busy) as s:
        app = ReplayApp(s, machine="busy", number=10)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.timelines["busy"].ready)
            tl = app.query_one(TransitionList)
            for keys in (["right"], ["right", "right"], ["right_square_bracket"] * 3,
                         ["left"], ["down"] * 30, ["end"], ["up"], ["home"], ["left"],
                         ["pagedown"], ["tab", "down", "up"]):
                for key in keys:
                    await pilot.press(key)
                await assert_drawn_as_redrawn(app, pilot)
                assert tl.border_title == f"Transitions {app.number} / {len(app.machine)}"
                assert int(tl.scroll_y) <= tl.cursor < int(tl.scroll_y) + tl.page
            # a state move in the states pane repaints its two rows
            app.query_one(StateView).focus()
            await pilot.press("down", "down", "up")
            await assert_drawn_as_redrawn(app, pilot)
