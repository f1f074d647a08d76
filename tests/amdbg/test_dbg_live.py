"""amdbg live: the TUI attached to a running supervisor and its worker processes (Pilot), the
flight recorder's history after the fact, listen + AMNODE_DBG_ADDR + --record, follow mode,
and `ls` / `log` / `log --follow` on live addresses and files being written."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.live import T, count, quiet, serving, until, wait_for_dumps
from helpers.node import WORKERS, connected_client, new_supervisor, running, worker_cmd

import amnode as am
from amdbg import cli
from amdbg.live import new_live
from amdbg.session import Session
from amdbg.tui import ReplayApp
from amdbg.tui.widgets.header import AddressBar
from amdbg.tui.widgets.live_status import LiveStatus
from amdbg.tui.widgets.machine_list import MachineList
from amnode.telemetry import Recorder, endpoint, flight, open_recording, process

ROOT = Path(__file__).resolve().parents[2]
SIZE = (160, 48)
SMALL = {"A": {}, "B": {"multi": True}, "C": {"require": ["A"]}}
#: the amdbg command in a process of its own
AMDBG = [sys.executable, "-c", "import sys; from amdbg.cli import main; sys.exit(main())"]


def label(app: ReplayApp, key: str) -> str:
    """The machine tree's label of `key`, as text."""
    return str(app.query_one(MachineList)._tree_nodes[key].label)


async def app_until(pilot, cond, what: object = "") -> None:
    """Let the app run until `cond()` holds (the app refreshes a live session on a timer);
    `what` (or what it returns, when callable) says what was awaited if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + T
    while not cond():
        if loop.time() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out waiting for {said or cond}")
        await pilot.pause(0.05)


# ---------------------------------------------------------------------- attach


async def test_tui_attached_to_a_supervisor_shows_the_whole_pool_live() -> None:
    sup = new_supervisor("live", (2, 2, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        pids = {e.id: e.pid for e in sup.pool.entries.values()}
        live = new_live([sup.public_addr])
        app = ReplayApp(Session.from_live(live), attach=[sup.public_addr])
        async with app.run_test(size=SIZE) as pilot:
            rec = app.session.recording
            # machines of every process: the supervisor's and each worker's
            await app_until(pilot, lambda: len(rec.streams) == 3 and all(
                count(live, w) >= 0 for w in pids), "the workers' streams")
            keys = {m.key for m in rec.machines}
            assert sup.mach.id in keys and sup.mux.mach.id in keys
            for wid in pids:
                assert {wid, f"rs-nw-loc-{wid[3:]}", f"rs-nw-pub-{wid[3:]}"} <= keys
            assert {m.process.pid for m in rec.machines} == {os.getpid(), *pids.values()}

            # a client's job shows up live, and its cause can be followed back to the client
            client = await connected_client(sup)
            worker = await client.req_worker(timeout=T)
            assert (await client.work({"input": 5}, timeout=T)).data == 25
            wid = worker.remote_id
            await app_until(pilot, lambda: count(live, wid) > 0 and any(
                "WorkRequested" in t.called for t in rec.machine(wid)), "the job")
            serve = next(t for t in rec.machine(wid) if "ServeClient" in t.called)
            chain = []
            sel = app.session.source(serve)
            while sel is not None and len(chain) < 6:
                tx = sel.machine.transition(sel.number)
                chain.append((sel.machine.id, tx.called))
                sel = app.session.source(tx) if tx.source else None
            assert (sup.mach.id, ["ProvideWorker"]) in chain
            assert chain[-1] == (client.mach.id, ["WorkerRequested"])

            # follow mode: the selected machine's newest transition stays selected
            app.select_machine(wid)
            # records keep arriving: the app catches up with the newest on its next look
            await app_until(pilot, lambda: app.follow and app.number == len(rec.machine(wid)),
                            what=lambda: (app.follow, app.number, len(rec.machine(wid))))
            await client.work({"input": 6}, timeout=T)
            await app_until(pilot, lambda: app.number == len(rec.machine(wid))
                            and any(t.args.get("input") == "6" for t in rec.machine(wid)))
            assert f"pid {pids[wid]} connected" in label(app, wid)
            assert "●" in label(app, f"rs-nw-pub-{wid[3:]}")

            # a worker killed while attached: its machines are disconnected, their data kept
            before = [t.id for t in rec.machine(wid)]
            os.kill(pids[wid], signal.SIGKILL)
            await app_until(pilot, lambda: rec.machine(wid).live is False
                            and "disconnected" in label(app, wid), "the disconnect")
            # everything received is kept (records still in flight at the kill may follow)
            assert [t.id for t in rec.machine(wid)][:len(before)] == before
            assert "⊘" in label(app, wid)
            assert "⊘" in label(app, f"rs-nw-loc-{wid[3:]}")
            other = next(w for w in pids if w != wid)
            assert rec.machine(other).live and "connected" in label(app, other)
            status = app.query_one(LiveStatus).text.plain
            assert "1 disconnected" in status and "dropped 0" in status
            await client.stop()


async def test_follow_mode_stops_on_a_move_and_end_resumes_it() -> None:
    m = quiet(SMALL, id="followed")
    async with serving() as addr:
        # machines of earlier tests that still exist are streamed too: open at this one
        app = ReplayApp(Session.from_live(new_live([addr])), attach=[addr], machine="followed")
        async with app.run_test(size=SIZE) as pilot:
            await app_until(pilot, lambda: app.live is not None and app.live.connected)
            for _ in range(5):
                m.add("B")
            await app_until(pilot, lambda: app.machine is not None and app.number == 5,
                            what=lambda: (app.machine, app.number, app.follow))
            await pilot.press("left")
            assert not app.follow and app.number == 4
            status = app.query_one(LiveStatus).text.plain
            assert "paused (end: follow)" in status and "1 connected" in status
            assert "paused" in app.query_one(AddressBar).text.plain  # the two bars agree
            for _ in range(3):
                m.add("B")
            await app_until(pilot, lambda: len(app.machine) == 8)
            assert app.number == 4  # the user's place is kept
            await pilot.press("end")
            assert app.follow and app.number == 8
            m.add("B")
            await app_until(pilot, lambda: app.number == 9)
            assert "following" in app.query_one(LiveStatus).text.plain
            bar = app.query_one(AddressBar).text.plain
            assert "following" in bar and "paused" not in bar
            await pilot.press("home")
            assert not app.follow and app.number == 1
            assert "paused" in app.query_one(AddressBar).text.plain


async def test_a_debugger_that_falls_behind_shows_the_drops() -> None:
    """The machine never waits for a debugger that stops reading: what does not fit its
    buffer is dropped, and the count reaches the TUI's status line."""
    m = quiet(SMALL, id="flood")
    payload = {"blob": "x" * 200}
    async with serving(limit=32 * 1024) as addr:
        app = ReplayApp(Session.from_live(new_live([addr])), attach=[addr])
        async with app.run_test(size=SIZE) as pilot:
            await app_until(pilot, lambda: app.live is not None and app.live.connected
                            and app.live.targets[0].ready.is_set())
            assert app.live is not None
            rec = process.recorder()
            assert rec is not None and len(rec.subscribers) == 1
            sub = rec.subscribers[0]
            sinks = list(app.live._protocols)
            for sink in sinks:  # the debugger stops reading
                assert sink.transport is not None
                sink.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sink.transport.pause_reading()
            made = 0
            while sub.dropped == 0 and made < 400_000:
                for _ in range(1000):
                    m.add("B", payload)
                made += 1000
                rec.flush()
                await asyncio.sleep(0)  # the endpoint (on this loop) sends what it can
            assert sub.dropped > 0 and m.tick("B") == 2 * made - 1  # nobody waited
            assert sub.pending <= 2 * sub.limit
            for sink in sinks:
                assert sink.transport is not None
                sink.transport.resume_reading()
            m.add("A")  # one more after the flood: it arrives, readable
            rec.flush()
            status = app.query_one(LiveStatus)
            await app_until(pilot, lambda: app.live is not None
                            and app.live.dropped == sub.dropped
                            and any("A" in t.called for t in
                                    app.session.recording.machine("flood").transitions(
                                        max(1, len(app.session.recording.machine("flood"))
                                            - 5))),
                            "the drop count and the last transition")
            await app_until(pilot, lambda: f"dropped {sub.dropped:,}" in status.text.plain,
                            "the status line")
            flood = app.session.recording.machine("flood")
            assert 0 < len(flood) < made and len(flood) + sub.dropped >= made
            assert app.session.recording.corruption == []


# ---------------------------------------------------------------------- listen


CHILD = r"""
import amnode as am
ms = [am.Machine({"A": am.State(), "B": am.State(multi=True), "C": am.State(require=["A"])},
                 id=f"pushed-{i}") for i in range(2)]
for j in range(300):
    for m in ms:
        m.add("B")
        m.add(["A", "C"])
        m.remove("A")
"""


async def test_tui_listen_with_record_equals_a_file_recorder(tmp_path: Path) -> None:
    live = new_live([], record=str(tmp_path / "live"), listen="127.0.0.1:0")
    app = ReplayApp(Session.from_live(live), listen="127.0.0.1:0")
    async with app.run_test(size=SIZE) as pilot:
        await app_until(pilot, lambda: app.listening)
        env = {**os.environ, "AMNODE_DBG_ADDR": app.listening,
               "AMNODE_RECORD": str(tmp_path / "file")}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, env=env)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        rec = app.session.recording
        await app_until(pilot, lambda: rec.streams and all(s.state == "ended"
                                                           for s in rec.streams),
                        lambda: f"the push streams to end: {[s.state for s in rec.streams]}")
        await app_until(pilot, lambda: app.machine is not None
                        and app.number == len(app.machine) == 900,
                        lambda: f"900 transitions shown: {app.machine and len(app.machine)}"
                                f", at {app.number}")
        assert "pid" in label(app, "pushed-0") and "disconnected" in label(app, "pushed-0")
    by_file = open_recording(tmp_path / "file")
    by_live = open_recording(tmp_path / "live")
    assert {m.id: [t.id for t in m] for m in by_live.machines} == \
        {m.id: [t.id for t in m] for m in by_file.machines}
    assert by_live.corruption == []


# ---------------------------------------------------------------------- after the fact


def test_attach_after_the_fact_shows_the_flight_recorder(tmp_path: Path, capsys) -> None:
    env = {**os.environ, "AMNODE_DBG_DUMP": str(tmp_path / "dumps")}
    env.pop("AMNODE_DBG_RING", None)  # node processes keep a flight recorder by default
    proc = subprocess.Popen([sys.executable, str(WORKERS / "supervisor_proc.py"), "2", "5"],
                            stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        addr = started["addr"]
        capsys.readouterr()
        assert cli.main(["ls", addr, "--json"]) == 0
        machines = json.loads(capsys.readouterr().out)
        by_id = {m["id"]: m for m in machines}
        sup = next(m for m in machines if m["id"].startswith("ns-"))
        workers = [m for m in machines if m["id"].startswith("nw-")]
        assert sup["transitions"] > 5 and len(workers) == 2
        assert all(by_id[w["id"]]["transitions"] > 0 for w in workers)
        assert {w["process"]["pid"] for w in workers} == set(started["pids"])
        # the ring holds how it started: the supervisor's first transitions included
        assert cli.main(["log", addr, "-m", sup["id"], "--json", "--limit", "3"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert first[0]["number"] == 1 and first[0]["called"] == ["Start"]
        # SIGUSR1: the same history in a file amdbg opens
        os.kill(proc.pid, signal.SIGUSR1)
        dump = wait_for_dumps(tmp_path / "dumps")[0]
        assert cli.main(["ls", str(dump), "--json"]) == 0
        dumped = {m["id"] for m in json.loads(capsys.readouterr().out)}
        assert sup["id"] in dumped
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------- log --follow


async def _lines(stream: asyncio.StreamReader, n: int) -> list[str]:
    out = []
    while len(out) < n:
        line = await asyncio.wait_for(stream.readline(), T)
        assert line, f"the follower ended after {out}"
        out.append(line.decode())
    return out


async def test_log_follow_prints_a_file_as_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "growing.amrec"
    m = quiet(SMALL, id="tail-me")
    rec = Recorder(path)
    rec.attach(m)
    for _ in range(12):
        m.add("B")
    rec.flush()
    proc = await asyncio.create_subprocess_exec(
        *AMDBG, "log", str(path), "-m", "tail-me", "--follow",
        "--json", stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        first = [json.loads(x) for x in await _lines(proc.stdout, 10)]  # the last 10
        assert [r["number"] for r in first] == list(range(3, 13))
        m.add("A", {"note": "new"})
        rec.flush()
        new = json.loads((await _lines(proc.stdout, 1))[0])
        assert new["number"] == 13 and new["called"] == ["A"] and new["machine"] == "tail-me"
    finally:
        proc.terminate()
        await proc.wait()
        rec.close()


async def test_log_follow_prints_a_live_process(tmp_path: Path) -> None:
    m = quiet(SMALL, id="live-tail")
    async with serving() as addr:
        proc = await asyncio.create_subprocess_exec(
            *AMDBG, "log", addr, "--follow",
            stdout=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
        try:
            assert proc.stdout is not None
            await until(lambda: endpoint.attached() == 1, what="the follower to attach")
            m.add("A")
            m.add("C")
            lines = await _lines(proc.stdout, 2)
            assert lines[0].startswith("live-tail #1") and "add A" in lines[0]
            assert lines[1].startswith("live-tail #2") and "add C" in lines[1]
        finally:
            proc.terminate()
            await proc.wait()


# ---------------------------------------------------------------------- command line


def test_live_commands_fail_in_one_line(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % s.getsockname()[1]

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        status = cli.main(list(argv))
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        return status, err

    status, err = run("ls", dead)
    assert status == 1 and f"cannot attach to {dead}" in err
    status, err = run("attach", "nowhere")
    assert status == 2 and "is not HOST:PORT" in err
    status, err = run("attach", dead)  # not a terminal here
    assert status == 2 and "attach needs a terminal" in err
    status, err = run("listen")
    assert status == 2 and "listen needs a terminal" in err
    status, err = run("replay", dead)
    assert status == 2 and f"amdbg attach {dead}" in err
    status, err = run("log", dead, "--follow", "--from", "3")
    assert status == 2 and "--follow prints from the end" in err


def test_ls_and_log_read_a_live_process(capsys) -> None:
    flight.enable(16, signals=False)
    try:
        addr = endpoint.serve_in_thread("127.0.0.1:0")  # AMNODE_DBG_LISTEN does this
        assert addr
        m = am.Machine({"On": am.State(), "Off": am.State(remove=["On"])}, id="in-a-thread")
        m.add("On")
        m.add("Off")
        capsys.readouterr()
        assert cli.main(["ls", addr, "--json"]) == 0
        listed = {x["id"]: x for x in json.loads(capsys.readouterr().out)}
        assert listed["in-a-thread"]["transitions"] == 2
        assert cli.main(["log", addr, "-m", "in-a-thread", "--json"]) == 0
        assert [r["called"] for r in json.loads(capsys.readouterr().out)] == [["On"], ["Off"]]
    finally:
        flight.enable(0)
