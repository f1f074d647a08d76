"""The amdbg command line on the shipped samples: every verb, every selection form, every error.

Commands run in-process through `amdbg.cli.main(argv)` with captured output; a few run the
installed console script in a subprocess. Errors must be exactly one line on stderr with a
non-zero status and never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amdbg import cli
from amdbg.graph import from_json
from amnode.telemetry import RecordedMachine, TransitionRecord, open_recording

ROOT = Path(__file__).resolve().parents[2]
ORDERS = str(ROOT / "recordings" / "orders.amrec")
CRAWLER = str(ROOT / "recordings" / "crawler")
ANSI = re.compile(r"\x1b\[")


class Run:
    """The result of one amdbg run."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def amdbg(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run amdbg in-process: amdbg(*argv) -> Run."""
    monkeypatch.delenv("AMNODE_RECORD", raising=False)
    monkeypatch.delenv("AMDBG_DEBUG", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return Run(status, out, err)

    return run


@pytest.fixture(scope="module")
def orders_rec() -> Iterator:
    with open_recording(ORDERS) as rec:
        yield rec


def find(m: RecordedMachine, pred) -> TransitionRecord:
    return next(tx for tx in m.transitions() if pred(tx))


def assert_one_error(run: Run, *fragments: str, status: int | None = None,
                     prefix: str = "amdbg: error: ") -> None:
    """Exactly one stderr line starting `amdbg: error:`, nothing on stdout, non-zero exit."""
    assert run.status != 0
    if status is not None:
        assert run.status == status
    assert len(run.err_lines) == 1, run.err
    assert run.err_lines[0].startswith(prefix)
    assert run.out == ""
    for fragment in fragments:
        assert fragment in run.err, run.err


# ---------------------------------------------------------------------- ls


def test_ls_lists_the_machine_tree(amdbg) -> None:
    r = amdbg("ls", ORDERS)
    assert r.status == 0 and r.err == ""
    assert not ANSI.search(r.out)  # piped: plain text
    assert "5 machines, 64 transitions" in r.out
    rows = [line for line in r.out.splitlines() if "order-100" in line]
    assert [row.split()[1] for row in rows] == ["order-1001", "order-1002", "order-1003",
                                                "order-1004"]
    assert [row[:3] for row in rows] == ["├─ ", "├─ ", "├─ ", "└─ "]
    assert all(" orders " in row for row in rows)
    assert re.search(r"order-1002\s+orders\s+order\s+11\s+12\s+\d+", r.out)
    assert all(line == line.rstrip() for line in r.out.splitlines())


def test_ls_json(amdbg, orders_rec) -> None:
    r = amdbg("ls", ORDERS, "--json")
    data = r.json()
    assert r.status == 0
    assert [d["id"] for d in data] == [m.key for m in orders_rec.machines]
    for d in data:
        m = orders_rec.machine(d["id"])
        assert d["transitions"] == len(m) and d["parent"] == (m.parent or None)
        assert d["errors"] == m.error_count and d["tags"] == m.tags
    assert data[0]["parent"] is None and data[1]["parent"] == "orders"


def test_ls_directory_with_two_processes_and_filter(amdbg) -> None:
    r = amdbg("ls", CRAWLER)
    assert r.status == 0 and "2 files, 2 processes, 5 machines" in r.out
    assert "├─ sitemap" in r.out and "└─ crawler-worker-3" in r.out and "pid " in r.out
    r = amdbg("ls", CRAWLER, "-m", "worker", "--json")
    assert [d["id"] for d in r.json()] == ["crawler-worker-1", "crawler-worker-2",
                                           "crawler-worker-3"]
    r = amdbg("ls", CRAWLER, "-m", "crawler", "--json")  # a machine and its children
    assert len(r.json()) == 5 and r.json()[0]["depth"] == 0


# ---------------------------------------------------------------------- show


def test_show_a_canceled_transition(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1002")
    tx = find(m, lambda t: t.called == ["Paid"])
    r = amdbg("show", ORDERS, "-m", "1002", "-t", str(tx.number))
    assert r.status == 0 and r.err == ""
    lines = r.out.splitlines()
    assert lines[0] == tx.url
    assert lines[1] == f"order-1002 · transition {tx.number} of {len(m)}"
    assert lines[2] == "add Paid  card=0000-declined"
    assert lines[3] == "CANCELED: vetoed by PaidEnter (returned False)"
    for section in ("States (before -> after)", "Steps (", "Handlers (1)", "Args (1)",
                    "Log before this transition", "Log during this transition"):
        assert section in r.out
    assert re.search(r"PaidEnter\s+\d", r.out)  # handler with its duration
    assert re.search(r"\[cancel\] \(.*Paid\) by PaidEnter", r.out)
    assert re.search(r"PaymentPending\s+1\*\s+1\*", r.out)  # ticks before and after
    assert "[exter] card 0000-declined declined" in r.out


def test_show_an_error_with_its_source_and_effects(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1004")
    failed = find(m, lambda t: t.called == ["Shipped"] and not t.accepted)
    r = amdbg("show", ORDERS, "-m", "order-1004", "-t", failed.id)
    assert r.status == 0
    assert "CANCELED: ShippedEnter raised: cannot ship order 1004: no such address" in r.out
    assert "(+" in r.out and "--traces shows them" in r.out  # the traceback is folded
    exc = m.transition(failed.number + 1)
    assert re.search(rf"caused\s+{exc.url}\s+\(this machine, transition {exc.number}\)", r.out)
    full = amdbg("show", ORDERS, "-m", "order-1004", "-t", failed.id, "--traces")
    assert "Traceback (most recent call last)" in full.out  # shown on request, on stdout
    r = amdbg("show", ORDERS, "-m", "order-1004", "-t", str(exc.number))
    assert "flags         error" in r.out and "error         AException(" in r.out
    assert re.search(rf"source\s+{failed.url}", r.out)


def test_show_cross_machine_source(amdbg, orders_rec) -> None:
    pipeline = orders_rec.machine("orders")
    shipped = find(pipeline, lambda t: t.called == ["OrderShipped"])
    r = amdbg("show", ORDERS, shipped.url)
    assert r.status == 0
    assert re.search(r"source\s+mach://order-1001/[0-9a-f]{16}\s+\(order-1001, transition \d+\)",
                     r.out)


def test_show_selection_forms_agree(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1003")
    tx = m.transition(3)
    forms = [
        ("-m", "order-1003", "-t", "3"),
        ("-m", "1003", "-t", tx.id),
        ("-t", tx.id),                                     # an id needs no -m
        (f"mach://order-1003/{tx.id}",),                   # the address form
        ("mach://1003/3",),                                # part + number
        ("-m", "1003", f"mach://order-1003/{tx.id}"),      # both, consistent
        ("--select-machine", "order-1003", "--select-transition", "-4"),
    ]
    for form in forms:
        r = amdbg("show", ORDERS, *form, "--json")
        assert r.status == 0, (form, r.err)
        assert (r.json()["id"], r.json()["number"]) == (tx.id, 3), form
    r = amdbg("show", f"mach://order-1003/{tx.id}", ORDERS, "--json")  # address first
    assert r.json()["id"] == tx.id


def test_show_defaults_to_the_last_transition(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1001")
    r = amdbg("show", ORDERS, "-m", "1001")
    assert r.status == 0
    assert f"transition {len(m)} of {len(m)} (the last one; choose with -t)" in r.out


def test_show_json(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1002")
    tx = find(m, lambda t: t.called == ["ErrPayment", "Exception"])
    data = amdbg("show", ORDERS, "-m", "1002", "-t", str(tx.number), "--json").json()
    assert data["url"] == tx.url and data["of"] == len(m)
    assert data["accepted"] and data["error"] and data["cancel_reason"] is None
    assert data["activated"] == tx.activated
    assert data["clock_after"] == tx.clock_after
    assert data["args"]["order"] == "1002"
    assert data["forks"] and data["forks"][0]["machine"] == "orders"  # ErrPaymentState
    assert isinstance(data["steps"], list) and isinstance(data["log"], list)


# ---------------------------------------------------------------------- log


def table_numbers(out: str) -> list[int]:
    return [int(line.split()[0]) for line in out.splitlines() if re.match(r"\s*\d+\s+\+", line)]


def test_log_lists_every_transition(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1004")
    r = amdbg("log", ORDERS, "-m", "1004")
    assert r.status == 0 and r.err == ""
    assert table_numbers(r.out) == list(range(1, len(m) + 1))
    assert r.out.splitlines()[0] == f"order-1004  {len(m)} transitions"
    assert "canceled (error ShippedEnter)" in r.out
    assert "canceled (relations ReadyToShip)" in r.out


def test_log_filters(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1002")
    txs = list(m.transitions())
    r = amdbg("log", ORDERS, "-m", "1002", "--canceled")
    assert table_numbers(r.out) == [t.number for t in txs if not t.accepted]
    assert "filter: canceled only" in r.out
    r = amdbg("log", ORDERS, "-m", "1002", "--no-canceled", "--no-auto")
    assert table_numbers(r.out) == [t.number for t in txs if t.accepted and not t.is_auto]
    r = amdbg("log", ORDERS, "-m", "1002", "--auto", "--errors")
    assert table_numbers(r.out) == [t.number for t in txs if t.is_auto and t.is_error]
    r = amdbg("log", ORDERS, "-m", "1002", "--state", "Paid", "--state", "Cancelled")
    assert table_numbers(r.out) == [t.number for t in txs
                                    if {"Paid", "Cancelled"} & set(t.called)
                                    or {"Paid", "Cancelled"} & set(t.activated + t.deactivated)]
    pipeline = list(orders_rec.machine("orders").transitions())
    r = amdbg("log", ORDERS, "-m", "orders", "--no-health")
    assert table_numbers(r.out) == [t.number for t in pipeline if not t.is_health]
    r = amdbg("log", ORDERS, "-m", "orders", "--empty")
    assert table_numbers(r.out) and all("empty" in line for line in r.out.splitlines()
                                        if re.match(r"\s*\d+\s+\+", line))
    r = amdbg("log", ORDERS, "-m", "orders", "--checks")
    assert "no transitions match" in r.out


def test_log_ranges_and_limit(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1004")
    t4, t9 = m.transition(4), m.transition(9)
    r = amdbg("log", ORDERS, "-m", "1004", "--from", "4", "--to", t9.id)
    assert table_numbers(r.out) == list(range(4, 10))
    r = amdbg("log", ORDERS, "-m", "1004", "--limit", "3")
    assert table_numbers(r.out) == [1, 2, 3]
    assert "continue with --from 4" in r.out
    r = amdbg("log", ORDERS, "-m", "1004", "--limit", "0")
    assert len(table_numbers(r.out)) == len(m)
    # a time copied from the table selects the transition it was printed for
    lines = {int(line.split()[0]): line.split()[1] for line in r.out.splitlines()
             if re.match(r"\s*\d+\s+\+", line)}
    r = amdbg("log", ORDERS, "-m", "1004", "--from", lines[4], "--to", lines[9])
    assert table_numbers(r.out) == list(range(4, 10))
    r = amdbg("log", ORDERS, f"mach://order-1004/{t4.id}", "--limit", "2")
    assert table_numbers(r.out) == [4, 5]


def test_log_json(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1003")
    data = amdbg("log", ORDERS, "-m", "1003", "--json").json()
    assert [d["number"] for d in data] == list(range(1, len(m) + 1))
    vetoed = next(d for d in data if d["called"] == ["Validated"])
    assert not vetoed["accepted"] and "ValidatedEnter" in vetoed["cancel_reason"]


# ---------------------------------------------------------------------- graph


def test_graph_formats(amdbg) -> None:
    text = amdbg("graph", ORDERS, "-m", "order-1001")
    assert text.status == 0 and text.out.startswith("# machine order-1001\n# legend:")
    assert "  Packed --require--> Paid" in text.out
    dot = amdbg("graph", ORDERS, "-m", "order-1001", "--format", "dot")
    assert dot.out.startswith('digraph "order-1001" {') and dot.out.rstrip().endswith("}")
    mermaid = amdbg("graph", ORDERS, "-m", "order-1001", "-f", "mermaid")
    assert mermaid.out.startswith("flowchart LR\n")
    g = from_json(amdbg("graph", ORDERS, "-m", "order-1001", "-f", "json").out)
    assert g.edges["Packed", "Paid"]["relation"] == "require"
    assert g.nodes["ReadyToShip"]["auto"] and g.nodes["Notify"]["multi"]


def test_graph_marks_a_transition(amdbg, orders_rec) -> None:
    m = orders_rec.machine("order-1004")
    failed = find(m, lambda t: t.called == ["Shipped"] and not t.accepted)
    r = amdbg("graph", ORDERS, "-m", "1004", "-t", str(failed.number), "-f", "json")
    g = from_json(r.out)
    assert g.nodes["Shipped"]["called"] and not g.nodes["Shipped"]["active"]
    assert g.nodes["Paid"]["active"] and g.nodes["ReadyToShip"]["touched"]
    text = amdbg("graph", ORDERS, failed.url)
    assert f"at transition {failed.number} ({failed.url})" in text.out
    assert "[Shipped t c]" in text.out and "[Paid* t]" in text.out


def test_graph_network(amdbg) -> None:
    r = amdbg("graph", CRAWLER, "--network")
    assert r.status == 0 and r.out.startswith("# network of 5 machines")
    assert "  crawler --parent--> sitemap" in r.out
    assert "  crawler-worker-1 --mutates--> crawler" in r.out
    g = from_json(amdbg("graph", CRAWLER, "--network", "-f", "json").out)
    assert set(g.nodes) == {"crawler", "sitemap", "crawler-worker-1", "crawler-worker-2",
                            "crawler-worker-3"}
    r = amdbg("graph", CRAWLER, "--network", "--no-links")
    assert "--mutates-->" not in r.out
    assert_one_error(amdbg("graph", CRAWLER, "--network", "-m", "crawler"), "--network")
    assert_one_error(amdbg("graph", CRAWLER, "--network", "-t", "1"), "-t")


# ---------------------------------------------------------------------- pack


def test_pack_merges_a_directory(amdbg, tmp_path: Path) -> None:
    out = tmp_path / "bug-report.amrec"
    r = amdbg("pack", CRAWLER, str(out))
    assert r.status == 0 and r.err == ""
    assert re.match(rf"packed {re.escape(CRAWLER)} \(2 files, 5 machines, 65 transitions\) "
                    rf"into {re.escape(str(out))} \([\d,]+ bytes\)", r.out)
    assert amdbg("ls", str(out), "--json").json() == [
        {**d, "file": str(out)} for d in amdbg("ls", CRAWLER, "--json").json()]
    assert_one_error(amdbg("pack", CRAWLER, str(tmp_path / "x.txt")), "*.amrec")
    assert_one_error(amdbg("pack", CRAWLER), "REC OUT", status=2)
    assert_one_error(amdbg("pack", CRAWLER, str(tmp_path)), "is a directory")


def test_pack_indexes_the_recording_once(amdbg, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from amnode.telemetry.reader import Recording

    indexed: list[str] = []
    index = Recording._index
    monkeypatch.setattr(Recording, "_index", lambda self, f: indexed.append(f.path) or
                        index(self, f))
    out = tmp_path / "packed.amrec"
    assert amdbg("pack", ORDERS, str(out)).status == 0
    assert indexed == [ORDERS, str(out)]  # the source, then the read-back check


def test_pack_accepts_an_open_recording(tmp_path: Path) -> None:
    from amnode.telemetry import open_recording, pack

    with open_recording(CRAWLER) as rec:
        size = pack(rec, tmp_path / "a.amrec")
        assert rec.machines[0].transition(1) is not None  # still open
    assert size == pack(CRAWLER, tmp_path / "b.amrec")
    assert (tmp_path / "a.amrec").read_bytes() == (tmp_path / "b.amrec").read_bytes()


def test_pack_drops_a_torn_tail(amdbg, tmp_path: Path) -> None:
    src = tmp_path / "rec"
    shutil.copytree(CRAWLER, src)
    big = max(src.glob("*.amrec"), key=lambda p: p.stat().st_size)
    big.write_bytes(big.read_bytes()[:-10])
    out = tmp_path / "packed.amrec"
    r = amdbg("pack", str(src), str(out))
    assert r.status == 0 and len(r.err_lines) == 1 and "torn record" in r.err
    r = amdbg("ls", str(out))
    assert r.status == 0 and r.err == ""  # the packed file is clean


# ---------------------------------------------------------------------- errors


def test_replay_without_a_terminal_is_one_clear_error(amdbg) -> None:
    assert_one_error(amdbg("replay", ORDERS), "needs a terminal", status=2)


@pytest.mark.parametrize(("argv", "fragments", "status"), [
    (("ls", "no/such/recording.amrec"), ("no such file or directory",), 1),
    (("show", ORDERS, "-m", "order-10"), ("ambiguous", "order-1001, order-1002"), 1),
    (("show", ORDERS, "-m", "order"), ("ambiguous", "orders, order-1001"), 1),
    (("log", ORDERS, "-m", "nothing"), ("no machine matches 'nothing'",), 1),
    (("show", ORDERS, "-m", "1002", "-t", "13"), ("12 transitions", "use 1..12"), 1),
    (("show", ORDERS, "-m", "1002", "-t", "0"), ("no transition 0",), 1),
    (("show", ORDERS, "-m", "1002", "-t", "ffffffffffffffff"), ("no transition",), 1),
    (("show", ORDERS, "mach://order-1002/99"), ("no transition 99",), 1),
    (("show", ORDERS, "mach://"), ("names no machine",), 2),
    (("show", ORDERS, "-t", "2"), ("needs a machine",), 2),
    (("show", ORDERS), ("choose a machine",), 2),
    (("show", ORDERS, ORDERS), ("give one recording",), 2),
    (("show",), ("give a recording",), 2),
    (("log", ORDERS, "-m", "1002", "--state", "Nope"), ("no state 'Nope'",), 1),
    (("log", ORDERS, "-m", "1002", "--from", "yesterday"), ("no transition 'yesterday'",
                                                             "+1.5s"), 1),
    (("log", ORDERS, "-m", "1002", "--to", "2026-13-01T00:00"), ("cannot read time",), 2),
    (("log", ORDERS, "-m", "1002", "--limit", "-1"), ("--limit",), 2),
    (("graph", ORDERS, "-m", "1001", "--format", "png"), ("invalid choice",), 2),
    (("show", ORDERS, "--bogus"), ("unrecognized arguments: --bogus",), 2),
    ((), ("choose a command",), 2),
    (("frobnicate",), ("unknown command 'frobnicate'",), 2),
    (("--verbose",), ("unrecognized arguments: --verbose",), 2),
])
def test_errors_are_one_line(amdbg, argv, fragments, status) -> None:
    assert_one_error(amdbg(*argv), *fragments, status=status)


def test_unreadable_files_are_one_line(amdbg, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.amrec"
    garbage.write_bytes(os.urandom(4096))
    assert_one_error(amdbg("ls", str(garbage)), "not an amnode recording", status=1)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert_one_error(amdbg("log", str(empty_dir), "-m", "x"), "no recording files", status=1)
    head = tmp_path / "head.amrec"
    head.write_bytes(Path(ORDERS).read_bytes()[:12])
    assert_one_error(amdbg("ls", str(head)), "truncated", status=1)


def test_truncated_file_shows_what_is_readable(amdbg, tmp_path: Path) -> None:
    data = Path(ORDERS).read_bytes()
    cut = tmp_path / "cut.amrec"
    cut.write_bytes(data[:len(data) // 2])
    r = amdbg("ls", str(cut))
    assert r.status == 0  # a torn tail is what a killed writer leaves, not an error
    assert len(r.err_lines) == 1, r.err
    assert r.err.startswith(f"amdbg: warning: recording ends with a torn record: {cut} @")
    assert "order-100" in r.out
    r = amdbg("ls", str(cut), "--json")
    assert r.status == 0 and r.json()  # stdout stays valid JSON
    # an error on a damaged recording is still one line, and says it is damaged
    r = amdbg("show", str(cut), "-m", "order-1004", "-t", "16")
    assert len(r.err_lines) == 1 and r.status == 1
    assert "(the recording is damaged:" in r.err


def test_damage_inside_a_file_exits_3(amdbg, tmp_path: Path) -> None:
    data = bytearray(Path(ORDERS).read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = b"\xff" * 64  # garbage in the middle, the tail is intact
    bad = tmp_path / "bad.amrec"
    bad.write_bytes(bytes(data))
    r = amdbg("ls", str(bad))
    assert r.status == 3 and len(r.err_lines) == 1
    assert r.err.startswith(f"amdbg: warning: recording is damaged: {bad} @")
    assert "kept unverified" in r.err
    assert "orders" in r.out and "order-1001" in r.out  # what came before the damage stays
    packed = tmp_path / "packed.amrec"
    assert amdbg("pack", str(bad), str(packed)).status == 3
    r = amdbg("ls", str(packed))
    assert r.status == 0 and r.err == "" and "order-1001" in r.out  # the packed file is clean


def test_internal_errors_are_one_line_unless_debugging(amdbg, monkeypatch) -> None:
    from amdbg.commands import ls

    def boom(args, ctx):
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(ls, "run", boom)
    r = amdbg("ls", ORDERS)
    assert_one_error(r, prefix="amdbg: internal error: RuntimeError: kaput second line")
    assert "AMDBG_DEBUG=1" in r.err
    monkeypatch.setenv("AMDBG_DEBUG", "1")
    status = cli.main(["ls", "no/such.amrec"])
    assert status == 1  # with AMDBG_DEBUG the traceback goes to stderr too (checked below)


def test_debug_shows_tracebacks(capsys, monkeypatch) -> None:
    monkeypatch.setenv("AMDBG_DEBUG", "1")
    assert cli.main(["ls", "no/such.amrec"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("amdbg: error:")


def test_help_and_version(amdbg) -> None:
    r = amdbg("--help")
    assert r.status == 0 and "ls" in r.out and "mach://MACHINE/TX_ID" in r.out
    for command in ("ls", "show", "log", "graph", "pack", "replay"):
        r = amdbg(command, "--help")
        assert r.status == 0 and r.out.startswith(f"usage: amdbg {command}")
    assert "--no-canceled" in amdbg("log", "--help").out
    r = amdbg("--version")
    assert r.status == 0 and r.out.startswith("amdbg ")


def test_recording_from_the_environment(amdbg, monkeypatch) -> None:
    monkeypatch.setenv("AMNODE_RECORD", ORDERS)
    r = amdbg("ls", "--json")
    assert r.status == 0 and len(r.json()) == 5


# ---------------------------------------------------------------------- the console script


def console_script() -> str:
    path = Path(sys.executable).with_name("amdbg")
    assert path.exists(), "the amdbg console script is not installed (pip install -e .)"
    return str(path)


def test_console_script_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AMNODE_RECORD", "AMDBG_DEBUG")}
    env["NO_COLOR"] = "1"
    ok = subprocess.run([console_script(), "show", "mach://order-1002/7", ORDERS],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert ok.returncode == 0 and ok.stderr == ""
    assert "CANCELED: vetoed by PaidEnter" in ok.stdout and not ANSI.search(ok.stdout)
    bad = subprocess.run([console_script(), "log", ORDERS, "-m", "order"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("amdbg: error: machine")


def test_console_script_survives_a_closed_pipe() -> None:
    script = (f"{shlex_quote(console_script())} log {shlex_quote(ORDERS)} -m 1004 --limit 0 "
              "| head -n 1")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.startswith("order-1004")
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


def shlex_quote(text: str) -> str:
    import shlex
    return shlex.quote(text)
