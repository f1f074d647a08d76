"""The smaller amdbg command-line fixes and exports: the `ls` tree and notes, addresses whose
time no transition reached, canceled transitions' machine time, compressed packs, the wall
clock column, SVG export (with or without Graphviz) and steps as a Mermaid sequence diagram.
"""

from __future__ import annotations

import gzip
import json
import re
import stat
import sys
from pathlib import Path

import pytest

import amnode as am
from amdbg import cli
from amdbg.commands.ls import tree_prefixes
from amdbg.errors import SelectionError
from amdbg.session import Session
from amnode.telemetry import Recorder, RecordingError, open_recording
from amnode.telemetry.pack import inflate

ROOT = Path(__file__).resolve().parents[2]
ORDERS = str(ROOT / "recordings" / "orders.amrec")
CRAWLER = ROOT / "recordings" / "crawler"
NODE_POOL = str(ROOT / "recordings" / "node-pool.amrec")


class Run:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err


@pytest.fixture
def amdbg(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """amdbg(*argv) -> Run, in-process, output captured (a pipe, not a terminal)."""
    monkeypatch.delenv("AMNODE_RECORD", raising=False)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return Run(status, out, err)

    return run


class FailingFinal:
    """`BState` raises after B was applied; `CEnter` vetoes."""

    def BState(self, e: am.Event) -> None:
        raise KeyError("boom")

    def CEnter(self, e: am.Event) -> bool:
        return False


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """One machine, never disposed: add A (ok), add B (its final handler raises), add C
    (vetoed)."""
    path = tmp_path / "failing.amrec"
    m = am.Machine({"A": am.State(), "B": am.State(), "C": am.State()}, id="mx",
                   handlers=FailingFinal())
    with Recorder(path) as rec:
        rec.attach(m)
        m.add("A")
        m.add("B")
        m.add("C")
    return path


# ---------------------------------------------------------------------- ls


def test_tree_prefixes_draw_siblings_and_continuations() -> None:
    assert tree_prefixes([0, 1, 2, 2, 1, 2, 0, 1]) == [
        "", "├─ ", "│  ├─ ", "│  └─ ", "└─ ", "   └─ ", "", "└─ "]
    assert tree_prefixes([]) == []


def test_ls_tree_follows_the_parents(amdbg) -> None:
    r = amdbg("ls", NODE_POOL)
    assert r.status == 0
    with open_recording(NODE_POOL) as rec:
        parents = {m.key: (rec.parent(m).key if rec.parent(m) else None) for m in rec.machines}
    lines = r.out.splitlines()[4:]  # after the title, the summary, the header and the rule
    rows = [m for line in lines if (m := re.match(r"((?:[│ ]  )*)([├└]─ )(\S+)", line)
                                    or re.match(r"()()([^\s│├└]\S*)", line))]
    assert len(rows) == len(parents)  # other lines are wrapped cells
    stack: list[str] = []  # the machine at each depth
    for m in rows:
        line = m.group(0)
        depth = len(m.group(1)) // 3 + (1 if m.group(2) else 0)
        key = m.group(3)
        del stack[depth:]
        assert parents[key] == (stack[-1] if stack else None), line
        stack.append(key)
    assert len(stack) >= 1 and any("├─ " in line for line in lines)


def test_ls_notes_machines_never_disposed(amdbg, failing: Path) -> None:
    r = amdbg("ls", str(failing))
    row = next(line for line in r.out.splitlines() if line.startswith("mx"))
    assert row.endswith("⌁ never disposed")
    r = amdbg("ls", ORDERS)
    assert all(line.endswith("disposed") and "never" not in line
               for line in r.out.splitlines() if "order-100" in line)


# ---------------------------------------------------------------------- addresses


def test_address_time_no_transition_reached_is_an_error(amdbg) -> None:
    with open_recording(ORDERS) as rec:
        m = rec.machine("order-1002")
        last_t = m.transition(len(m)).time_sum
        first_3 = next(tx.number for tx in m.transitions() if tx.time_sum >= 3)
    r = amdbg("show", ORDERS, f"mach://order-1002?t={last_t + 1}")
    assert r.status == 1 and r.out == ""
    assert r.err.splitlines() == [
        f"amdbg: error: mach://order-1002?t={last_t + 1}: no transition of order-1002 "
        f"reaches machine time {last_t + 1}; its last ({len(m)}) is at t={last_t}"]
    r = amdbg("show", ORDERS, "mach://order-1002?q=99999")
    assert r.status == 1 and "reaches queue tick 99999" in r.err
    r = amdbg("show", ORDERS, "mach://order-1002?t=3", "--json")
    assert json.loads(r.out)["number"] == first_3
    with Session.open(ORDERS) as s:
        with pytest.raises(SelectionError, match="no transition of order-1002"):
            s.locate(address=f"mach://order-1002?t={last_t + 1}")
        assert s.locate(address=f"mach://order-1002?t={last_t}").number is not None


# ---------------------------------------------------------------------- canceled


def test_canceled_transition_machine_time(amdbg, failing: Path) -> None:
    vetoed = amdbg("show", str(failing), "-m", "mx", "-t", "-1")
    assert "CANCELED" in vetoed.out
    line = next(x for x in vetoed.out.splitlines() if x.startswith("machine time"))
    assert "->" not in line and line.endswith("unchanged (canceled)")
    # B's final handler raised: B was activated and removed again, its tick did move
    with open_recording(failing) as rec:
        tx = next(t for t in rec.machine("mx").transitions() if t.called == ["B"])
    failed = amdbg("show", str(failing), "-m", "mx", "-t", str(tx.number))
    line = next(x for x in failed.out.splitlines() if x.startswith("machine time"))
    before, after = sum(tx.time_before), tx.time_sum
    assert before != after
    assert line.split(None, 2)[2] == (f"t{before} -> t{after} (+{after - before}, ticks "
                                      "moved before it was canceled)")
    b_row = next(x for x in failed.out.splitlines() if x.startswith("B "))
    assert b_row.split() == ["B", "0", "2", "+-"]


# ---------------------------------------------------------------------- pack


def test_pack_compresses_and_reads_back(amdbg, tmp_path: Path) -> None:
    src = tmp_path / "crawler"
    src.mkdir()
    for f in CRAWLER.glob("*.amrec"):
        (src / f.name).write_bytes(f.read_bytes())
    plain, packed = tmp_path / "plain.amrec", src / "all.amrec.gz"
    assert amdbg("pack", str(src), str(plain)).status == 0
    r = amdbg("pack", str(src), str(packed))  # next to its sources: allowed when compressed
    assert r.status == 0 and "gzip-compressed" in r.out
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert packed.stat().st_size * 2 < plain.stat().st_size
    listing = [amdbg("ls", path, "--json").out for path in (str(src), str(packed), str(plain))]
    machines = [[(d["key"], d["transitions"]) for d in json.loads(x)] for x in listing]
    assert machines[0] == machines[1] == machines[2]  # the directory shows nothing twice
    assert {d["file"] for d in json.loads(listing[1])} == {str(packed)}
    shown = amdbg("show", str(packed), "-m", "sitemap", "-t", "1", "--json")
    assert json.loads(shown.out)["number"] == 1


def test_damaged_compressed_pack_is_one_line(amdbg, tmp_path: Path) -> None:
    packed = tmp_path / "o.amrec.gz"
    assert amdbg("pack", ORDERS, str(packed)).status == 0
    data = packed.read_bytes()
    packed.write_bytes(data[: len(data) // 2])
    r = amdbg("ls", str(packed))
    assert r.status == 1 and len(r.err.splitlines()) == 1 and "truncated" in r.err
    with pytest.raises(RecordingError, match="inflates beyond 1000 bytes"):
        inflate(_repack(tmp_path), limit=1000)


def _repack(tmp_path: Path) -> Path:
    """A valid compressed pack of the orders sample."""
    out = tmp_path / "ok.amrec.gz"
    cli.main(["pack", ORDERS, str(out)])
    return out


def test_directory_with_an_uncompressed_pack_shows_each_machine_once(amdbg,
                                                                      tmp_path: Path) -> None:
    src = tmp_path / "crawler"
    src.mkdir()
    for f in CRAWLER.glob("*.amrec"):
        (src / f.name).write_bytes(f.read_bytes())
    before = json.loads(amdbg("ls", str(src), "--json").out)
    assert amdbg("pack", str(src), str(tmp_path / "all.amrec")).status == 0
    (src / "all.amrec").write_bytes((tmp_path / "all.amrec").read_bytes())  # moved in later
    after = json.loads(amdbg("ls", str(src), "--json").out)
    assert [(d["key"], d["transitions"]) for d in after] == \
        [(d["key"], d["transitions"]) for d in before]
    assert not any("#" in d["key"] for d in after)


def test_uncompressed_pack_refuses_the_source_directory(amdbg, tmp_path: Path) -> None:
    src = tmp_path / "crawler"
    src.mkdir()
    for f in CRAWLER.glob("*.amrec"):
        (src / f.name).write_bytes(f.read_bytes())
    r = amdbg("pack", str(src), str(src / "all.amrec"))
    assert r.status == 2 and "would show twice" in r.err
    assert sorted(p.name for p in src.iterdir()) == sorted(p.name for p in CRAWLER.glob("*"))


# ---------------------------------------------------------------------- wall clock


def test_log_wall_clock_column_is_utc_with_a_date(amdbg) -> None:
    r = amdbg("log", ORDERS, "-m", "1004", "--times", "wall")
    header = next(x for x in r.out.splitlines() if x.lstrip().startswith("#"))
    assert "ended (UTC)" in header
    stamps = re.findall(r"\s(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)\s", r.out)
    with open_recording(ORDERS) as rec:
        assert len(stamps) == len(rec.machine("order-1004"))
    # a stamp copied from the table selects its transition
    again = amdbg("log", ORDERS, "-m", "1004", "--from", stamps[4], "--to", stamps[4])
    assert [int(x.split()[0]) for x in again.out.splitlines()
            if re.match(r"\s*\d+\s+\+", x)] == [5]


# ---------------------------------------------------------------------- exports


def _fake_dot(bin_dir: Path) -> None:
    """A `dot` that turns DOT on stdin into a tiny SVG naming the graph."""
    script = bin_dir / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys\nassert sys.argv[1:] == ['-Tsvg']\n"
                      "src = sys.stdin.read()\n"
                      "print('<svg xmlns=\"http://www.w3.org/2000/svg\"><!--', "
                      "src.splitlines()[0], '--></svg>')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_graph_svg_with_graphviz(amdbg, tmp_path: Path, monkeypatch) -> None:
    _fake_dot(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    r = amdbg("graph", ORDERS, "-m", "order-1002", "-t", "7", "--format", "svg")
    assert r.status == 0 and r.err == ""
    assert r.out.startswith("<svg") and 'digraph "order-1002"' in r.out
    out = tmp_path / "g.svg"
    r = amdbg("graph", CRAWLER.as_posix(), "--network", "--format", "svg", "-o", str(out))
    assert r.status == 0 and r.out == "" and out.read_text().startswith("<svg")


def test_graph_svg_without_graphviz_writes_dot(amdbg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    r = amdbg("graph", ORDERS, "-m", "order-1002", "--format", "svg")
    assert r.status == 0 and r.out.startswith('digraph "order-1002"')
    assert r.err.splitlines() == ["amdbg: warning: Graphviz 'dot' is not installed: wrote DOT "
                                  "instead of SVG (install graphviz, or render it with `dot "
                                  "-Tsvg`)"]
    r = amdbg("graph", ORDERS, "-m", "order-1002", "--format", "svg", "-o",
              str(tmp_path / "g.svg"))
    assert r.status == 0 and not (tmp_path / "g.svg").exists()
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert f"wrote DOT to {tmp_path / 'g.dot'}" in r.err


def test_graph_steps_as_a_mermaid_sequence(amdbg) -> None:
    with open_recording(ORDERS) as rec:
        tx = rec.machine("order-1002").transition(7)
    r = amdbg("graph", ORDERS, tx.url, "--steps")
    assert r.status == 0 and r.err == ""
    lines = r.out.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert f"  %% {tx.url}" in lines
    assert any("canceled: vetoed by PaidEnter" in x for x in lines if x.startswith("  %%"))
    participants = [x.split(" as ")[1] for x in lines if x.startswith("  participant ")]
    touched = [s.to_state or s.from_state for s in tx.steps]
    assert participants == list(dict.fromkeys(
        name for s in tx.steps for name in (s.from_state, s.to_state) if name))
    assert set(participants) <= set(touched) | {s.from_state for s in tx.steps}
    messages = [x.strip() for x in lines if "->>" in x or x.strip().startswith("Note")]
    assert len(messages) == len(tx.steps)
    assert "s_Paid ->> s_Validated: require" in messages
    assert messages[0] == "Note over s_Paid: called"
    assert re.fullmatch(r"s_Paid ->> s_Paid: PaidEnter( \S+)?", messages[-1])


def test_graph_steps_usage_errors(amdbg) -> None:
    for argv, fragment in (
            (("graph", ORDERS, "-m", "order-1002", "--steps"), "--steps needs a transition"),
            (("graph", ORDERS, "--network", "--steps"), "leave out --network"),
            (("graph", ORDERS, "-m", "1002", "-t", "7", "--steps", "--format", "dot"),
             "Mermaid")):
        r = amdbg(*argv)
        assert r.status == 2 and r.out == "" and len(r.err.splitlines()) == 1
        assert fragment in r.err


def test_graph_steps_escapes_hostile_names(amdbg, hostile) -> None:
    r = amdbg("graph", str(hostile.path), "-m", "evil", "-t", "1", "--steps")
    assert r.status == 0
    assert "\x1b" not in r.out and "\x07" not in r.out
    for line in r.out.splitlines()[1:]:
        assert line.startswith("  ")
        if not line.startswith("  %%"):
            assert ";" not in line.replace("#59;", "").replace("#35;", "")

