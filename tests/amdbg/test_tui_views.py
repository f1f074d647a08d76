"""The views am-dbg users look for, driven through Textual's Pilot: the matrix (`m`), rain
(`r`), log (`l`) and queue (`u`) views, the tags bar (`#`) and state groups (`G`).

Recordings: the order workflow recorded by the session fixture (seeded), the shipped
node-pool sample (its supervisor's schema has state groups), a hostile recording (control
characters in every string) and a small machine whose handler fails with a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers.tui import settle
from textual.widget import Widget
from textual.widgets import Input

import amnode as am
from amdbg.session import Session
from amdbg.tui import ReplayApp, palette
from amdbg.tui.matrix import (
    RAIN_ACTIVE,
    RAIN_ACTIVE_TOUCHED,
    RAIN_CANCELED_CALL,
    RAIN_DEACTIVATED,
    RAIN_NOTHING,
    build_matrix,
    columns,
    rain_row,
)
from amdbg.tui.widgets.detail import TransitionDetail
from amdbg.tui.widgets.graph_view import GraphView
from amdbg.tui.widgets.log_pane import LogPane
from amdbg.tui.widgets.matrix_view import FIXED_ROWS, MatrixView
from amdbg.tui.widgets.queue_pane import DONE, LATER, PENDING, QueueList, QueuePane
from amdbg.tui.widgets.rain_view import LEAD, RainView
from amdbg.tui.widgets.state_view import StateView
from amdbg.tui.widgets.tags_bar import TagsBar
from amnode.telemetry import Recorder

ROOT = Path(__file__).resolve().parents[2]
NODE_POOL = ROOT / "recordings" / "node-pool.amrec"
SUPERVISOR = "ns-hash-demo-000000-0"
SIZE = (160, 48)


def lines(widget: Widget) -> list[str]:
    """What the widget draws, one string per line (trailing blanks dropped)."""
    return ["".join(s.text for s in widget.render_line(y)).rstrip()
            for y in range(widget.size.height)]


def shown(app: ReplayApp, widget: Widget) -> bool:
    node = widget
    while node is not None and node is not app.screen:
        if not node.display:
            return False
        node = node.parent
    return True


# ---------------------------------------------------------------------- the model


def test_matrix_of_a_vetoed_transition(session: Session) -> None:
    machine = session.recording.machine("order-1002")
    tx = machine.transition(7)  # add Paid, vetoed by PaidEnter
    names = machine.state_names
    m = build_matrix(tx, columns(names, None))
    paid = names.index("Paid")
    assert m.called == [1 if n == "Paid" else 0 for n in names]
    assert m.deltas == [0] * len(names) and m.delta_sum == 0  # canceled: no tick moved
    bits = m.relations[paid][paid]
    assert bits & 32 and bits & 2  # called, and its handler ran
    pending = names.index("PaymentPending")
    assert m.relations[pending][paid] & 1  # Paid removes PaymentPending: a relation step
    # as of step 0 nothing happened yet
    assert build_matrix(tx, columns(names, None), 0).relations == \
        [[0] * len(names) for _ in names]


def test_matrix_of_a_group_keeps_its_columns(session: Session) -> None:
    machine = session.recording.machine("order-1002")
    names = machine.state_names
    group = [names.index("Paid"), names.index("PaymentPending")]
    m = build_matrix(machine.transition(7), columns(names, group))
    assert m.names == sorted(["Paid", "PaymentPending"], key=names.index)
    assert m.relations[m.names.index("PaymentPending")][m.names.index("Paid")] & 1


def test_rain_characters(session: Session) -> None:
    machine = session.recording.machine("order-1002")
    names = machine.state_names
    cols = columns(names, None)
    cancel = machine.transition(11)  # add Cancelled: removes PaymentPending
    row = dict(zip(names, rain_row(cancel, cols), strict=True))
    assert row["Cancelled"].char == RAIN_ACTIVE_TOUCHED and row["Cancelled"].called
    assert row["PaymentPending"].char == RAIN_DEACTIVATED
    assert row["Shipped"].char == RAIN_NOTHING
    vetoed = dict(zip(names, rain_row(machine.transition(7), cols), strict=True))
    assert vetoed["Paid"].char == RAIN_CANCELED_CALL and vetoed["Paid"].called
    err = dict(zip(names, rain_row(machine.transition(12), cols), strict=True))
    assert err["Exception"].char in (RAIN_ACTIVE, RAIN_ACTIVE_TOUCHED)
    assert err["Exception"].error and not err["Notify"].error


# ---------------------------------------------------------------------- matrix


async def test_matrix_replaces_the_detail_and_follows_the_cursor(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        detail = app.query_one(TransitionDetail)
        matrix = app.query_one(MatrixView)
        assert shown(app, detail) and not shown(app, matrix)
        await pilot.press("alt+m")
        await settle(pilot)
        assert shown(app, matrix) and not shown(app, detail)
        assert app.focused is matrix
        assert matrix.border_title == f"Matrix #7: Δ0 t{app.tx.time_sum}"
        text = lines(matrix)
        called = next(line for line in text if line.startswith(FIXED_ROWS[0]))
        assert called.split()[1:].count("1") == 1  # only Paid was called
        await pilot.press("right")  # the app's key: the next transition
        await settle(pilot)
        assert app.number == 8 and matrix.border_title.startswith("Matrix #8:")
        await pilot.press("right_square_bracket")  # step mode: the steps so far
        await settle(pilot)
        assert matrix.border_title.startswith("Matrix #8 step 0:")
        # moving onto a state's row selects the state
        await pilot.press("down", "down", "down")
        await settle(pilot)
        assert app.state == matrix.matrix.names[matrix.cursor - len(FIXED_ROWS)]
        await pilot.press("alt+m")  # back: the detail, and the focus on a visible pane
        await settle(pilot)
        assert shown(app, detail) and not shown(app, matrix)
        assert app.focused is not None and shown(app, app.focused)


# ---------------------------------------------------------------------- rain


async def open_rain(app: ReplayApp, pilot: Any) -> RainView:
    """`r`: the rain view, once the app has drawn it."""
    await pilot.press("r")
    await settle(pilot)
    return app.query_one(RainView)


async def test_rain_rows_follow_the_cursor_and_select(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        rain = await open_rain(app, pilot)
        assert app.focused is rain and rain.row_count() == len(app.machine)
        text = lines(rain)
        marked = [line for line in text if line.startswith("▶")]
        assert len(marked) == 1 and "#7" in marked[0]
        await pilot.press("down", "down")
        await settle(pilot)
        assert app.number == 9 and rain.cursor == 8
        await pilot.press("left")  # the app's key moves the rain cursor too
        await settle(pilot)
        assert app.number == 8 and rain.cursor == 7
        # a click on a cell: that state and that transition
        names = app.machine.state_names
        col = names.index("Paid")
        row = 3  # transition 4 (no scrolling: 12 rows fit)
        await pilot.click(RainView, offset=(1 + LEAD + col, 1 + rain.header_lines + row))
        await settle(pilot, lambda: app.number == 4)
        assert app.state == "Paid" and "Paid" in rain.border_title


async def test_rain_skips_filtered_transitions(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(pilot)
        app.set_filters(frozenset({"canceled"}))
        await settle(pilot)
        rain = app.query_one(RainView)
        accepted = [tx.number for tx in app.machine if tx.accepted]
        assert rain.row_count() == len(accepted)
        shown_numbers = [int(m.group(1)) for line in lines(rain)
                         if (m := re.search(r"#(\d+)", line))]
        assert shown_numbers == accepted


@pytest.fixture
def long_machine(tmp_path: Path) -> Path:
    """One machine with 300 transitions (many screens of rain)."""
    path = tmp_path / "long.amrec"
    m = am.Machine({"A": am.State(), "B": am.State(), "C": am.State(multi=True)}, id="long")
    with Recorder(path) as rec:
        rec.attach(m)
        for i in range(100):
            m.add("A" if i % 2 else "B")
            m.remove("A" if i % 2 else "B")
            m.add("C")
    m.dispose()
    return path


def rain_numbers(rain: RainView) -> list[int]:
    """The transition numbers of the rain rows on screen."""
    return [int(m.group(1)) for line in lines(rain) if (m := re.search(r"#(\d+)", line))]


async def test_rain_pages_and_decodes_ahead(long_machine: Path) -> None:
    with Session.open(long_machine) as s:
        app = ReplayApp(s, machine="long", number=1)
        async with app.run_test(size=SIZE) as pilot:
            rain = await open_rain(app, pilot)
            page = rain.page
            assert rain_numbers(rain)[:page] == list(range(1, page + 1))
            # resting: the page below the screen is decoded before it is shown
            below = range(page + 1, 2 * page + 1)
            await settle(pilot, lambda: all(("long", n) in app.cache for n in below))
            await pilot.press("pagedown")
            await settle(pilot, lambda: app.number == 1 + page)
            shown_rows = rain_numbers(rain)
            assert app.number in shown_rows
            assert shown_rows == list(range(shown_rows[0], shown_rows[0] + len(shown_rows)))
            marked = [line for line in lines(rain) if line.startswith("▶")]
            assert len(marked) == 1 and f"#{app.number} " in marked[0] + " "
            for _ in range(3):  # down past the screen's bottom: the rows scroll by one
                await pilot.press("down")
            await settle(pilot, lambda: app.number == 4 + page)
            assert rain_numbers(rain)[-1] >= app.number
            await pilot.press("end")
            await settle(pilot, lambda: app.number == len(app.machine))
            assert rain_numbers(rain)[-1] == len(app.machine)
            await pilot.press("pageup")
            await settle(pilot, lambda: app.number == len(app.machine) - page)
            assert app.number in rain_numbers(rain)


async def test_rain_redraws_rows_in_the_new_theme(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=3)
    async with app.run_test(size=SIZE) as pilot:
        rain = await open_rain(app, pilot)

        def cursor_bg() -> set[str]:
            y = rain.header_lines + rain.cursor - int(rain.scroll_y)
            return {s.style.bgcolor.name for s in rain.render_line(y)
                    if s.style is not None and s.style.bgcolor is not None}

        assert palette.DARK.cursor_focus in cursor_bg()
        await pilot.press("T")
        await settle(pilot, lambda: app.theme_name == "light")
        assert palette.LIGHT.cursor_focus in cursor_bg()
        assert palette.DARK.cursor_focus not in cursor_bg()


# ---------------------------------------------------------------------- log


async def test_log_pane_lines_around_the_cursor_and_level(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        await settle(pilot)
        log = app.query_one(LogPane)
        assert app.focused is log
        text = [t.plain for t, _ in log.lines]
        assert any("[cancel] (Created Validated Paid) by PaidEnter" in t for t in text)
        assert any(t.lstrip().startswith("#7 │") for t in text)
        assert {n for _, n in log.lines} >= {1, 7, 12}  # the window around #7
        current = [t.plain for t, n in log.lines if n == 7]
        assert len(current) == len(app.tx.log) + len(app.tx.pre_log)
        assert log.border_title.startswith("Log ≤5 everything")
        await pilot.press("2")  # changes only
        await settle(pilot)
        levels = {line.level for n in {n for _, n in log.lines}
                  for line in [*app.machine.transition(n).log,
                               *app.machine.transition(n).pre_log]}
        assert 3 in levels
        kept = [t.plain for t, _ in log.lines]
        assert not any("[cancel]" in t for t in kept)  # level 3
        assert any("[state] +Cancelled -PaymentPending" in t for t in kept)  # level 2
        await pilot.press("5", "c")  # timestamps: the transition's wall-clock end
        await settle(pilot)
        first = next(t.plain for t, n in log.lines if n == 7)
        assert re.search(r"#7 (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d{6}( UTC)?", first)
        await pilot.press("right")
        await settle(pilot)
        assert log.current == 8


async def test_log_pane_wraps_on_w(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=9)
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.press("l")
        await settle(pilot)
        log = app.query_one(LogPane)
        long = [t for t, _ in log.lines if t.cell_len > log.scrollable_content_region.width]
        assert long  # the [queue:add] ErrPayment ... line is cropped
        before = len(log.lines)
        await pilot.press("w")
        await settle(pilot)
        assert len(log.lines) > before
        assert all(t.cell_len <= log.scrollable_content_region.width for t, _ in log.lines)


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """A machine whose final handler raises: the error log line carries a traceback."""

    class Handlers:
        def BoomState(self, e: am.Event) -> None:
            raise KeyError("boom")

    path = tmp_path / "failing.amrec"
    m = am.Machine({"Boom": am.State(), "Other": am.State()}, id="failing",
                   handlers=Handlers(), log_level=am.LogLevel.EVERYTHING)
    with Recorder(path) as rec:
        rec.attach(m)
        m.add("Other")
        m.add("Boom")
        m.add("Other")
    m.dispose()
    return path


async def test_log_pane_tracebacks_toggle(failing: Path) -> None:
    with Session.open(failing) as s:
        machine = s.recording.machine("failing")
        multi = [(tx.number, line) for tx in machine for line in [*tx.log, *tx.pre_log]
                 if "\n" in line.text]
        assert multi, "the failing handler's error line holds its traceback"
        number, entry = multi[0]
        extra = entry.text.count("\n")
        app = ReplayApp(s, machine="failing", number=number)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("l")
            await settle(pilot)
            log = app.query_one(LogPane)
            first = entry.text.split("\n")[0]
            collapsed = [t.plain for t, _ in log.lines]
            at = next(i for i, t in enumerate(collapsed) if first in t)
            assert f"(+{extra} lines" in collapsed[at]
            count = len(collapsed)
            await pilot.press("x")
            await settle(pilot)
            expanded = [t.plain for t, _ in log.lines]
            assert len(expanded) == count + extra
            assert "traces" in log.border_title


# ---------------------------------------------------------------------- queue


async def test_queue_pane_pending_filter_and_run(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=11)  # Notify queued, runs in #12
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await settle(pilot)
        pane = app.query_one(QueuePane)
        lst = app.query_one(QueueList)
        assert app.focused is lst
        records = app.machine.queued()
        assert lst.row_count() == len(records)
        notify = next(i for i, q in enumerate(records) if q.called == ["Notify"])
        statuses = lines(lst)
        assert statuses[notify].startswith(PENDING) and "Notify" in statuses[notify]
        assert "1 pending after #11" in pane.border_title
        # the filter box: every word must match
        box = app.query_one("#queue-filter", Input)
        box.focus()
        await pilot.press(*"notify")
        await settle(pilot)
        assert lst.row_count() == 1
        box.value = "pending"
        await settle(pilot)
        assert lst.row_count() == 1 and lst.rows == [notify]
        box.value = "prepended auto"
        await settle(pilot)
        assert lst.row_count() == sum(1 for q in records if q.prepended and q.is_auto)
        box.value = "notify"
        await pilot.press("enter")  # to the list; enter there: the transition that ran it
        await settle(pilot)
        assert app.focused is lst
        await pilot.press("enter")
        await settle(pilot, lambda: app.number == 12)
        assert app.tx.called == ["Notify"]
        assert lines(lst)[0].startswith(DONE)
        await pilot.press("home")
        await settle(pilot)
        assert lines(lst)[0].startswith(LATER)


async def test_queue_filter_keeps_q_and_escape_returns(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=11)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await settle(pilot)
        box = app.query_one("#queue-filter", Input)
        box.focus()
        await pilot.press("q")  # typed into the box, the app keeps running
        await settle(pilot)
        assert box.value == "q" and app.is_running
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is app.query_one(QueueList)


# ---------------------------------------------------------------------- tags and groups


async def test_tags_bar(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bar = app.query_one(TagsBar)
        assert not bar.display  # the first screen keeps its size
        await pilot.press("number_sign")
        await settle(pilot)
        assert bar.display
        assert bar.text.plain.startswith("#order ⇡ #pipeline #shop:demo")


async def test_groups_filter_states_matrix_rain_and_graph() -> None:
    with Session.open(NODE_POOL) as s:
        machine = s.recording.machine(SUPERVISOR)
        order = machine.groups_order
        names = machine.state_names
        app = ReplayApp(s, machine=SUPERVISOR, number=len(machine))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            states = app.query_one(StateView)
            assert len(states.frame.rows) == len(names)
            await pilot.press("G")
            await settle(pilot)
            group = [names[i] for i in sorted(machine.groups[order[0]])]
            assert app.group == order[0]
            assert [r.name for r in states.frame.rows] == group
            assert f"group {order[0]}" in states.border_title
            bar = app.query_one(TagsBar)
            assert bar.display and f"group: {order[0]}" in bar.text.plain
            await pilot.press("alt+m")
            await settle(pilot)
            assert app.query_one(MatrixView).matrix.names == group
            await pilot.press("r")
            await settle(pilot)
            assert app.query_one(RainView).cols == sorted(machine.groups[order[0]])
            await pilot.press("g")
            await settle(pilot)
            graph = app.query_one(GraphView)
            drawn = graph.text
            assert all(name in drawn for name in group)
            assert "WorkersAvailable" not in drawn
            await pilot.press("g")
            for _ in order:  # cycles through every group, then back to all states
                await pilot.press("G")
            await settle(pilot)
            assert app.group is None and len(states.frame.rows) == len(names)


async def test_group_key_on_a_machine_without_groups(session: Session) -> None:
    app = ReplayApp(session, machine="order-1002", number=7)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("G")
        await settle(pilot)
        assert app.group is None and app.is_running


# ---------------------------------------------------------------------- untrusted text


async def test_views_escape_hostile_recordings(hostile) -> None:
    with Session.open(hostile.path) as s:
        machine = next(m for m in s.machines if m.id == hostile.machine_id)
        app = ReplayApp(s, machine=machine.key, number=1)
        async with app.run_test(size=SIZE) as pilot:
            for key, widget in (("alt+m", MatrixView), ("r", RainView), ("l", LogPane),
                                ("u", QueueList)):
                await pilot.press(key)
                await settle(pilot)
                drawn = "\n".join(lines(app.query_one(widget)))
                assert drawn.strip()
                assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", drawn), key
            await pilot.press("number_sign")
            await settle(pilot)
            assert not re.search("[\x00-\x1f\x7f-\x9f]", app.query_one(TagsBar).text.plain)
            assert "\\x1b" in app.query_one(TagsBar).text.plain  # shown, escaped
