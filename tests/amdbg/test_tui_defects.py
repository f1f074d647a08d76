"""Regression tests of the `amdbg replay` defects found by a new user (focus trap, key race
after `/`, unreachable tracebacks, 80x24, step mode showing two moments, stale status lines),
driven through Textual's Pilot. Each test walks the user's exact path.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.tui import header, settle
from textual import events
from textual.widgets import Input

from amdbg.session import Session
from amdbg.tui import ReplayApp
from amdbg.tui import app as app_module
from amdbg.tui.screens.filters import TICKED, FilterList, FilterScreen
from amdbg.tui.screens.help import HelpScreen
from amdbg.tui.timefmt import spans_days, when
from amdbg.tui.widgets.detail import TransitionDetail
from amdbg.tui.widgets.graph_view import GraphView
from amdbg.tui.widgets.machine_list import MachineList
from amdbg.tui.widgets.state_view import StateView
from amdbg.tui.widgets.transition_list import TransitionList
from amnode.telemetry import RecordWriter

SIZE = (160, 48)


def visible_focus(app: ReplayApp) -> bool:
    """Something is focused, and it and its containers are displayed."""
    return app.focused is not None and app.shown(app.focused)


def burst(app: ReplayApp, keys: str) -> None:
    """Queue `keys` all at once, as a terminal delivers a fast typist's keys (one read): the
    app handles the first before it sees the next, but they are already waiting."""
    names = {"/": "slash", " ": "space"}
    for ch in keys:
        app.post_message(events.Key(names.get(ch, ch), ch))


# ---------------------------------------------------------------------- 1. focus trap


@pytest.mark.parametrize("dialog", ["question_mark", "f"])
async def test_leaving_the_graph_and_a_dialog_never_traps_the_focus(session: Session,
                                                                    dialog: str) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("tab", "tab")
        await settle(pilot)
        assert isinstance(app.focused, StateView)
        await pilot.press("g")
        await settle(pilot)
        assert app.view == "graph" and isinstance(app.focused, GraphView)
        await pilot.press("g")
        await settle(pilot)
        assert app.view == "panes" and isinstance(app.focused, StateView)
        await pilot.press(dialog)
        await settle(pilot)
        assert isinstance(app.screen, (HelpScreen, FilterScreen))
        await pilot.press("escape")
        await settle(pilot)
        assert visible_focus(app) and not isinstance(app.focused, Input)
        assert not app.query_one(MachineList).searching
        await pilot.press("right", "end")
        await settle(pilot)
        assert app.number == len(app.machine)
        await pilot.press("q")
        await settle(pilot)
        assert app._exit


async def test_graph_with_the_transition_list_focused_keeps_it(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, TransitionList)
        for key in ("g", "n", "n"):
            await pilot.press(key)
            await settle(pilot)
            assert visible_focus(app)
        assert isinstance(app.focused, TransitionList)


async def test_a_dialog_opened_with_nothing_focused_comes_back_to_a_visible_pane(
        session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.set_focus(None)
        await pilot.press("question_mark")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert visible_focus(app) and not isinstance(app.focused, Input)


@pytest.mark.parametrize("dialog", ["question_mark", "f"])
async def test_q_quits_from_a_dialog(session: Session, dialog: str) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(dialog)
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert app._exit


# ---------------------------------------------------------------------- 2. key race after /


async def test_keys_typed_right_after_slash_belong_to_the_search(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, "/order-1003 sqt")
        await settle(pilot)
        box = app.query_one("#machine-search", Input)
        assert box.value == "order-1003 sqt"
        assert app.focused is box
        # none of s (source), t (time column), q (quit) reached the app
        assert app.time_mode == "offset" and app.number == 3 and not app._exit


async def test_a_burst_search_selects_on_enter(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, "/1003")
        app.post_message(events.Key("enter", "\r"))
        await settle(pilot, lambda: app.machine.key == "order-1003")
        assert visible_focus(app) and not app.query_one(MachineList).searching


async def test_slash_inside_a_dialog_does_not_open_the_search(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark", "slash")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert not app.query_one(MachineList).searching


# ---------------------------------------------------------------------- 7. step mode


async def test_step_mode_graph_shows_the_moment_the_states_show(session: Session) -> None:
    # mach://order-1001/<tx 5>/0: before `add PaymentPending`
    app = ReplayApp(session, machine="order-1001", number=5, step=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.frame.row("PaymentPending").active
        await pilot.press("g")
        await settle(pilot)
        graph = app.query_one(GraphView)
        assert "[PaymentPending]" in graph.text.replace(" ", "")
        assert "PaymentPending*" not in graph.text
        active = {r.name for r in app.frame.rows if r.active}
        for name in app.machine.state_names:
            assert (f"{name}*" in graph.text) == (name in active), name
        # to the step that activates it: both agree it is active now
        tx = app.tx
        activate = next(i for i, s in enumerate(tx.steps, 1) if s.type == "activate")
        await pilot.press(*["right_square_bracket"] * activate)
        await settle(pilot)
        assert app.frame.row("PaymentPending").active and "PaymentPending*" in graph.text


# ---------------------------------------------------------------------- 8. stale status


async def test_status_messages_are_cleared_by_navigation(session: Session) -> None:
    app = ReplayApp(session, machine="order-1001", number=13)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(StateView).focus()
        await settle(pilot)
        await pilot.press("j")  # nothing after the last transition touches anything
        await settle(pilot, lambda: "no transition after" in header(app))
        await pilot.press("left")
        await settle(pilot)
        assert app.number == 12
        assert "no transition" not in header(app) and "searching" not in header(app)


async def test_an_interrupted_j_search_never_stays_searching(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started = threading.Event()
    real = app_module.find_touching

    def slow_find(*args, **kwargs):
        started.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(app_module, "find_touching", slow_find)
    app = ReplayApp(session, machine="order-1002", number=1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot, started.is_set)
        assert "searching" in header(app)
        await pilot.press("right")  # moving on interrupts the search
        await settle(pilot)
        assert app.number == 2 and "searching" not in header(app)
        release.set()  # the old search finishes late: its answer must not move the cursor
        await settle(pilot, lambda: not [w for w in app.workers if w.group == "jump"
                                         and not w.is_finished])
        await settle(pilot)
        assert app.number == 2 and "searching" not in header(app)


async def test_escape_stops_a_j_search(session: Session,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started = threading.Event()

    def stuck_find(*args, stop, **kwargs):
        started.set()
        while not stop() and not release.is_set():
            release.wait(0.01)
        return None, False

    monkeypatch.setattr(app_module, "find_touching", stuck_find)
    app = ReplayApp(session, machine="order-1002", number=1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot, started.is_set)
        await pilot.press("escape")
        await settle(pilot)
        assert "searching" not in header(app) and "stopped" in header(app)
        await settle(pilot, lambda: not [w for w in app.workers if w.group == "jump"
                                         and not w.is_finished])
        release.set()
        assert app.number == 1


async def test_a_failing_j_search_says_so(session: Session,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_find(*args, **kwargs):
        raise ValueError("damaged record")

    monkeypatch.setattr(app_module, "find_touching", broken_find)
    app = ReplayApp(session, machine="order-1002", number=1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot, lambda: "search failed" in header(app))
        assert "searching" not in header(app)


# ---------------------------------------------------------------------- 5. tracebacks

TRACE_LINES = 40


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """One machine whose only transition failed with a 40-line traceback in its log."""
    path = tmp_path / "failing.amrec"
    w = RecordWriter.create(path, {"host": "h", "pid": 1, "argv0": "jobs", "start_ns": 1_000})
    mno = w.add_machine("jobs", "", [], ["Job", "Exception"],
                        {"Job": {}, "Exception": {"multi": True}}, {}, [], 1_000)
    trace = "\n".join(f'  File "jobs.py", line {i}, in step{i}' for i in range(TRACE_LINES))
    w.transition(mno, 1, 2_000, 3_000, "0000000000000001", 0x00, 0, [0], 1, 1, 0, [0, 1],
                 [0, 0], [[32, -1, 0, -1]],
                 [[1, f"[error:add] KeyError: 'job'\nTraceback (most recent call last):\n"
                      f"{trace}"]], None, None, None)
    w.close()
    return path


async def test_tracebacks_in_the_detail_pane_are_reachable(failing: Path) -> None:
    with Session.open(failing) as s:
        app = ReplayApp(s, machine="jobs", number=1)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            detail = app.query_one(TransitionDetail)
            last = f'line {TRACE_LINES - 1}, in step{TRACE_LINES - 1}'
            page = "\n".join(detail.lines(100))
            assert f"(+{TRACE_LINES + 1} lines" in page and last not in page
            for _ in range(6):  # tab reaches it (there are fewer panes than that)
                if isinstance(app.focused, TransitionDetail):
                    break
                await pilot.press("tab")
                await settle(pilot)
            assert isinstance(app.focused, TransitionDetail)
            await pilot.press("enter")  # expands
            await settle(pilot)
            page = "\n".join(detail.lines(100))
            assert last in page and "Traceback (most recent call last)" in page
            assert detail.max_scroll_y > 0  # longer than the pane: it scrolls
            await pilot.press("pagedown", "down")
            await settle(pilot)
            assert detail.scroll_y > 0
            await pilot.press("right")  # the app's keys still work from the detail pane
            await settle(pilot)
            assert app.focused is detail
            await pilot.press("x")  # folds again
            await settle(pilot)
            assert last not in "\n".join(detail.lines(100))


# ---------------------------------------------------------------------- 6. 80x24


async def test_80x24_has_a_narrow_layout(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.narrow
        machines = app.query_one(MachineList)
        assert not machines.display  # its 30 columns go to the panes
        detail = app.query_one(TransitionDetail)
        states = app.query_one(StateView)
        assert detail.size.width >= 30 and states.size.width >= 30
        shown = footer_keys(app, 80)
        assert {"question_mark", "q"} <= shown, shown
        # dialogs stay inside the screen
        for key in ("question_mark", "f"):
            await pilot.press(key)
            await settle(pilot)
            box = app.screen.query_one("#help-box" if key == "question_mark" else "#filter-box")
            region = box.region
            assert region.x >= 0 and region.y >= 0
            assert region.right <= 80 and region.bottom <= 24, (key, region)
            await pilot.press("escape")
            await settle(pilot)
        # `/` shows the machine list for the search; it hides again after
        burst(app, "/1003")
        await settle(pilot)
        assert machines.display and app.focused is app.query_one("#machine-search", Input)
        app.post_message(events.Key("enter", "\r"))
        await settle(pilot, lambda: app.machine.key == "order-1003")
        assert not machines.display and visible_focus(app)
        # m shows it for good, m again hides it
        await pilot.press("m")
        await settle(pilot)
        assert machines.display and visible_focus(app)
        await pilot.press("m")
        await settle(pilot)
        assert not machines.display and visible_focus(app)


async def test_growing_the_terminal_leaves_the_narrow_layout(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.narrow
        await pilot.resize_terminal(140, 40)
        await settle(pilot, lambda: not app.narrow)
        assert app.query_one(MachineList).display


def footer_keys(app: ReplayApp, width: int) -> set[str]:
    """The keys whose footer entry is wholly inside the screen's `width` columns."""
    from textual.widgets import Footer
    found = set()
    for widget in app.query_one(Footer).query("*"):
        key = getattr(widget, "key", None)
        region = widget.region
        if isinstance(key, str) and region.width and region.right <= width:
            found.add(key)
    return found


# ---------------------------------------------------------------------- 10. smaller ones


async def test_ticked_and_unticked_filters_differ_without_colour(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f", "c")  # tick "canceled"
        await settle(pilot)
        flist = app.screen.query_one(FilterList)
        lines = [strip.text for strip in (flist.render_line(y) for y in range(4))]
        ticked = next(line for line in lines if "canceled" in line)
        unticked = next(line for line in lines if "auto" in line)
        assert ticked[:4] != unticked[:4]  # the characters differ, not just their colour
        assert TICKED in ticked[:4] and TICKED not in unticked[:4]


async def test_space_at_the_last_transition_says_why_nothing_plays(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=12)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert not app.playing and "last transition" in header(app)
        await pilot.press("left")
        await settle(pilot)
        assert "last transition" not in header(app)


async def test_wall_clock_says_utc_and_the_date(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3, time_mode="wall")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        day = datetime.fromtimestamp(app.tx.end_ns // 10**9, UTC).strftime("%Y-%m-%d")
        assert f"{day} " in header(app) and " UTC" in header(app)
        tlist = app.query_one(TransitionList)
        assert "time UTC" in tlist.render_header(0, 120).plain
    assert when(0, None, "wall") == "1970-01-01 00:00:00.000000 UTC"
    assert when(0, None, "wall", column="time") == "00:00:00.000000"
    assert when(86_400 * 10**9 + 5_000, None, "wall", column="date") == "01-02 00:00:00.000005"
    assert spans_days(0, 86_400 * 10**9) and not spans_days(0, 86_399 * 10**9)
