"""Untrusted recordings: control characters and markup in every string never reach the
terminal raw (every verb, piped or on a terminal, and the TUI); records no check record
covered are marked unverified everywhere; special files are refused, not waited for."""

from __future__ import annotations

import html
import io
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from amdbg import cli
from amdbg.escape import escape_json, printable
from amdbg.session import Session
from amdbg.tui import ReplayApp
from amdbg.tui.widgets.detail import TransitionDetail
from amdbg.tui.widgets.header import AddressBar
from amdbg.tui.widgets.machine_list import MachineList
from amdbg.tui.widgets.transition_list import TransitionList

#: what must never be written raw: C0 (but the line feed), DEL, C1, bidi and separators
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                 "\u2066-\u2069]")
#: the colours rich itself writes on a terminal (SGR sequences): the only ESC allowed there
SGR = re.compile(r"\x1b\[[0-9;]*m")
SIZE = (160, 48)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """amdbg in-process: (status, stdout, stderr)."""
    capsys.readouterr()
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AMNODE_RECORD", "AMDBG_DEBUG", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


def verbs(rec: str, machine: str) -> list[list[str]]:
    """Every verb and output format, on a recording and one of its machines."""
    return [
        ["ls", rec], ["ls", rec, "--json"],
        ["show", rec, "-m", machine, "-t", "1"], ["show", rec, "-m", machine, "-t", "1",
                                                  "--traces", "--all-states"],
        ["show", rec, "-m", machine, "-t", "2"], ["show", rec, "-m", machine, "-t", "1",
                                                  "--json"],
        ["log", rec, "-m", machine], ["log", rec, "-m", machine, "--json"],
        *(["graph", rec, "-m", machine, "-t", "1", "--format", f] for f in
          ("text", "dot", "mermaid", "json")),
        *(["graph", rec, "--network", "--format", f] for f in ("text", "dot", "mermaid", "json")),
    ]


def test_the_escaping_helper() -> None:
    assert printable("plain Text · ✓ 日本") == "plain Text · ✓ 日本"
    assert printable("a\x1b]0;t\x07b\nc\td\re\x9b\x7f\u202e") == \
        "a\\x1b]0;t\\x07b\\nc\\td\\re\\x9b\\x7f\\u202e"
    assert printable("x\ny\x1b", newlines=True) == "x\ny\\x1b"
    text = json.dumps({"k": "\x1b\x9b\x7f\u2028\n"}, indent=2, ensure_ascii=False)
    assert json.loads(escape_json(text)) == {"k": "\x1b\x9b\x7f\u2028\n"}
    assert not RAW.search(escape_json(text))


def test_every_verb_escapes_what_the_recording_holds(capsys, hostile: Any,
                                                     tmp_path: Path) -> None:
    rec = str(hostile.path)
    for argv in verbs(rec, hostile.machine_id):
        status, out, err = run(capsys, *argv)
        assert status == 0, (argv, err)
        for stream in (out, err):
            assert not RAW.search(stream), (argv, RAW.findall(stream)[:5])
        if "--json" in argv or "json" in argv:
            continue
        # the ids and names show, escaped, so they can still be read
        if argv[0] in ("ls", "show", "log"):
            assert "evil\\x1b]0;pwned\\x07[reverse]m" in out, argv
    status, out, _ = run(capsys, "show", rec, "-m", "evil", "-t", "1", "--traces")
    assert "S\\x1b[2Jt require [red]x" in out  # a step, markup shown as it is
    assert hostile.markup_log in out and "handler H\\x1b]52;c;" in out
    assert "trace\\x1b]0;pwned\\x07" in out  # multi-line entries keep their lines only
    status, out, err = run(capsys, "pack", rec, str(tmp_path / "packed.amrec"))
    assert status == 0 and not RAW.search(out + err)


def test_json_keeps_the_data_and_escapes_it(capsys, hostile: Any) -> None:
    _, out, _ = run(capsys, "ls", str(hostile.path), "--json")
    assert not RAW.search(out) and "\\u001b]0;pwned\\u0007" in out and "\\u009b" in out
    assert hostile.machine_id in [m["id"] for m in json.loads(out)]  # the id as recorded
    _, out, _ = run(capsys, "show", str(hostile.path), "-m", "evil", "-t", "1", "--json")
    data = json.loads(out)
    assert data["machine_id"] == hostile.machine_id and hostile.state in data["called"]
    assert any(hostile.markup_log in line["text"] for line in data["log"])


def test_a_terminal_gets_rich_colours_and_nothing_from_the_recording(
        capsys, hostile: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")
    for argv in verbs(str(hostile.path), hostile.machine_id):
        screen = Terminal()
        monkeypatch.setattr("sys.stdout", screen)
        assert cli.main(argv) == 0
        shown = screen.getvalue()
        if argv[0] != "graph" and "--json" not in argv:
            assert SGR.search(shown), argv  # it was treated as a terminal
        assert not RAW.search(SGR.sub("", shown)), (argv, RAW.findall(SGR.sub("", shown))[:5])
    capsys.readouterr()


def test_errors_and_warnings_quote_the_recording_escaped(capsys, hostile: Any,
                                                          tmp_path: Path) -> None:
    status, out, err = run(capsys, "show", str(hostile.path), "-m", "nothing")
    assert status == 1 and out == "" and len(err.splitlines()) == 1
    assert "evil\\x1b]0;pwned\\x07" in err and not RAW.search(err)  # the machine list
    # a file name is as untrusted as its content; a torn one is warned about
    named = tmp_path / "rec\x1b[2J.amrec"
    named.write_bytes(hostile.path.read_bytes()[:-5])
    status, out, err = run(capsys, "ls", str(named))
    assert status == 0 and len(err.splitlines()) == 1 and "torn record" in err
    assert "rec\\x1b[2J.amrec" in err and not RAW.search(out + err)


async def _screen(app: ReplayApp, pilot, *keys: str) -> str:
    """What the app shows after `keys`, as text (the screenshot, entities decoded)."""
    for key in keys:
        await pilot.press(key)
    await pilot.pause()
    return html.unescape(app.export_screenshot().replace("&#160;", " "))


async def test_the_tui_shows_control_characters_and_markup_literally(hostile: Any,
                                                                     tmp_path: Path) -> None:
    torn = tmp_path / "h\x1b[2J[reverse]x.amrec"  # a torn file: the app warns, naming it
    torn.write_bytes(hostile.path.read_bytes()[:-5])
    with Session.open(torn) as s:
        app = ReplayApp(s, machine=hostile.machine_id, number=1)
        async with app.run_test(size=SIZE) as pilot:
            screen = await _screen(app, pilot)
            assert not RAW.search(screen), RAW.findall(screen)[:5]
            for literal in (hostile.markup_state, "S\\x1b[2Jt", "evil\\x1b]0;pwned\\x07[rever",
                            "[link=https://example.com/x]click[/link]"):
                assert literal in screen, literal
            (warning,) = list(app._notifications)  # the torn tail, naming the file
            assert "h\\x1b[2J[reverse]x.amrec" in warning.message and not warning.markup
            detail = "\n".join(app.query_one(TransitionDetail).lines(200))
            assert hostile.markup_log in detail and not RAW.search(detail)
            screen = await _screen(app, pilot, "g")  # the graph: boxes, title
            assert not RAW.search(screen) and hostile.markup_state in screen
            assert "Relations of evil\\x1b]0;pwned\\x07[reverse]m" in screen
            screen = await _screen(app, pilot, "g", "right")  # a canceled one, its reason
            assert app.number == 2 and not RAW.search(screen)


# ---------------------------------------------------------------------- unverified records


def test_every_verb_marks_unverified_records(capsys, unverified: tuple[Path, int],
                                             tmp_path: Path) -> None:
    path, n = unverified
    rec = str(path)
    status, out, err = run(capsys, "ls", rec)
    assert status == 0 and "torn record" in err and "1 record(s) before it kept unverified" in err
    assert "1 unverified" in out
    _, out, _ = run(capsys, "ls", rec, "--json")
    assert json.loads(out)[0]["unverified"] == [n]
    _, out, _ = run(capsys, "show", rec, "-m", "worker", "-t", str(n))
    assert "UNVERIFIED: no check record covers this record" in out and "n=8" in out
    _, out, _ = run(capsys, "show", rec, "-m", "worker", "-t", "1")
    assert "UNVERIFIED" not in out and "unverified" not in out
    _, out, _ = run(capsys, "show", rec, "-m", "worker", "-t", str(n), "--json")
    assert json.loads(out)["unverified"] is True
    _, out, _ = run(capsys, "log", rec, "-m", "worker")
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "unverified" in rows[str(n)] and "unverified" not in rows["1"]
    _, out, _ = run(capsys, "log", rec, "-m", "worker", "--json")
    assert [r["unverified"] for r in json.loads(out)] == [False, False, True]
    for fmt, prefix in (("text", "# "), ("dot", "// "), ("mermaid", "%% ")):
        _, out, _ = run(capsys, "graph", rec, "-m", "worker", "-t", str(n), "--format", fmt)
        assert f"{prefix}UNVERIFIED transition {n}" in out, fmt
    _, out, _ = run(capsys, "graph", rec, "-m", "worker", "-t", "1", "--format", "dot")
    assert "UNVERIFIED" not in out
    _, out, _ = run(capsys, "graph", rec, "-m", "worker", "-t", str(n), "--format", "json")
    assert json.loads(out)["graph"]["unverified"]
    packed = tmp_path / "packed.amrec"
    status, out, err = run(capsys, "pack", rec, str(packed))
    assert status == 0 and "1 unverified record(s) kept, still marked unverified" in out
    status, out, err = run(capsys, "ls", str(packed), "--json")
    # the packed file is intact (no warning), and the record is still marked
    assert status == 0 and err == "" and json.loads(out)[0]["unverified"] == [n]


async def test_the_tui_marks_unverified_records(unverified: tuple[Path, int]) -> None:
    path, n = unverified
    with Session.open(path) as s:
        app = ReplayApp(s, machine="worker", number=n)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "UNVERIFIED" in app.query_one(AddressBar).text.plain
            assert "UNVERIFIED: no check record covers this record" in "\n".join(
                app.query_one(TransitionDetail).lines(200))
            tl = app.query_one(TransitionList)
            assert "unverified" in tl.render_row(n - 1, 160, False).plain
            assert "unverified" not in tl.render_row(0, 160, False).plain
            await pilot.press("left")
            await pilot.pause()
            assert app.number == n - 1 and "UNVERIFIED" not in app.query_one(AddressBar).text.plain
            machines = app.query_one(MachineList)  # its label: one unverified record
            assert machines._label(s.machines[0]).plain == "worker 2/3 ⌁ ?1"


# ---------------------------------------------------------------------- special files


@pytest.mark.timeout(30)
def test_a_fifo_or_socket_is_an_error_not_a_hang(capsys, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.amrec"
    os.mkfifo(fifo)
    for argv in (["ls", str(fifo)], ["show", str(fifo), "-m", "x"], ["log", str(fifo)],
                 ["graph", str(fifo), "--network"], ["pack", str(fifo), str(tmp_path / "o.amrec")]):
        status, out, err = run(capsys, *argv)
        assert status == 1 and out == "" and len(err.splitlines()) == 1, (argv, err)
        assert "not a regular file but a FIFO" in err
    sock_path = tmp_path / "sock.amrec"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        status, _, err = run(capsys, "ls", str(sock_path))
        assert status == 1 and "not a regular file but a socket" in err
    status, _, err = run(capsys, "ls", os.devnull)
    assert status == 1 and "not a regular file but a character device" in err


@pytest.mark.timeout(30)
def test_a_directory_skips_special_files_with_a_warning(capsys, hostile: Any,
                                                         tmp_path: Path) -> None:
    rec_dir = tmp_path / "dir"
    rec_dir.mkdir()
    (rec_dir / "good.amrec").write_bytes(hostile.path.read_bytes())
    os.mkfifo(rec_dir / "stuck.amrec")
    status, out, err = run(capsys, "ls", str(rec_dir))
    assert "root\\x9b31m" in out and len(err.splitlines()) == 1 and status == 3
    assert "stuck.amrec @0: not a regular file but a FIFO" in err
