"""The TUI's UI-independent parts: state rows at a step, the filtered timeline, `j`/`J`
search, and the terminal graph drawing."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest

import amnode as am
from amdbg.filters import involves
from amdbg.graph import machine_graph, network_graph
from amdbg.session import Session
from amdbg.tui.canvas import draw_graph, edge_relations, legend
from amdbg.tui.frame import MARK_REMOVED, build_frame
from amdbg.tui.jump import Touching, find_touching, nearest
from amdbg.tui.keys import KEYS
from amdbg.tui.timeline import FILTERS, Timeline
from amnode.telemetry import Recorder

SCHEMA = {
    "Start": am.State(),
    "Ready": am.State(auto=True, require=["Start"]),
    "Busy": am.State(require=["Ready"], remove=["Idle"]),
    "Idle": am.State(remove=["Busy"]),
    "Ping": am.State(multi=True),
    "Healthcheck": am.State(),
}


class Handlers:
    def BusyEnter(self, e: am.Event) -> bool:
        return e.args.get("ok", True)


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.amrec"
    # a generous handler timeout: no scheduler stall may cancel a transition here
    m = am.Machine(SCHEMA, id="worker", handlers=Handlers(), handler_timeout=60.0)
    with Recorder(path) as r:
        r.attach(m)
        m.add("Start")                      # 1 Start, (2) Ready auto
        m.add("Busy")                       # Busy, -Idle
        m.add("Idle")                       # Idle, -Busy
        m.add("Busy", {"ok": False})        # canceled by BusyEnter
        m.add("Ping")
        m.add("Ping")                       # multi: +2
        m.add("Healthcheck")
        m.add("Start")                      # empty (already active)
        m.add("Busy")
    m.dispose()
    return path


@pytest.fixture
def machine(rec: Path):
    with Session.open(rec) as s:
        yield s.select_machine("worker")


def number_of(m, pred) -> int:
    return next(tx.number for tx in m.transitions() if pred(tx))


def test_frame_after_a_transition_marks_changes(machine) -> None:
    n = number_of(machine, lambda tx: tx.called == ["Idle"])
    f = build_frame(machine, machine.transition(n))
    idle, busy = f.row("Idle"), f.row("Busy")
    assert idle.active and idle.added and idle.called and idle.marks.startswith("+")
    assert not busy.active and busy.removed and busy.marks == MARK_REMOVED
    assert busy.relations() == [("require", ("Ready",)), ("remove", ("Idle",))]
    assert f.row("Ready").auto and f.row("Ping").multi


def test_frame_as_of_each_step(machine) -> None:
    n = number_of(machine, lambda tx: tx.called == ["Idle"])
    tx = machine.transition(n)
    f0 = build_frame(machine, tx, 0)
    assert f0.row("Busy").active and not f0.row("Idle").active and not f0.touched
    done = build_frame(machine, tx, len(tx.steps))
    assert [r.tick for r in done.rows] == list(tx.time_after)
    for k in range(len(tx.steps) + 1):
        f = build_frame(machine, tx, k)
        applied = tx.steps[:k]
        assert f.row("Idle").added == any(s.type == "activate" and s.to_state == "Idle"
                                          for s in applied)
    assert build_frame(machine, tx, 999).step == len(tx.steps)  # clamped


def test_frame_of_a_canceled_transition(machine) -> None:
    n = number_of(machine, lambda tx: not tx.accepted and tx.called == ["Busy"])
    tx = machine.transition(n)
    f = build_frame(machine, tx)
    busy = f.row("Busy")
    assert busy.called and busy.cancel and not busy.active and "!" in busy.marks
    assert busy.handler  # BusyEnter ran
    stepped = build_frame(machine, tx, len(tx.steps))
    assert [r.tick for r in stepped.rows] == list(tx.time_before)  # nothing was applied


def test_frame_multi_reentry_adds_two(machine) -> None:
    pings = [tx for tx in machine.transitions() if tx.called == ["Ping"]]
    second = pings[1]
    f = build_frame(machine, second, len(second.steps))
    i = second.state_names.index("Ping")
    assert f.row("Ping").tick == second.time_before[i] + 2 == second.time_after[i]


def test_frame_without_transitions(machine) -> None:
    f = build_frame(machine, None)
    assert [r.name for r in f.rows] == machine.state_names and f.step_count == 0


def test_timeline_filters_and_counts(machine) -> None:
    tl = Timeline(machine)
    assert len(tl) == len(machine) and tl.counts is None and tl.next(1) == 2
    tl.set_hidden({"canceled"})
    assert tl.pending and len(tl) == len(machine)  # waits for the scan
    assert tl.scan() and not tl.pending
    txs = list(machine.transitions())
    counts = tl.counts
    assert counts["canceled"] == sum(not tx.accepted for tx in txs) >= 1
    assert counts["auto"] == sum(tx.is_auto for tx in txs) >= 1
    assert counts["health"] == sum(tx.is_health for tx in txs) >= 1
    assert counts["empty"] == sum(tx.accepted and tx.time_before == tx.time_after
                                  and not tx.is_check for tx in txs) >= 1
    visible = [tx.number for tx in txs if tx.accepted]
    assert [tl.number(i) for i in range(len(tl))] == visible
    canceled = next(tx.number for tx in txs if not tx.accepted)
    assert not tl.visible(canceled) and tl.next(canceled - 1) == canceled + 1
    assert tl.prev(canceled + 1) == canceled - 1
    assert tl.row(canceled) == visible.index(canceled + 1)
    tl.set_hidden(set(FILTERS))
    assert all(not (not tx.accepted or tx.is_auto or tx.is_health)
               for tx in txs if tl.visible(tx.number))
    with pytest.raises(ValueError):
        tl.set_hidden({"nope"})


def test_timeline_scan_stops_and_resumes(machine) -> None:
    tl = Timeline(machine)
    calls = []
    assert not tl.scan(chunk=2, stop=lambda: len(calls.append(1) or calls) > 2)
    assert not tl.ready and 0 < tl.progress < 1
    assert tl.scan(chunk=2) and tl.ready and tl.progress == 1.0


def test_jump_finds_every_touching_transition(machine) -> None:
    for state in ("Busy", "Ping", "Healthcheck", "Start"):
        expected = [tx.number for tx in machine.transitions() if involves(tx, state)]
        got, n = [], 0
        while (n := find_touching(machine, state, n, 1).number) is not None:
            got.append(n)
        assert got == expected, state
        back, n = [], len(machine) + 1
        while (n := find_touching(machine, state, n, -1).number) is not None:
            back.append(n)
        assert back == expected[::-1], state
    assert find_touching(machine, "Busy", len(machine), 1) == Touching(None, True)
    assert find_touching(machine, "Busy", 1, -1) == Touching(None, True)


def test_jump_skips_hidden_and_can_stop(machine) -> None:
    expected = [tx.number for tx in machine.transitions()
                if involves(tx, "Busy") and tx.accepted]
    visible = {tx.number for tx in machine.transitions() if tx.accepted}
    assert find_touching(machine, "Busy", expected[0], 1,
                         visible=visible.__contains__).number == expected[1]
    assert find_touching(machine, "Busy", 0, 1, stop=lambda: True) == Touching(None, False)
    assert find_touching(machine, "Busy", len(machine) + 1, -1,
                         stop=lambda: True) == Touching(None, False)


@pytest.fixture(scope="module")
def heartbeats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 Heartbeat adds (each changes its tick: Multi) between two visible ones."""
    path = tmp_path_factory.mktemp("hb") / "hb.amrec"
    m = am.Machine({"Start": am.State(), "Heartbeat": am.State(multi=True)}, id="hb")
    with Recorder(path) as r:
        r.attach(m)
        m.add("Start")
        m.add("Heartbeat", {"visible": "yes"})  # a health transition left visible below
        for _ in range(3000):
            m.add("Heartbeat")
        m.add("Heartbeat", {"visible": "yes"})
    m.dispose()
    return path


def test_jump_over_thousands_of_hidden_tick_changes(heartbeats: Path) -> None:
    """Every hidden tick change used to cost a recursion: RecursionError in the worker, which
    made Textual exit the app."""
    with Session.open(heartbeats) as s:
        m = s.select_machine("hb")
        shown = {tx.number for tx in m.transitions() if not tx.is_health or tx.args}
        assert len(m) == 3003 and len(shown) == 3
        first, last = 2, len(m)
        assert find_touching(m, "Heartbeat", first, 1, visible=shown.__contains__) == \
            Touching(last, True)
        assert find_touching(m, "Heartbeat", last, -1, visible=shown.__contains__) == \
            Touching(first, True)
        assert find_touching(m, "Start", first, 1, visible=shown.__contains__) == \
            Touching(None, True)


def test_jump_reads_at_most_max_scan_transitions(heartbeats: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with Session.open(heartbeats) as s:
        m = s.select_machine("hb")
        decoded: list[int] = []
        read = m.transition
        monkeypatch.setattr(m, "transition", lambda n: decoded.append(n) or read(n))
        assert find_touching(m, "Start", 1, 1, max_scan=100) == Touching(None, False)
        assert decoded == list(range(2, 102))
        assert find_touching(m, "Start", 1, 1, max_scan=len(m)) == Touching(None, True)
        decoded.clear()
        assert find_touching(m, "Start", len(m), -1, max_scan=500) == Touching(None, False)
        assert sorted(decoded) == list(range(len(m) - 500, len(m)))
        assert find_touching(m, "Start", len(m), -1, max_scan=len(m)) == Touching(1, True)


def test_canvas_draws_every_node_and_labelled_edge() -> None:
    schema = {
        "A": {"require": ["B"], "add": ["C"]},
        "B": {"require": ["D"]},
        "C": {"remove": ["A"]},
        "D": {},
        "E": {"after": ["A"]},
        "Lonely": {},
    }
    g = machine_graph(schema, list(schema), active=["B"], touched=["C"], called=["C"])
    d = draw_graph(g, edges={("A", "B")})
    text = d.plain()
    for name in ("A", "B*", "C", "D", "E", "Lonely"):
        assert re.search(rf"\[ *{re.escape(name)} *\]", text), name
    for label in ("req", "add", "rm", "aft"):
        assert label in text
    assert "▼" in text and "▲" in text  # A->C downwards, C removes A upwards
    # rows: A above B and C, B above D; the isolated node last
    ys = {n: d.boxes[n][1] for n in d.boxes}
    assert ys["A"] < ys["B"] < ys["D"] and ys["A"] < ys["C"] and ys["Lonely"] == max(ys.values())
    # boxes do not overlap
    for n, (x, y, w) in d.boxes.items():
        for o, (x2, y2, w2) in d.boxes.items():
            if n != o and y == y2:
                assert x + w <= x2 or x2 + w2 <= x
    # touched state highlighted, the bold edge is bold
    x, y, _ = d.boxes["C"]
    assert any("yellow" in str(s.style) and s.start <= x + 1 < s.end for s in d.lines[y].spans)
    assert any("bold" in str(s.style) for line in d.lines for s in line.spans
               if "cyan" in str(s.style))
    assert "require" in legend(edge_relations(g)).plain


def test_canvas_long_edges_pass_through_rows() -> None:
    g = nx.DiGraph()
    for n in "ABCD":
        g.add_node(n)
    for u, v in (("A", "B"), ("B", "C"), ("C", "D"), ("A", "D")):
        g.add_edge(u, v, relation="require", relations=["require"])
    d = draw_graph(g)
    lines = d.plain().splitlines()
    assert len({d.boxes[n][1] for n in "ABCD"}) == 4
    yb = d.boxes["B"][1]
    assert "│" in lines[yb].replace("[B]", "")  # A->D passes B's row beside B


def test_canvas_network_and_empty() -> None:
    g = network_graph([{"id": "root", "parent": None}, {"id": "kid", "parent": "root",
                                                          "links": [("root", "mutates")]}])
    text = draw_graph(g).plain()
    assert "[root]" in text and "[kid]" in text
    # on the drawing or listed below it; "parent", the word the CLI uses
    assert "parent" in text and "child" not in text and "mutates" in text
    assert draw_graph(nx.DiGraph()).plain() == "(no nodes)"


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["docs/amdbg.md", "README.md"])
def test_docs_list_every_key(doc: str) -> None:
    text = (ROOT / doc).read_text()
    for key in KEYS:
        assert f"| `{key.shown}` | {key.description} |" in text, (doc, key.shown)


def test_canvas_merges_mutual_removes_into_one_two_headed_edge() -> None:
    g = machine_graph({"On": {"remove": ["Off"]}, "Off": {"remove": ["On"]}}, ["On", "Off"])
    text = draw_graph(g).plain()
    assert text.count("rm") == 1 and text.count("▲") == 2
    g = machine_graph({"On": {"remove": ["Off"]}, "Off": {"add": ["On"]}}, ["On", "Off"])
    text = draw_graph(g).plain()
    assert "rm" in text and "add" in text


def test_nearest_by_wall_time(machine) -> None:
    times = list(machine.end_times)
    assert nearest(machine, times[0] - 10**9) == 1
    assert nearest(machine, times[-1] + 10**9) == len(machine)
    for i in range(len(times) - 1):
        a, b = times[i], times[i + 1]
        assert nearest(machine, a) == i + 1
        assert nearest(machine, a + (b - a) // 2) == i + 1  # a tie goes to the earlier one
        if b - a > 2:
            assert nearest(machine, b - 1) == i + 2
