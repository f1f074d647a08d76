"""AMNODE_RECORD across processes: SIGKILL mid-recording, children, directory merging, fork."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from amnode.telemetry import open_recording

ROOT = Path(__file__).resolve().parents[2]


def run_env(rec_dir: Path) -> dict[str, str]:
    env = {**os.environ, "AMNODE_RECORD": str(rec_dir), "PYTHONPATH": str(ROOT)}
    env.pop("AMNODE_LOG", None)
    return env


def script(tmp_path: Path, name: str, code: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(code))
    return p


def test_sigkill_mid_recording_leaves_every_complete_record_readable(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    victim = script(tmp_path, "victim.py", """
        import amnode as am
        m = am.Machine({"A": {}, "B": {"require": ["A"]}}, id="victim",
                       log_level=am.LogLevel.CHANGES, logger=lambda level, line: None)
        while True:
            m.add(["A", "B"], {"n": 1})
            m.remove("A")
    """)
    proc = subprocess.Popen([sys.executable, str(victim)], env=run_env(rec_dir))
    try:
        deadline = time.monotonic() + 120  # only stops a test that would wait forever
        while True:  # wait until the writer thread has put plenty on disk
            files = list(rec_dir.glob("*.amrec")) if rec_dir.exists() else []
            if files and files[0].stat().st_size > 200_000:
                break
            assert proc.poll() is None, "victim exited early"
            assert time.monotonic() < deadline, "recording never grew"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    rec = open_recording(rec_dir)
    # at most one problem: a torn last record at the very end of the file
    assert len(rec.corruption) <= 1
    size = files[0].stat().st_size
    for c in rec.corruption:
        assert "torn" in c.reason and c.offset + c.skipped == size
    m = rec.machine("victim")
    assert len(m) > 500 and m.gaps == []
    prev = None
    for tx in m:  # every complete record decodes, in order, with consistent clocks
        assert tx.seq == tx.number
        assert tx.called == (["A", "B"] if tx.number % 2 else ["A"])
        if prev is not None:
            assert tx.time_before == prev.time_after
        prev = tx
    assert m.transition(len(m)).id == prev.id


def test_directory_merges_processes_and_children_inherit(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    child = script(tmp_path, "child.py", """
        import amnode as am
        m = am.Machine({"Work": {}}, id="worker", tags=["child"])
        m.add("Work")
        m.dispose()
    """)
    parent = script(tmp_path, "parent.py", f"""
        import subprocess, sys
        import amnode as am
        m = am.Machine({{"Start": {{}}}}, id="supervisor")
        m.add("Start")
        w = am.Machine({{"Work": {{}}}}, id="worker", parent=m)
        w.add("Work")
        subprocess.run([sys.executable, {str(child)!r}], check=True)
        m.remove("Start")
    """)
    subprocess.run([sys.executable, str(parent)], env=run_env(rec_dir), check=True, timeout=60)
    files = sorted(rec_dir.glob("*.amrec"))
    assert len(files) == 2
    rec = open_recording(rec_dir)
    assert rec.corruption == []
    assert len({p.pid for p in rec.processes}) == 2
    got = {m.key: (m.id, m.parent, len(m), m.process.pid) for m in rec.machines}
    assert set(got) == {"supervisor", "worker", "worker#2"}
    assert got["worker"][1] == "supervisor" and got["worker#2"][1] == ""
    assert got["worker"][3] == got["supervisor"][3] != got["worker#2"][3]
    assert rec.machine("worker#2").tags == ["child"] and rec.machine("worker#2").disposed
    assert len(rec.machine("supervisor")) == 2 and {m.key for m in rec.find_machines("work")} \
        == {"worker", "worker#2"}


def test_forked_child_writes_its_own_file(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    forker = script(tmp_path, "forker.py", """
        import os
        import amnode as am
        m = am.Machine({"A": {}, "B": {}}, id="shared")
        m.add("A")
        pid = os.fork()
        if pid == 0:
            m.add("B")
            am.Machine({"X": {}}, id="only-child").add("X")
            raise SystemExit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        m.remove("A")
    """)
    subprocess.run([sys.executable, str(forker)], env=run_env(rec_dir), check=True, timeout=60)
    rec = open_recording(rec_dir)
    assert rec.corruption == [] and len(rec.processes) == 2
    parent, child = rec.machine("shared"), rec.machine("shared#2")
    assert [t.called for t in parent] == [["A"], ["A"]]
    assert [t.type for t in parent] == ["add", "remove"]
    assert [(t.called, t.seq, t.time_before) for t in child] == [(["B"], 2, [1, 0, 0])]
    assert rec.machine("only-child").process.pid == child.process.pid != parent.process.pid
