"""`amdbg log` and `graph --network` on bigger recordings: rows stream out as they are read,
long scans report progress on a terminal (and only there), causal links need no full decode.

No test measures time: streaming is shown by how much was read when the first row went out.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import amnode as am
from amdbg import cli
from amdbg.output import Progress, RowWriter
from amnode.telemetry import RecordedMachine, Recorder, open_recording

ROOT = Path(__file__).resolve().parents[2]
CRAWLER = str(ROOT / "recordings" / "crawler")
NODE_POOL = str(ROOT / "recordings" / "node-pool.amrec")
JOBS = 600  # 3 transitions a job in the worker: 1,800 rows


class Handlers:
    """A worker vetoing every 7th job; the dispatcher's handler mutates the worker."""

    def __init__(self) -> None:
        self.worker: am.Machine | None = None

    def WorkingEnter(self, e: am.Event) -> bool:
        return e.args.get("job", 0) % 7 != 0

    def DispatchState(self, e: am.Event) -> None:
        assert self.worker is not None
        self.worker.add("Job", {"job": e.args["job"]})


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of a dispatcher and a worker it mutates (a few thousand transitions)."""
    path = tmp_path_factory.mktemp("busy") / "busy.amrec"
    handlers = Handlers()
    with Recorder(path) as rec:
        boss = am.Machine({"Start": am.State(), "Dispatch": am.State(multi=True)},
                          id="dispatcher", handlers=handlers)
        rec.attach(boss)
        worker = am.Machine({"Job": am.State(multi=True),
                             "Working": am.State(remove=["Idle"]),
                             "Idle": am.State(remove=["Working"])},
                            id="worker", parent=boss, handlers=handlers)
        handlers.worker = worker
        boss.add("Start")
        for i in range(JOBS):
            boss.add("Dispatch", {"job": i})
            worker.add("Working", {"job": i})
            worker.add("Idle")
    return path


class Recorded(io.StringIO):
    """stdout that remembers how many transitions had been decoded at each write."""

    def __init__(self, counter: list[int], tty: bool = False) -> None:
        super().__init__()
        self.counter = counter
        self.tty = tty
        self.writes: list[tuple[int, str]] = []

    def write(self, s: str) -> int:
        self.writes.append((self.counter[0], s))
        return super().write(s)

    def isatty(self) -> bool:
        return self.tty


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, *, stderr_tty: bool = False
        ) -> tuple[int, Recorded, Recorded, list[int]]:
    """Run amdbg in-process with recording streams; counts `RecordedMachine.transition`."""
    counter = [0]
    original = RecordedMachine.transition

    def counting(self: RecordedMachine, n: int):  # type: ignore[no-untyped-def]
        counter[0] += 1
        return original(self, n)

    monkeypatch.setattr(RecordedMachine, "transition", counting)
    out, err = Recorded(counter), Recorded(counter, tty=stderr_tty)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.delenv("AMNODE_RECORD", raising=False)
    status = cli.main(argv)
    return status, out, err, counter


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\s*\d+\s+[+\d]", line)]


def test_log_prints_the_first_rows_before_reading_the_rest(busy: Path, monkeypatch) -> None:
    with open_recording(busy) as rec:
        total = len(rec.machine("worker"))
    status, out, err, counter = run(["log", str(busy), "-m", "worker", "--limit", "0"],
                                    monkeypatch)
    assert status == 0 and err.getvalue() == ""
    assert len(rows(out.getvalue())) == total == counter[0]
    first_row = next(decoded for decoded, text in out.writes if rows(text))
    # the header and the first batch went out after at most one batch was read
    assert first_row <= RowWriter.SAMPLE < total
    assert sum(1 for _, text in out.writes if rows(text)) >= total // RowWriter.BATCH


def test_log_columns_line_up_across_batches(busy: Path, monkeypatch) -> None:
    _, out, _, _ = run(["log", str(busy), "-m", "worker", "--limit", "0"], monkeypatch)
    lines = rows(out.getvalue())
    header = next(line for line in out.getvalue().splitlines() if line.lstrip().startswith("#"))
    starts = {line.index(line.split()[2]) for line in lines}  # the id column
    assert starts == {header.index("id")}
    assert all(line == line.rstrip() for line in out.getvalue().splitlines())


def test_log_json_streams_a_valid_array(busy: Path, monkeypatch) -> None:
    status, out, _, _ = run(["log", str(busy), "-m", "worker", "--limit", "0",
                                   "--json"], monkeypatch)
    data = json.loads(out.getvalue())
    assert status == 0 and [d["number"] for d in data] == list(range(1, len(data) + 1))
    assert next(decoded for decoded, text in out.writes if '"number"' in text) == 1
    status, out, err, _ = run(["log", str(busy), "-m", "worker", "--canceled", "--json",
                               "--limit", "3"], monkeypatch)
    data = json.loads(out.getvalue())
    assert [d["accepted"] for d in data] == [False] * 3
    assert "stopped after 3 transitions" in err.getvalue()
    status, out, _, _ = run(["log", str(busy), "-m", "worker", "--state", "Idle", "--from",
                             "1", "--to", "1", "--json"], monkeypatch)
    assert json.loads(out.getvalue()) == []


def test_progress_shows_on_a_terminal_stderr_only(busy: Path, monkeypatch) -> None:
    monkeypatch.setattr(Progress, "DELAY", 0.0)
    monkeypatch.setattr(Progress, "INTERVAL", 0.0)
    status, out, err, _ = run(["log", str(busy), "-m", "worker", "--canceled", "--limit", "0"],
                              monkeypatch, stderr_tty=True)
    assert status == 0
    assert "reading worker: transition" in err.getvalue()
    assert err.getvalue().endswith("\r\x1b[2K")  # erased when done
    assert "\x1b" not in out.getvalue() and rows(out.getvalue())
    # piped stderr: nothing but warnings, ever
    status, out, err, _ = run(["log", str(busy), "-m", "worker", "--canceled", "--limit", "0"],
                              monkeypatch)
    assert err.getvalue() == ""
    status, out, err, _ = run(["graph", str(busy), "--network"], monkeypatch, stderr_tty=True)
    assert "reading causal links: transition" in err.getvalue()
    assert err.getvalue().endswith("\r\x1b[2K")


def test_progress_counts_and_clears() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    p = Progress(stream, "reading", 200)
    p._next = 0.0  # due now
    p.update(50)
    assert stream.getvalue() == "\r\x1b[2Kreading 50/200 (25%)"
    p.clear()
    assert stream.getvalue().endswith("\r\x1b[2K")
    quiet = io.StringIO()
    p = Progress(quiet, "reading", 200)
    p._next = 0.0
    p.update(50)
    p.clear()
    assert quiet.getvalue() == "" and not p.active


def test_log_into_a_closed_pipe_ends_quietly(busy: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from amdbg.cli import main; sys.exit(main())",
         "log", str(busy), "-m", "worker", "--limit", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(4)]
    proc.stdout.close()  # like `| head -4`
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert head[0].startswith(b"worker") and re.match(rb"\s*1\s+\+", head[3])
    assert err == b""


@pytest.mark.parametrize("path", [CRAWLER, NODE_POOL])
def test_network_links_are_read_without_decoding_transitions(path: str, monkeypatch) -> None:
    with open_recording(path) as rec:  # the reference: every transition decoded
        expected = set()
        for m in rec.machines:
            for tx in m.transitions():
                if tx.source is not None and tx.source.machine_id != m.id:
                    expected.add((rec.machine(tx.source.machine_id).key, m.key))
    assert expected

    def refuse(self, n):  # type: ignore[no-untyped-def]
        raise AssertionError("graph --network decoded a whole transition")

    monkeypatch.setattr(RecordedMachine, "transition", refuse)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["graph", path, "--network", "--format", "json"]) == 0
    data = json.loads(out.getvalue())
    found = {(e["source"], e["target"]) for e in data["links"] if "mutates" in e["relations"]}
    assert found == expected
