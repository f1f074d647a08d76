"""Live streams: growing recordings (files being written, streams fed in pieces), attaching to
a process, the flight recorder's ring and dumps, push mode, and the bounds a slow or hostile
peer meets (docs/recording-format.md "Live streams")."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from helpers.live import (
    T,
    count,
    grown,
    hello,
    quiet,
    serving,
    telemetry_tracers,
    until,
    wait_for_dumps,
)

import amnode as am
from amnode.machine import Tracer
from amnode.telemetry import (
    Recorder,
    RecordingError,
    endpoint,
    flight,
    open_recording,
    process,
)
from amnode.telemetry.format import SEGMENT_PREFIX
from amnode.telemetry.live_protocol import (
    CONTROL_MAX,
    HEADER,
    LiveProtocolError,
    MessageReader,
    Msg,
    control,
    message,
)
from amnode.telemetry.reader import Recording
from amnode.telemetry.receiver import LiveConnectError, LiveRecording

SMALL = {"A": {}, "B": {"multi": True}, "C": {"require": ["A"]}}
#: more than 16 states: delta clocks, full ones every 64 transitions
BIG = {f"S{i}": {"multi": True} for i in range(20)}


class Times(Tracer):
    """(id, time_before, time_after) of every transition, to compare with what arrives."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[list[int], list[int]]] = {}

    def transition_end(self, t: am.Transition) -> None:
        self.seen[t.id] = (list(t.time_before), list(t.time_after))


def recorded_bytes(tmp_path: Path, n: int = 40) -> tuple[bytes, list[str]]:
    """A small recording file's bytes (two flushes) and its transition ids."""
    path = tmp_path / "src.amrec"
    m = quiet(SMALL, id="src")
    with Recorder(path) as rec:
        rec.attach(m)
        for i in range(n):
            m.add("B")
            if i == n // 2:
                rec.flush()
    return path.read_bytes(), [t.id for t in open_recording(path).machine("src")]


@pytest.fixture(autouse=True)
def _no_ring() -> None:
    """Every test starts and ends without a flight recorder."""
    flight.enable(0)
    yield
    flight.enable(0)


# ---------------------------------------------------------------------- growing sources


def test_follow_reads_a_file_as_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "growing.amrec"
    m = quiet(SMALL, id="grows")
    rec = Recorder(path)
    rec.attach(m)
    rec.flush()
    r = open_recording(path, follow=True)
    assert r.growing and [x.key for x in r.machines] == ["grows"] and len(r.machines[0]) == 0
    for i in range(1, 4):
        for _ in range(10):
            m.add("B")
        rec.flush()
        growth = r.refresh()
        assert growth.grown == {"grows": 10 * (i - 1)} and len(r.machines[0]) == 10 * i
    assert not r.refresh()  # nothing new: nothing changed
    m2 = quiet(SMALL, id="later")
    rec.attach(m2)
    m2.add("A")
    rec.close()
    growth = r.refresh()
    assert [x.key for x in growth.new_machines] == ["later"]
    whole = open_recording(path)
    assert [[t.id for t in x] for x in r.machines] == [[t.id for t in x] for x in whole.machines]
    assert r.corruption == []


def test_followed_directory_picks_up_new_files(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    r = open_recording(d, follow=True)  # no process has written yet
    assert r.machines == [] and r.growing
    with Recorder(d) as rec:
        m = quiet(SMALL, id="first")
        rec.attach(m)
        m.add("A")
    assert [x.key for x in r.refresh().new_machines] == ["first"]
    assert len(r.machine("first")) == 1


def test_a_stream_fed_in_any_pieces_reads_like_the_file(tmp_path: Path) -> None:
    data, ids = recorded_bytes(tmp_path)
    for piece in (1, 7, 33, 4096):
        live = Recording.live("pieces")
        s = live.add_stream("s", 1 << 20)
        for i in range(0, len(data), piece):
            live.feed(s, data[i:i + piece])
        m = live.machine("src")
        assert [t.id for t in m] == ids and m.live is True and m.unverified == []
        live.end_stream(s, "done")
        assert m.live is False and m.end_reason == "done" and live.corruption == []


def test_an_ended_stream_keeps_its_complete_records_unverified(tmp_path: Path) -> None:
    data, ids = recorded_bytes(tmp_path)
    live = Recording.live("torn")
    s = live.add_stream("s", 1 << 20)
    live.feed(s, data[:-40])  # the last block's check record never arrives
    before = len(live.machine("src"))
    live.end_stream(s, "connection lost")
    m = live.machine("src")
    assert len(m) > before and m.unverified and [t.id for t in m] == ids[:len(m)]
    assert live.corruption and live.corruption[0].torn_tail


def test_damage_in_a_stream_ends_that_stream_only(tmp_path: Path) -> None:
    data, ids = recorded_bytes(tmp_path)
    header = SEGMENT_PREFIX.size + SEGMENT_PREFIX.unpack_from(data)[3] + 4
    live = Recording.live("damage")
    bad = live.add_stream("bad", 1 << 20)
    good = live.add_stream("good", 1 << 20)
    with pytest.raises(RecordingError, match="bad frame marker"):
        live.feed(bad, data[:header] + b"\x00garbage" * 8)
    assert bad.state == "ended" and "damaged" in bad.end_reason
    with pytest.raises(RecordingError, match="ended"):
        live.feed(bad, data[header:])
    live.feed(good, data)
    assert [t.id for t in live.machine("src")] == ids
    with pytest.raises(RecordingError, match="not an amnode recording"):
        live.feed(live.add_stream("foreign", 1 << 20), b"PK\x03\x04 a zip file")


def test_a_stream_over_its_byte_limit_ends(tmp_path: Path) -> None:
    data, _ = recorded_bytes(tmp_path)
    live = Recording.live("limit")
    s = live.add_stream("s", len(data) - 1)
    with pytest.raises(RecordingError, match="exceeds"):
        live.feed(s, data)
    assert s.state == "ended"


def test_message_reader_enforces_the_bounds() -> None:
    reader = MessageReader(preface=True)
    with pytest.raises(LiveProtocolError, match="preface"):
        reader.feed(b"GET / HTTP/1.1\r\n")
    ok = MessageReader(preface=False)
    assert ok.feed(control(Msg.HELLO, 0, {"v": 1})[:5]) == []  # an incomplete header waits
    with pytest.raises(LiveProtocolError, match="exceeds"):
        MessageReader(preface=False).feed(HEADER.pack(Msg.HELLO, 0, 0, 0, CONTROL_MAX + 1))
    with pytest.raises(LiveProtocolError, match="exceeds"):
        MessageReader(preface=False).feed(HEADER.pack(Msg.DATA, 0, 0, 1, 1 << 30))
    with pytest.raises(LiveProtocolError, match="unknown message type"):
        MessageReader(preface=False).feed(message(99, 0, b""))
    with pytest.raises(LiveProtocolError, match="flags"):
        MessageReader(preface=False).feed(HEADER.pack(Msg.BYE, 1, 0, 0, 0))


# ---------------------------------------------------------------------- attaching


async def test_attach_streams_every_machine_and_detaching_unbinds_every_tracer() -> None:
    times = Times()
    m = quiet(SMALL, id="attached", tracers=[times])
    m.add("A")  # before anyone attached: no tracer, nothing recorded
    assert telemetry_tracers(m) == [] and process.recorder() is None
    async with serving() as addr:
        live = LiveRecording("test")
        target = await live.attach(addr)
        assert await live.wait_ready(T) and target.connected
        assert target.process["pid"] == os.getpid()
        assert len(telemetry_tracers(m)) == 1  # bound while a debugger is attached
        for _ in range(25):
            m.add("B")
        m2 = quiet(SMALL, id="born-later")
        m2.add("A")
        await grown(live, lambda: count(live, "attached") == 25
                    and count(live, "born-later") == 1)
        rec_m = live.recording.machine("attached")
        for tx in rec_m:  # the first one carries its clock before: every clock is exact
            assert (tx.time_before, tx.time_after) == times.seen[tx.id]
        await live.close()
        await until(lambda: process.recorder() is None, what="the recorder to close")
    assert telemetry_tracers(m) == [] and telemetry_tracers(m2) == []
    assert rec_m.live is False


async def test_the_ring_is_sent_first_with_exact_clocks() -> None:
    times = Times()
    small = quiet(SMALL, id="ring-small", tracers=[times])
    big = quiet(BIG, id="ring-big", tracers=[times])
    flight.enable(8, signals=False)
    for i in range(70):
        small.add("B")
        big.add(f"S{i % 20}")
    async with serving() as addr:
        live = LiveRecording("ring")
        await live.attach(addr)
        assert await live.wait_ready(T)
        live.recording.refresh()
        for key in ("ring-small", "ring-big"):
            m = live.recording.machine(key)
            assert 8 <= len(m) <= 15, (key, len(m))  # the last 8 to 15
            assert m.transition(len(m)).seq == 70
            for tx in m:
                assert (tx.time_before, tx.time_after) == times.seen[tx.id]
        big.add("S1")  # then what happens next, after the history
        big_m = live.recording.machine("ring-big")
        await grown(live, lambda: big_m.transition(len(big_m)).seq == 71)
        await live.close()


async def test_disposed_machines_stay_in_the_ring() -> None:
    flight.enable(4, signals=False)
    m = quiet(SMALL, id="gone-soon")
    for _ in range(6):
        m.add("B")
    m.dispose()
    async with serving() as addr:
        live = LiveRecording("ring")
        await live.attach(addr)
        assert await live.wait_ready(T)
        live.recording.refresh()
        gone = live.recording.machine("gone-soon")
        assert gone.disposed and 4 <= len(gone) <= 6
        await live.close()


async def test_no_history_on_request() -> None:
    flight.enable(8, signals=False)
    m = quiet(SMALL, id="no-history")
    for _ in range(10):
        m.add("B")
    async with serving() as addr:
        live = LiveRecording("now", history=False)
        await live.attach(addr)
        assert await live.wait_ready(T)
        m.add("B")
        await grown(live, lambda: count(live, "no-history") == 1)
        await live.close()


async def test_the_endpoint_binds_loopback_unless_told_otherwise() -> None:
    server = await endpoint.serve(":0")  # AMNODE_DBG_LISTEN=:PORT
    try:
        assert server.sockets[0].getsockname()[0] == "127.0.0.1"
    finally:
        server.close()
    live = LiveRecording("listen")
    addr = await live.listen(":0")  # amdbg listen :PORT
    assert addr.startswith("127.0.0.1:")
    await live.close()


async def test_more_debuggers_than_allowed_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "MAX_ATTACHED", 1)
    async with serving() as addr:
        first = LiveRecording("one")
        await first.attach(addr)
        second = LiveRecording("two")
        with pytest.raises(LiveConnectError, match="1 debuggers are attached already"):
            await second.attach(addr)
        await first.close()
        await until(lambda: endpoint.attached() == 0)
        await second.attach(addr)  # room again
        await second.close()


async def test_unreachable_and_foreign_addresses_fail_in_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % s.getsockname()[1]
    with pytest.raises(LiveConnectError, match="cannot attach to"):
        await LiveRecording("x").attach(dead)

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    addr = "127.0.0.1:%d" % server.sockets[0].getsockname()[1]
    with pytest.raises(LiveConnectError, match="cannot attach"):
        await LiveRecording("x").attach(addr)
    server.close()
    with pytest.raises(LiveConnectError, match="not HOST:PORT"):
        await LiveRecording("x").attach("nowhere")


# ---------------------------------------------------------------------- bounds


async def test_a_debugger_that_stops_reading_costs_a_bounded_buffer() -> None:
    limit = 64 * 1024
    m = quiet(SMALL, id="fast")
    payload = {"blob": "x" * 90}
    async with serving(limit=limit) as addr:
        host, port = addr.split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        sock.send(hello())  # ... and never reads again
        rec = await until(lambda: (r := process.recorder()) and r.subscribers and r)
        sub = rec.subscribers[0]
        n = 40_000
        for _ in range(n):
            m.add("B", payload)
        assert m.tick("B") == 2 * n - 1  # the machine did all of it, nobody waited
        rec.flush()
        await until(lambda: sub.dropped > 0, what="drops to be counted")
        assert sub.pending <= 2 * limit  # what waits for the debugger stays bounded
        assert rec.dropped == 0 and len(rec._queue) == 0  # the machines' buffer stays empty
        assert not sub.closed
        sock.close()


async def test_garbage_and_oversized_messages_close_only_that_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "HELLO_TIMEOUT", 0.3)
    m = quiet(SMALL, id="sturdy")
    async with serving() as addr:
        live = LiveRecording("good")
        await live.attach(addr)
        host, port = addr.split(":")

        async def closed_after(data: bytes) -> bytes:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(data)
            got = await asyncio.wait_for(reader.read(), T)  # EOF: the endpoint closed it
            writer.close()
            return got

        await closed_after(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await closed_after(b"\x89AMLIVE\n" + HEADER.pack(Msg.HELLO, 0, 0, 0, 100 << 20))
        await closed_after(b"\x89AMLIVE\n" + message(Msg.HELLO, 0, b"\xc1\xc1\xc1"))
        await closed_after(hello(v=2))
        await closed_after(hello(role="push"))
        got = await closed_after(hello() + message(Msg.DATA, 1, b"mutate me"))
        assert got  # it was attached (HELLO, OPEN, its stream) before it broke the rule
        await closed_after(b"")  # says nothing: closed after the HELLO timeout
        m.add("B")
        await grown(live, lambda: count(live, "sturdy") == 1)
        assert live.connected == 1
        await live.close()


async def test_a_listener_closes_only_the_connection_that_breaks_the_rules(
        tmp_path: Path) -> None:
    data, ids = recorded_bytes(tmp_path)
    live = LiveRecording("listen")
    addr = await live.listen("127.0.0.1:0")
    host, port = addr.split(":")

    async def push(*messages: bytes, expect_close: bool = True) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(hello(role="push") + b"".join(messages))
        if expect_close:
            await asyncio.wait_for(reader.read(), T)
        return writer

    good = await push(message(Msg.OPEN, 1, b"\x80"), message(Msg.DATA, 1, data),
                      expect_close=False)
    await push(message(Msg.DATA, 7, b"x"))  # a stream that was never opened
    await push(message(Msg.OPEN, 1, b"\x80"), message(Msg.DATA, 1, b"not a recording at all"))
    await push(message(Msg.OPEN, 1, b"\x80"), message(Msg.OPEN, 1, b"\x80"))
    await push(HEADER.pack(Msg.DATA, 0, 0, 1, 64 << 20))  # refused before its HELLO counts
    await grown(live, lambda: len(live.targets) == 4 and
                sum(t.connected for t in live.targets) == 1,
                what=lambda: [(t.state, t.reason) for t in live.targets])
    assert [t.id for t in live.recording.machine("src")] == ids
    assert live.targets[0].connected
    good.close()
    await until(lambda: live.connected == 0)
    await live.close()


# ---------------------------------------------------------------------- push


CHILD = r"""
import amnode as am
ms = [am.Machine({"A": am.State(), "B": am.State(multi=True), "C": am.State(require=["A"])},
                 id=f"push-{i}") for i in range(3)]
for j in range(500):
    for m in ms:
        m.add("B")
        m.add(["A", "C"])
        m.remove("A")
ms[0].dispose()
"""


async def test_push_to_a_listener_records_what_a_file_recorder_records(tmp_path: Path) -> None:
    live = LiveRecording("listen", record_dir=tmp_path / "live")
    addr = await live.listen("127.0.0.1:0")
    env = {**os.environ, "AMNODE_DBG_ADDR": addr, "AMNODE_RECORD": str(tmp_path / "file")}
    env.pop("AMNODE_DBG_RING", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, env=env)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    await until(lambda: live.targets and live.connected == 0, what="the pusher to finish")
    live.recording.refresh()
    assert live.dropped == 0 and [t.reason for t in live.targets] == ["the process exits"]
    await live.close()
    by_file = open_recording(tmp_path / "file")
    by_live = open_recording(tmp_path / "live")
    assert by_live.corruption == []

    def ids(r: Recording) -> dict[str, list[str]]:
        return {m.id: [t.id for t in m] for m in r.machines}

    assert ids(by_live) == ids(by_file) and len(ids(by_file)["push-0"]) == 1500
    assert by_live.machine("push-0").disposed and by_file.machine("push-0").disposed


#: the push thread's connection completes only once the process has begun to exit (its exit
#: flush, `PushClient._finish`, opens the gate)
SLOW_CONNECT = r"""
import asyncio
orig_connect = asyncio.BaseEventLoop.create_connection
async def create_connection(self, *args, **kwargs):
    from amnode.telemetry import push
    gate = asyncio.Event()
    orig_finish = push.PushClient._finish
    async def finish(client, timeout):
        gate.set()
        await orig_finish(client, timeout)
    push.PushClient._finish = finish
    await gate.wait()
    return await orig_connect(self, *args, **kwargs)
asyncio.BaseEventLoop.create_connection = create_connection
"""


async def test_a_process_exiting_while_it_connects_still_pushes_everything() -> None:
    live = LiveRecording("listen")
    addr = await live.listen("127.0.0.1:0")
    env = {**os.environ, "AMNODE_DBG_ADDR": addr}
    env.pop("AMNODE_DBG_RING", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SLOW_CONNECT + CHILD,
                                                env=env)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    await until(lambda: live.targets and live.connected == 0, what="the pusher to finish")
    live.recording.refresh()
    assert [t.reason for t in live.targets] == ["the process exits"]
    assert [count(live, f"push-{i}") for i in range(3)] == [1500] * 3
    await live.close()


async def test_a_push_client_retries_until_a_listener_appears(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"127.0.0.1:{port}"
    code = CHILD.replace("for j in range(500)", "import time\nfor j in range(5)") + \
        "\ntime.sleep(60)\n"
    env = {**os.environ, "AMNODE_DBG_ADDR": addr}
    env.pop("AMNODE_DBG_RING", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), T)
        assert b"cannot push to the debugger" in line and b"retrying" in line
        live = LiveRecording("late")
        await live.listen(addr)
        await grown(live, lambda: all(count(live, f"push-{i}") == 15 for i in range(3)))
        await live.close()
    finally:
        proc.kill()
        await proc.wait()


# ---------------------------------------------------------------------- flight recorder


class Raises:
    def BState(self, e: am.Event) -> None:
        raise RuntimeError("boom")


def test_an_unhandled_exception_dumps_the_flight_recorder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
        ) -> None:
    monkeypatch.setenv("AMNODE_DBG_DUMP", str(tmp_path / "dumps"))
    monkeypatch.setattr(flight, "_last_dump", -1e9)
    monkeypatch.setattr(flight, "_dumps", 0)
    flight.enable(16, signals=False)
    m = quiet(SMALL, id="crashy", handlers=Raises())
    m.add("A")
    m.add("B")  # BState raises: Exception, nobody handles it
    assert m.is_active("Exception")
    dumps = tmp_path / "dumps"
    files = wait_for_dumps(dumps, 1)
    r = open_recording(files[0])
    crashed = r.machine("crashy")
    assert [t.called for t in crashed][:2] == [["A"], ["B"]]
    assert crashed.transition(len(crashed)).is_error
    assert "entered Exception with no handler" in capfd.readouterr().err
    m.add("B")  # already in Exception (and rate-limited): no second dump
    assert len(list(dumps.iterdir())) == 1


class Handles(Raises):
    def ExceptionState(self, e: am.Event) -> None:
        e.machine.remove("Exception")


def test_a_handled_exception_dumps_nothing(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMNODE_DBG_DUMP", str(tmp_path / "dumps"))
    monkeypatch.setattr(flight, "_last_dump", -1e9)
    flight.enable(16, signals=False)
    m = quiet(SMALL, id="careful", handlers=Handles())
    m.add("B")
    assert flight.dump("check") is not None  # dumps work; only that one was made
    assert len(list((tmp_path / "dumps").iterdir())) == 1


def test_sigusr1_dumps_the_flight_recorder(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMNODE_DBG_DUMP", str(tmp_path / "dumps"))
    previous = signal.getsignal(signal.SIGUSR1)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    monkeypatch.setattr(flight, "_signal_installed", False)
    try:
        flight.enable(8)
        m = quiet(SMALL, id="signalled")
        for _ in range(3):
            m.add("B")
        os.kill(os.getpid(), signal.SIGUSR1)
        files = wait_for_dumps(tmp_path / "dumps", 1)
        assert len(open_recording(files[0]).machine("signalled")) == 3
    finally:
        signal.signal(signal.SIGUSR1, previous)


