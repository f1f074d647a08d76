"""aRPC limits: what one hostile peer can make a server (or a client) decode, buffer or keep.

Each test reproduces an attack at a scale that stays fast and asserts the refusal itself (the
frame is refused before its body is buffered or decoded, the connection is closed, a resource
is released), never a duration or a memory reading. Crashes are provoked in a subprocess.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path
from typing import Any

import msgpack
import pytest
from helpers.machines import no_rels_schema
from helpers.rpc import (
    fake_server,
    frame,
    hello,
    nested_typed,
    new_source,
    raw_conn,
    raw_frame,
    read_frame,
    rpc_pair,
    wait_closed,
    wait_until,
)

import amnode.machine as am
from amnode.rpc import Client, Limits, Mux, Server
from amnode.rpc.frames import Codec, FrameReader
from amnode.rpc.source import SourceHub
from amnode.rpc.typed_args import MAX_TYPED_DEPTH, DecodeError, DecodeLimitError

TESTS = Path(__file__).resolve().parent.parent


@pytest.fixture
def rpc_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="amnode.rpc")
    return caplog


def logged(log: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in log.records)


def run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (a crash there cannot take pytest down)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
        "PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=env)


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     **kw: Any) -> Any:
    writer.write(frame([0, 1, 1, hello(**kw)]))
    resp = await read_frame(reader, timeout=30)
    assert resp[0] == 1 and resp[2] is None, resp
    writer.write(frame([0, 2, 2, None]))
    assert (await read_frame(reader, timeout=30))[2] is None
    return resp[3]


# --- 1. nested typed values: a bounded depth, never a crash ---

def test_typed_values_nest_at_most_max_depth() -> None:
    codec = Codec()
    at_limit = msgpack.packb([2, 10, {"x": nested_typed(MAX_TYPED_DEPTH)}])
    with pytest.raises(DecodeError, match="unknown typed args") as info:
        codec.unpack(at_limit)
    assert not isinstance(info.value, DecodeLimitError), "8 levels are allowed"
    with pytest.raises(DecodeLimitError, match=f"nested deeper than {MAX_TYPED_DEPTH}"):
        codec.unpack(msgpack.packb([2, 10, {"x": nested_typed(MAX_TYPED_DEPTH + 1)}]))


def test_deeply_nested_typed_values_do_not_crash_a_mux() -> None:
    """A ~6 KB frame of 1000 nested typed values, sent before any Hello, used to kill the
    process (SIGSEGV); now it closes that one connection and the mux serves the next client."""
    proc = run_isolated('''
        import asyncio, logging, msgpack
        from helpers.rpc import nested_typed, new_source, raw_conn, raw_frame, wait_closed
        from amnode.rpc import Client, Mux

        async def main():
            src = new_source()
            mux = Mux(src)
            await mux.start()
            reader, writer = await raw_conn(mux.addr)
            bomb = msgpack.packb([0, 1, 1, {"v": 1, "id": nested_typed(1000)}])
            print("frame bytes", len(bomb), flush=True)
            writer.write(raw_frame(bomb))
            await wait_closed(reader, timeout=30)
            client = Client(mux.addr, id="after", schema=src.schema)
            await client.start()
            await client.mach.when("Ready", timeout=30)
            assert await client.netmach.add("D") == 0
            print("still serving", flush=True)
            await client.stop(dispose=True)
            await mux.stop(dispose=True)

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(main())
    ''')
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "still serving" in proc.stdout
    assert "typed values nested deeper than" in proc.stderr


def test_deeply_nested_typed_values_do_not_crash_a_client() -> None:
    """A malicious server's Welcome with 1000 nested typed values: the client drops the
    connection with ErrRpc and lives on."""
    proc = run_isolated('''
        import asyncio, msgpack
        from helpers.rpc import fake_server, nested_typed, raw_frame, read_frame, wait_closed
        from amnode.rpc import Client

        async def fake(reader, writer):
            msg = await read_frame(reader)
            writer.write(raw_frame(msgpack.packb([1, msg[1], None, {
                "v": 1, "id": nested_typed(1000), "names": ["A"], "time": [0], "qt": 1}])))
            await wait_closed(reader, timeout=30)

        async def main():
            server, addr = await fake_server(fake)
            client = Client(addr, id="victim", conn_retry_delay=30)
            await client.start()
            await client.mach.when_time({"ErrRpc": 1}, timeout=30)
            print("client alive", flush=True)
            await client.stop(dispose=True)
            server.close()

        asyncio.run(main())
    ''')
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "client alive" in proc.stdout


# --- 2. big frames: refused by kind before buffering, and by a budget while decoding ---

def test_a_frame_over_the_limit_of_its_kind_is_refused_on_its_head() -> None:
    limits = {(0, 7): 64}

    def check(head: bytes, n: int) -> None:
        from amnode.rpc.frames import FrameError
        from amnode.rpc.protocol import peek_envelope
        env = peek_envelope(head)
        assert env is not None
        if n > limits.get((env[0], env[2]), 1 << 30):
            raise FrameError(f"{n} too big")

    reader = FrameReader(1 << 30, check)
    sync = msgpack.packb([0, 5, 7, None])
    body = sync + b"\x00" * 10_000
    # the first bytes of the frame only: the rest of the body is never needed
    start = len(body).to_bytes(4, "big") + body[:40]
    assert reader.feed(start[:10]) == [] and reader.buffered == 10, "waits for the head"
    with pytest.raises(Exception, match="too big"):
        reader.feed(start[10:])
    assert reader.completed == 0
    ok = FrameReader(1 << 30, check)
    assert ok.feed(raw_frame(sync)) == [sync] and ok.completed == 1


async def test_control_frames_are_small_after_hello(rpc_log: pytest.LogCaptureFixture) -> None:
    """A Sync announced as 1 MiB is refused as soon as its envelope head arrives: the server
    closes the connection without waiting for (or buffering) the body."""
    src = new_source()
    mux = Mux(src)
    await mux.start()
    client = Client(mux.addr, id="bystander", schema=src.schema)
    try:
        await client.start()
        await client.mach.when("Ready", timeout=30)
        reader, writer = await raw_conn(mux.addr)
        await _handshake(reader, writer)
        head = msgpack.packb([0, 3, 7, None]) + b"\x00" * 60
        writer.write((1 << 20).to_bytes(4, "big") + head)  # the rest never comes
        resp = await read_frame(reader, timeout=30)
        assert resp is not None and resp[:2] == [1, 3] and resp[2][0] == 1, resp
        assert "exceeds the limit of 65536" in resp[2][1]
        assert await wait_closed(reader, timeout=30)
        writer.close()
        assert logged(rpc_log, "SYNC frame of 1048576 bytes exceeds the limit of 65536")
        assert client.netmach is not None and await client.netmach.add("D") == am.EXECUTED
    finally:
        await client.stop(dispose=True)
        await mux.stop(dispose=True)


def test_the_decode_budget_stops_a_value_bomb() -> None:
    """A 1 MB frame of a million empty arrays would be ~60 MB of lists; decoding stops at the
    budget instead (the budget counts values as msgpack builds them)."""
    codec = Codec(max_objects=100_000)
    bomb = msgpack.packb([0, 1, 3, [[1], 1, {"x": [[] for _ in range(1_000_000)]}]])
    with pytest.raises(DecodeLimitError, match="more than 100000 values"):
        codec.unpack(bomb)
    maps = msgpack.packb([0, 1, 3, [[1], 1, {"x": [{"a": 1}] * 300_000}]])
    with pytest.raises(DecodeLimitError):
        codec.unpack(maps)
    # inside a typed value too
    inner = msgpack.packb(["am.AException", {"err": [[] for _ in range(200_000)]}])
    with pytest.raises(DecodeLimitError):
        codec.unpack(msgpack.packb([0, 1, 3, [[1], 1, {"x": msgpack.ExtType(1, inner)}]]))
    # a frame under the budget decodes as before
    assert codec.unpack(msgpack.packb([0, 1, 3, [[1], 1, {"x": [[]] * 1000}]]))[1] == 1


async def test_a_value_bomb_in_a_mutation_closes_the_connection(
        rpc_log: pytest.LogCaptureFixture) -> None:
    src = new_source(no_rels_schema())
    async with rpc_pair(src, check_errors=False) as t:
        reader, writer = await raw_conn(t.server.addr)
        await _handshake(reader, writer)  # replaces the test client
        bomb = msgpack.packb([0, 3, 3, [[1], 1, {"x": [[] for _ in range(300_000)]}]])
        writer.write(raw_frame(bomb))
        assert await wait_closed(reader, timeout=30)
        writer.close()
        assert logged(rpc_log, "frame decodes into more than 262144 values")
        assert src.is_inactive("A"), "nothing ran"


async def test_a_client_refuses_big_pings(rpc_log: pytest.LogCaptureFixture) -> None:
    async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = await read_frame(reader)
        writer.write(frame([1, msg[1], None, {"v": 1, "id": "fake", "names": ["A", "Exception"],
                                              "time": [0, 0], "qt": 1, "count": 2, "base": 1,
                                              "schema": {"A": {}, "Exception": {}}}]))
        msg = await read_frame(reader)
        writer.write(frame([1, msg[1], None, None]))
        writer.write((1 << 20).to_bytes(4, "big") + msgpack.packb([2, 70, None]) + bytes(64))
        await wait_closed(reader, timeout=30)

    server, addr = await fake_server(fake)
    client = Client(addr, id="big-ping", conn_retry_delay=30)
    try:
        await client.start()
        await client.mach.when_time({"ErrRpc": 1}, timeout=30)
        assert logged(rpc_log, "SERVER_PING frame of 1048576 bytes exceeds the limit")
    finally:
        await client.stop(dispose=True)
        server.close()


# --- 3. per-peer resources of a Mux ---

async def test_mux_caps_its_connections(rpc_log: pytest.LogCaptureFixture) -> None:
    src = new_source()
    mux = Mux(src, max_conns=3)
    await mux.start()
    held = []
    try:
        for _ in range(3):
            held.append(await raw_conn(mux.addr))
        await wait_until(lambda: len(mux.servers) == 3, timeout=30)
        reader, writer = await raw_conn(mux.addr)
        assert await wait_closed(reader, timeout=30)
        writer.close()
        assert logged(rpc_log, "max_conns")
        assert len(mux.servers) == 3
        for _, w in held:
            w.close()
        await wait_until(lambda: not mux.servers, timeout=30)
        client = Client(mux.addr, id="after-cap", schema=src.schema)
        await client.start()
        await client.mach.when("Ready", timeout=30)
        await client.stop(dispose=True)
    finally:
        for _, w in held:
            w.close()
        await mux.stop(dispose=True)


async def test_a_stalled_frame_is_dropped(rpc_log: pytest.LogCaptureFixture) -> None:
    """A peer that starts a (big, allowed) mutation frame and stops sending does not hold its
    buffer forever: after `frame_timeout` the connection closes."""
    src = new_source()
    mux = Mux(src, limits=Limits(frame_timeout=0.2))
    await mux.start()
    try:
        reader, writer = await raw_conn(mux.addr)
        await _handshake(reader, writer)
        head = msgpack.packb([0, 3, 3, [[1], 1, {"blob": b""}]])[:20]
        writer.write((8 << 20).to_bytes(4, "big") + head + b"\x00" * 65536)
        assert await wait_closed(reader, timeout=30)
        writer.close()
        assert logged(rpc_log, "still incomplete after 0.2s")
        await wait_until(lambda: not mux.servers, timeout=30)
    finally:
        await mux.stop(dispose=True)


@pytest.mark.parametrize("field,value", [
    ("hb", float("nan")), ("hb", float("inf")), ("hb", -1), ("hb", "5"), ("n", 1 << 63),
    ("n", -1), ("sh", "x" * 65), ("sid", "s" * 65), ("id", "i" * 1025), ("id", "")])
async def test_every_hello_field_is_bounded(field: str, value: Any,
                                            rpc_log: pytest.LogCaptureFixture) -> None:
    async with rpc_pair(check_errors=False) as t:
        reader, writer = await raw_conn(t.server.addr)
        writer.write(frame([0, 1, 1, hello(**{field: value})]))
        resp = await read_frame(reader, timeout=30)
        assert resp is not None and resp[2] is not None and resp[2][0] == 1, resp
        assert f"hello.{field}" in resp[2][1]
        assert await wait_closed(reader, timeout=30)
        writer.close()
        assert t.client.mach.is_active("Ready")


async def test_a_long_heartbeat_is_clamped() -> None:
    """`hb=1e9` used to keep a silent connection for 3e9 s; the server bases its idle timeout
    on at most `Limits.max_heartbeat` (60 s) of the peer's."""
    src = new_source()
    mux = Mux(src, ping_interval=5)
    await mux.start()
    try:
        reader, writer = await raw_conn(mux.addr)
        await _handshake(reader, writer, hb=1e9)
        server = next(iter(mux.servers.values()))
        assert server.conn is not None
        assert server.conn.idle_timeout == 3 * 60
        writer.close()
    finally:
        await mux.stop(dispose=True)


async def test_idle_clients_share_one_tracer_and_cost_no_wakeups(rpc_log: Any) -> None:
    """Every server of a source shares one tracer; a server whose push throttle is armed is not
    woken by further source transitions, so idle clients cost the source nothing per add."""
    src = new_source(no_rels_schema())
    mux = Mux(src, push_interval=600)
    await mux.start()
    clients = [Client(mux.addr, id=f"idle-{i}", schema=src.schema) for i in range(20)]
    woken: list[int] = []
    try:
        for c in clients:
            await c.start()
        for c in clients:
            await c.mach.when("Ready", timeout=30)
        hubs = [tr for tr in src.tracers if isinstance(tr, SourceHub)]
        assert len(hubs) == 1, "one tracer, not one per connection"
        assert len(src.tracers) == 1
        hub = hubs[0]
        original = hub._flush

        def counting(loop: asyncio.AbstractEventLoop) -> None:
            woken.append(sum(len(w) for w in hub._waiting.values()))
            original(loop)

        hub._flush = counting  # type: ignore[method-assign]
        src.add("A")  # each server arms its trailing flush (10 minutes away)
        await wait_until(lambda: bool(woken) and not hub._waiting, timeout=30)
        assert woken == [20]
        for _ in range(100):
            src.toggle("B")
        await asyncio.sleep(0)
        assert woken == [20], "no server woken by the 100 later transitions"
    finally:
        for c in clients:
            await c.stop(dispose=True)
        await mux.stop(dispose=True)
    assert not [tr for tr in src.tracers if isinstance(tr, SourceHub)], "detached at the end"


# --- 5. Hello timers do not keep closed connections' servers alive ---

async def test_closed_connections_release_their_servers() -> None:
    src = new_source()
    mux = Mux(src, hello_timeout=600)
    await mux.start()
    refs: list[weakref.ref[Server]] = []
    try:
        for _ in range(10):
            _, writer = await raw_conn(mux.addr)
            await wait_until(lambda: len(mux.servers) == 1, timeout=30)
            refs.append(weakref.ref(next(iter(mux.servers.values()))))
            writer.close()
            await wait_until(lambda: not mux.servers, timeout=30)
        for _ in range(3):
            await asyncio.sleep(0)
            gc.collect()
        assert [r for r in refs if r() is not None] == []
    finally:
        await mux.stop(dispose=True)


def test_limits_are_validated() -> None:
    from amnode.rpc import RpcConfigError

    for bad in ({"max_frame": 0}, {"frame_timeout": 0}, {"max_heartbeat": float("inf")}):
        with pytest.raises(RpcConfigError):
            Limits(**bad)  # type: ignore[arg-type]
    assert Limits().with_(max_frame=5, max_hello_frame=None).max_frame == 5
