"""What am-dbg users look for in `amdbg replay`: back/forward through jumps, following a
"caused" link from the keyboard, jumping by 50, searching the state list, the light theme and
copying the mach:// address (OSC 52), driven through Textual's Pilot."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.tui import header, settle
from textual.widgets import OptionList

import amnode as am
from amdbg.session import Session
from amdbg.tui import ReplayApp, palette
from amdbg.tui.history import History, Position
from amdbg.tui.keys import JUMP_ROWS
from amdbg.tui.screens.caused import CausedScreen
from amdbg.tui.widgets.rows import cursor_style
from amdbg.tui.widgets.state_view import StateView
from amnode.telemetry import Recorder

SIZE = (160, 48)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine with 300 transitions (a toggling loop)."""
    path = tmp_path_factory.mktemp("rec") / "loop.amrec"
    m = am.Machine({"On": am.State(remove=["Off"]), "Off": am.State(remove=["On"])}, id="loop")
    with Recorder(path) as rec:
        rec.attach(m)
        for _ in range(150):
            m.add("On")
            m.add("Off")
    m.dispose()
    return path


def where(app: ReplayApp) -> tuple[str, int | None]:
    return app.machine.key, app.number


# ---------------------------------------------------------------------- history


def test_history_is_a_browser_history() -> None:
    h = History(limit=4)
    a, b, c = Position("m", 1), Position("m", 50), Position("n", 7)
    assert h.back(a) is None and not h.can_back
    h.jump(a, b)
    h.jump(Position("m", 53), c)  # the user stepped from b to 53, then jumped
    assert h.back(c) == Position("m", 53)
    assert h.back(Position("m", 53)) == a
    assert h.forward(a) == Position("m", 53)
    assert h.forward(Position("m", 53)) == c and not h.can_forward
    h.back(c)
    h.jump(Position("m", 53), Position("m", 9))  # a jump drops the forward entries
    assert not h.can_forward and h.entries[-1] == Position("m", 9)
    for n in range(10, 20):
        h.jump(h.entries[-1], Position("m", n))
    assert len(h.entries) == 4  # capped
    h.forget("m")
    assert h.entries == [] and not h.can_back


async def test_back_and_forward_through_jumps_searches_and_links(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("right")  # a step is not a jump: not in the history
        await pilot.press("end")  # a jump
        await settle(pilot)
        assert where(app) == ("order-1002", 12)
        await pilot.press("slash", *"1003", "enter")  # a search
        await settle(pilot, lambda: app.machine.key == "order-1003")
        searched = where(app)
        await pilot.press("less_than_sign")
        await settle(pilot)
        assert where(app) == ("order-1002", 12) and "back" in header(app)
        await pilot.press("less_than_sign")
        await settle(pilot)
        assert where(app) == ("order-1002", 4)  # where the jump started
        await pilot.press("less_than_sign")  # nothing earlier: says so, stays
        await settle(pilot)
        assert where(app) == ("order-1002", 4) and "no earlier jump" in header(app)
        await pilot.press("greater_than_sign", "greater_than_sign")
        await settle(pilot)
        assert where(app) == searched


async def test_source_link_is_a_jump_back_returns(session: Session) -> None:
    machine, tx, src = next(
        (m, t, sel) for m in session.machines for t in m.transitions()
        if t.source is not None and (sel := session.source(t)).machine is not None
        and sel.machine is not m)
    app = ReplayApp(session, machine=machine.key, number=tx.number)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert where(app) == (src.machine.key, src.number)
        await pilot.press("less_than_sign")
        await settle(pilot)
        assert where(app) == (machine.key, tx.number)


# ---------------------------------------------------------------------- caused links


async def test_c_follows_the_only_caused_transition(session: Session) -> None:
    machine = session.recording.machine("order-1002")
    tx, forks = next((t, f) for t in machine.transitions()
                     if len(f := session.forks(t)[0]) == 1)
    app = ReplayApp(session, machine="order-1002", number=tx.number)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.forks is not None)
        await pilot.press("c")
        await settle(pilot)
        assert where(app) == (forks[0].machine.key, forks[0].number)
        await pilot.press("less_than_sign")
        await settle(pilot)
        assert where(app) == ("order-1002", tx.number)


async def test_c_lists_several_caused_transitions_to_choose_from(session: Session) -> None:
    found = [(m, t, f) for m in session.machines for t in m.transitions()
             if len(f := session.forks(t)[0]) > 1]
    machine, tx, forks = found[0]
    app = ReplayApp(session, machine=machine.key, number=tx.number)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.forks is not None)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CausedScreen)
        options = app.screen.query_one(OptionList)
        assert options.option_count == len(forks)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, CausedScreen)
        assert where(app) == (forks[1].machine.key, forks[1].number)
        assert app.focused is not None and app.shown(app.focused)


async def test_c_without_caused_transitions_says_so(session: Session) -> None:
    machine = session.recording.machine("order-1002")
    tx = next(t for t in machine.transitions() if not session.forks(t)[0])
    app = ReplayApp(session, machine="order-1002", number=tx.number)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.forks is not None)
        await pilot.press("c")
        await settle(pilot)
        assert where(app) == ("order-1002", tx.number) and "caused no" in header(app)


# ---------------------------------------------------------------------- jump by 50


async def test_alt_arrows_jump_by_50_shown_transitions(loop: Path) -> None:
    with Session.open(loop) as s:
        app = ReplayApp(s, machine="loop", number=10)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: all(t.ready for t in app.timelines.values()))
            await pilot.press("alt+right")
            await settle(pilot)
            assert app.number == 10 + JUMP_ROWS
            await pilot.press("alt+left", "alt+left")  # clamped at the first
            await settle(pilot)
            assert app.number == 1
            await pilot.press("end", "alt+left")
            await settle(pilot)
            assert app.number == len(app.machine) - JUMP_ROWS
            await pilot.press("less_than_sign")
            await settle(pilot)
            assert app.number == len(app.machine)


# ---------------------------------------------------------------------- state search


async def test_slash_in_the_states_pane_finds_a_state(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        states = app.query_one(StateView)
        states.focus()
        await settle(pilot)
        await pilot.press("slash", *"paym")  # "q", "j", "s" etc. would be app keys
        await settle(pilot)
        assert app.state == "PaymentPending" and "/paym" in str(states.border_subtitle)
        await pilot.press("backspace", "backspace", "backspace", "backspace", *"pa")
        await settle(pilot)
        first = app.state
        assert "pa" in first.lower()
        await pilot.press("down")  # the next match
        await settle(pilot)
        assert app.state != first and "pa" in app.state.lower()
        await pilot.press("enter")
        await settle(pilot)
        assert states.query_text is None and not str(states.border_subtitle)
        chosen = app.state
        await pilot.press("j")  # an app key again: jumps by the found state
        await settle(pilot, lambda: app.number != 3 or "no transition" in header(app))
        assert app.state == chosen


async def test_state_search_keeps_the_apps_letter_keys_out(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(StateView).focus()
        await settle(pilot)
        await pilot.press("slash", "q", "t", "g")
        await settle(pilot)
        assert not app._exit and app.time_mode == "offset" and app.view == "panes"
        await pilot.press("escape")
        await settle(pilot)
        assert app.query_one(StateView).query_text is None


# ---------------------------------------------------------------------- theme


async def test_light_theme_from_the_start_and_by_key(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3, theme="light")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.theme == "textual-light" and palette.current() is palette.LIGHT
            assert cursor_style(True).bgcolor.name == palette.LIGHT.cursor_focus
            await pilot.press("T")
            await settle(pilot)
            assert app.theme == "textual-dark" and palette.current() is palette.DARK
            assert app.theme_name == "dark"
    finally:
        palette.use("dark")
    with pytest.raises(ValueError, match="unknown theme"):
        ReplayApp(session, theme="sepia")


# ---------------------------------------------------------------------- copy


async def test_y_copies_the_address(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.clipboard == app.tx.url and "copied" in header(app)
        await pilot.press("right_square_bracket", "right_square_bracket", "y")
        await settle(pilot)
        assert app.clipboard == f"{app.tx.url}/1"


async def test_y_never_copies_control_characters_from_a_recording(hostile) -> None:
    with Session.open(hostile.path) as s:
        key = next(m.key for m in s.machines if len(m) and "evil" in m.key)
        app = ReplayApp(s, machine=key, number=1)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("y")
            await settle(pilot)
            copied = app.clipboard
            assert copied.startswith("mach://")
            assert all(ch.isprintable() for ch in copied), repr(copied)
            assert "\x1b" not in copied and "\x07" not in copied
