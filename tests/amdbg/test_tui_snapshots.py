"""Screenshots of the main screens of `amdbg replay` (pytest-textual-snapshot).

The recording is made here from the order pipeline example with seeded transition ids, and
the app runs with times hidden (`--times off`), so the screens depend only on what happened,
never on when or how fast: the snapshots survive re-recording and format changes. Update
them after an intended change with `pytest tests/amdbg/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import time
from pathlib import Path

from amdbg.session import Session
from amdbg.tui import ReplayApp

ROOT = Path(__file__).resolve().parents[2]
SIZE = (160, 48)


def settled(*keys: str):
    """Press `keys`, then wait until the background lookups are done (no timing in shots)."""

    async def run(pilot) -> None:
        app = pilot.app
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        deadline = time.monotonic() + 60  # only stops a test that would wait forever
        while not (app.forks is not None and all(t.ready for t in app.timelines.values())
                   and (app.view != "network" or app._network is not None)):
            assert time.monotonic() < deadline, "background lookups never finished"
            await pilot.pause(0.02)
        await pilot.pause()

    return run


def test_main_screen_on_a_vetoed_transition(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7, time_mode="off")
    assert snap_compare(app, terminal_size=SIZE, run_before=settled())


def test_stepping_inside_a_transition(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="order-1001", number=5, time_mode="off")
    keys = ["right_square_bracket"] * 3
    assert snap_compare(app, terminal_size=SIZE, run_before=settled(*keys))


def test_relation_graph(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7, time_mode="off")
    assert snap_compare(app, terminal_size=SIZE, run_before=settled("g"))


def test_network_of_machines(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=5, time_mode="off")
    assert snap_compare(app, terminal_size=SIZE, run_before=settled("n"))


def test_help(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=5, time_mode="off")
    assert snap_compare(app, terminal_size=SIZE, run_before=settled("question_mark"))


def test_filter_dialog_and_filtered_list(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="orders", number=1, time_mode="off")
    assert snap_compare(app, terminal_size=SIZE, run_before=settled("f", "a"))


def test_list_with_canceled_and_auto_hidden(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=1, time_mode="off")
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=settled("f", "c", "a", "enter", "end"))


def test_narrow_layout_at_80x24(snap_compare, session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7, time_mode="off")
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled())


def test_light_theme(snap_compare, session: Session) -> None:
    from amdbg.tui import palette

    app = ReplayApp(session, machine="order-1001", number=5, time_mode="off", theme="light")
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=settled("right_square_bracket"))
    finally:
        palette.use("dark")
