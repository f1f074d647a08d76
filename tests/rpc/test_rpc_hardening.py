"""aRPC hardening: the fixes listed in docs/arpc-protocol.md "Differences from the Go reference"
(one test each), reconnects, hostile input (docs/arpc-protocol.md "Hostile input")."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from helpers.machines import no_rels_schema
from helpers.rpc import (
    SourceThread,
    fake_server,
    frame,
    hello,
    hello_reply,
    new_source,
    no_errors_ever,
    raw_conn,
    read_frame,
    rpc_pair,
    source_thread_fixture,  # noqa: F401 (the source_thread fixture)
    wait_closed,
    wait_until,
)

import amnode as am
from amnode.rpc import (
    Client,
    InvalidParamsError,
    Mux,
    NotConnectedError,
    RemoteError,
    Server,
    WrongDestinationError,
    register_args,
)
from amnode.rpc.frames import MAX_HELLO_FRAME

SET_CLOCK = 64


def is_reply(msg: Any) -> bool:
    return msg[0] == 1 and isinstance(msg[3], list)


# --- real call timeouts + idempotent retries ---

async def test_call_timeout_is_real_and_bounded() -> None:
    """Replies never arrive: every attempt times out, the call gives up with CANCELED."""
    src = new_source()
    runs: list[int] = []

    class Handlers:
        def DState(self, e: am.Event) -> None:
            runs.append(1)

    src.bind_handlers(Handlers())
    async with rpc_pair(src, proxy=True, call_timeout=0.05, call_retries=2,
                        call_retry_delay=0.01, check_errors=False) as t:
        assert t.proxy is not None
        t.proxy.drop = is_reply
        # bounded: 3 attempts of 0.05 s give up long before this generous limit
        assert await asyncio.wait_for(t.nm.add("D"), 10) == am.CANCELED
        assert t.client.mach.tick("CallRetryFailed") == 2, "added and self-removed"
        assert t.client.mach.tick("ErrNetworkTimeout") >= 2
        assert runs == [1], "3 attempts, 1 execution"
        assert t.server.mutation_log.replayed == 2
        assert t.client.mach.is_inactive("RetryingCall")


async def test_a_shortened_call_timeout_applies_to_the_next_call_at_once() -> None:
    """Attempt deadlines share one timer: a call sent after `call_timeout` was shortened times
    out on its own deadline, not after the longer one of a call sent before it."""
    src = new_source()
    async with rpc_pair(src, proxy=True, call_timeout=600, call_retries=0,
                        check_errors=False) as t:
        assert t.proxy is not None
        t.proxy.drop = is_reply
        slow = t.nm.add("D")  # its only attempt times out in 10 minutes
        t.client.call_timeout = 0.05
        fast = t.nm.add("A")
        assert await asyncio.wait_for(fast, 30) == am.CANCELED
        assert not slow.done(), "the earlier call keeps its own, longer deadline"
        assert t.client.mach.tick("ErrNetworkTimeout") >= 1
        slow.cancel()


async def test_retry_after_reconnect_runs_once() -> None:
    """The reply is lost with the connection; the call waits for Ready, resends the same id."""
    src = new_source()
    runs: list[int] = []

    class Handlers:
        def DState(self, e: am.Event) -> None:
            runs.append(1)
            e.machine.add("A")

    src.bind_handlers(Handlers())
    async with rpc_pair(src, proxy=True, call_timeout=5, call_retry_delay=0.01,
                        conn_retry_delay=0.02, check_errors=False) as t:
        assert t.proxy is not None
        proxy = t.proxy

        def drop_and_cut(msg: Any) -> bool:
            if is_reply(msg):
                proxy.frozen = True  # the connection dies with the reply in it
                return True
            return False

        proxy.drop = drop_and_cut
        fut = t.nm.add("D")
        await wait_until(lambda: proxy.dropped == 1, what="the reply was dropped")
        proxy.drop = None
        proxy.frozen = False
        assert t.client.conn is not None
        t.client.conn.close("test: connection cut")
        assert await asyncio.wait_for(fut, 5) == am.EXECUTED
        assert runs == [1]
        assert t.nm.is_active(["A", "D"])
        assert t.client.mach.tick("Connected") >= 3, "reconnected"


async def test_mux_shares_the_mutation_log() -> None:
    """Through a Mux every connection has its own Server; retries still run once."""
    src = new_source()
    mux = Mux(src)
    await mux.start()
    client = Client(mux.addr, id="mux-log", schema=src.schema)
    try:
        await client.start()
        await client.mach.when("Ready", timeout=5)
        assert client.netmach is not None
        await client.netmach.add("D")
        first = next(iter(mux.servers.values()))
        assert first.mutation_log is mux.mutation_log
        assert len(mux.mutation_log) == 1
    finally:
        await client.stop(dispose=True)
        await mux.stop(dispose=True)


# --- versioned baseline, resync on any mismatch ---

async def test_push_mismatch_resyncs_and_resets_the_baseline() -> None:
    async with rpc_pair(proxy=True, push_interval=1e-9) as t:
        assert t.proxy is not None
        t.proxy.drop = lambda msg: msg[0] == 2 and msg[1] == SET_CLOCK
        t.source.add("D")  # this push is lost
        await wait_until(lambda: t.proxy is not None and t.proxy.dropped == 1)
        t.proxy.drop = None
        assert not t.nm.is_active("D")
        t.source.add("A")  # the next push names a newer base: mismatch -> Sync
        await t.client.mach.when_time({"MetricSync": 1}, timeout=2)
        await t.nm.when(["A", "D"], timeout=2)
        assert t.nm.clock() == t.source.clock()
        assert t.server.mach.tick("MetricSync") == 1
        # Sync reset the server's baseline: later diffs apply without another sync
        t.source.remove("D")
        await t.nm.when_not("D", timeout=2)
        t.source.add("D")
        await t.nm.when("D", timeout=2)
        assert t.client.mach.tick("MetricSync") == 1
        assert t.nm.clock() == t.source.clock()


async def test_reply_mismatch_resyncs_before_the_caller_resumes() -> None:
    async with rpc_pair(proxy=True, push_interval=1e-9) as t:
        assert t.proxy is not None
        t.proxy.drop = lambda msg: msg[0] == 2 and msg[1] == SET_CLOCK
        t.source.add("D")
        await wait_until(lambda: t.proxy is not None and t.proxy.dropped == 1)
        t.proxy.drop = None
        await t.nm.add(["A", "C"])
        # no await in between: the caller resumed only after the resync
        assert t.nm.clock() == t.source.clock()
        assert t.nm.is_active(["A", "C", "D"])
        assert t.client.mach.tick("MetricSync") == 1


async def test_replayed_reply_proves_its_version() -> None:
    """A retry of an executed mutation carries an update, so a lost first reply is noticed."""
    src = new_source()
    async with rpc_pair(src, proxy=True, call_timeout=0.1, call_retry_delay=0.01,
                        check_errors=False) as t:
        assert t.proxy is not None
        dropped = []

        def drop_once(msg: Any) -> bool:
            if is_reply(msg) and not dropped:
                dropped.append(msg)
                return True
            return False

        t.proxy.drop = drop_once
        assert await t.nm.add("D") == am.EXECUTED
        assert t.nm.is_active("D"), "the lost diff was recovered"
        assert t.nm.clock() == src.clock()


# --- reply diffs applied before the caller resumes, in wire order ---

async def test_reply_and_push_are_applied_in_wire_order() -> None:
    async with rpc_pair(push_interval=1e-9) as t:
        seen: list[str] = []

        class Handlers:
            def BState(self, e: am.Event) -> None:
                seen.append("B")

            def DState(self, e: am.Event) -> None:
                seen.append("D")

        t.nm.bind_handlers(Handlers())
        t.source.add("B")  # pushed right before the reply below
        res = await t.nm.add("D")
        assert res == am.EXECUTED
        assert t.nm.is_active(["B", "C", "D"])
        assert seen == ["B", "D"]
        assert t.client.mach.tick("MetricSync") == 0, "no mismatch, no resync"


# --- heartbeat ---

async def test_heartbeat_detects_a_dead_peer() -> None:
    async with rpc_pair(proxy=True, ping_interval=0.1, conn_retry_delay=0.02,
                        server_kw={"ping_interval": 0.1}, check_errors=False) as t:
        assert t.proxy is not None
        connected = t.client.mach.tick("Connected")
        t.proxy.frozen = True  # silently swallow everything, keep the sockets open
        await t.client.mach.when_not("Ready", timeout=2)
        await t.server.mach.when_not("ClientConnected", timeout=2)
        assert t.client.mach.tick("ErrNetworkTimeout") >= 1
        assert t.server.mach.tick("ErrNetworkTimeout") >= 1
        t.proxy.frozen = False  # new connections work again
        await t.client.mach.when_time({"Connected": connected + 2}, timeout=3)
        await t.client.mach.when("Ready", timeout=3)
        assert await t.nm.add("D") == am.EXECUTED


async def test_idle_connection_stays_up_with_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fake clock: each heartbeat comes a whole ping interval after the last traffic (the
    test runs the heartbeat timer's callback itself; the real timers are far away), so no loop
    stall can make a live peer look dead."""
    from amnode.rpc import connection

    now = [1000.0]
    monkeypatch.setattr(connection, "_now", lambda: now[0])
    async with rpc_pair(ping_interval=100, server_kw={"ping_interval": 100}) as t:
        conn, server_conn = t.client.conn, t.server.conn
        assert conn is not None and server_conn is not None
        # without any mutation, both sides keep receiving the other's pings
        for n in range(1, 4):
            now[0] += 100  # an interval of silence (the idle timeout is 3 intervals)
            conn._heartbeat()
            server_conn._heartbeat()
            await wait_until(lambda n=n: conn.pings_in >= n and server_conn.pings_in >= n)
        assert conn.pings_in >= 3 and server_conn.pings_in >= 3
        assert t.client.conn is conn and not conn.closed
        assert t.server.conn is server_conn and not server_conn.closed
        assert t.client.mach.is_active("Ready")


# --- server Bye on stop; reconnect on any unrequested loss ---

async def test_server_stop_says_bye_and_client_reconnects() -> None:
    src = new_source()
    async with rpc_pair(src, conn_retry_delay=0.02, check_errors=False) as t:
        addr = t.server.addr
        await t.server.stop(dispose=True)
        await t.client.mach.when("RetryingConn", timeout=2)
        assert t.client.mach.tick("ErrNetwork") == 0, "a goodbye is no network error"
        # issued while disconnected: CANCELED at once, nothing queued
        fut = t.nm.add("D")
        assert fut.done() and fut.result() == am.CANCELED
        assert t.nm.add_ns("D") == am.CANCELED
        # a new server instance on the same address
        server2 = Server(src, addr, push_interval=0.01)
        await server2.start()
        t.server = server2
        await t.client.mach.when("Ready", timeout=5)
        assert await t.nm.add("D") == am.EXECUTED
        src.add("A")
        await t.nm.when("A", timeout=2)


async def test_server_restart_same_instance() -> None:
    # re-dials while the server is down are refused (ErrNetwork), as many as the machine's speed
    # makes: errors are checked below, not by rpc_pair
    async with rpc_pair(conn_retry_delay=0.02, check_errors=False) as t:
        await t.server.stop()
        await t.client.mach.when_not("Ready", timeout=30)
        await t.server.start()
        await t.client.mach.when("Ready", timeout=30)
        assert await t.nm.add("D") == am.EXECUTED
        assert t.client.mach.tick("ErrRpc") == 0 and t.client.mach.tick("ErrNetworkTimeout") == 0
        assert t.client.mach.tick("Exception") == t.client.mach.tick("ErrNetwork")
        assert no_errors_ever(t.server.mach)


async def test_abrupt_server_loss_reconnects() -> None:
    async with rpc_pair(conn_retry_delay=0.02, check_errors=False) as t:
        conn = t.server.conn
        assert conn is not None and conn.transport is not None
        conn.transport.abort()  # no goodbye
        await t.client.mach.when("RetryingConn", timeout=2)
        await t.client.mach.when("Ready", timeout=5)
        assert await t.nm.add("D") == am.EXECUTED


async def test_client_stop_says_bye_and_does_not_reconnect() -> None:
    async with rpc_pair() as t:
        conn = t.client.conn
        assert conn is not None
        await t.client.stop()
        await t.server.mach.when_not("ClientConnected", timeout=2)
        # the last thing that could start a reconnect: the client's socket is gone
        await wait_until(lambda: conn.transport is not None and conn.transport.is_closing()
                         and conn._lost)
        assert t.client.mach.tick("RetryingConn") == 0
        assert t.client.mach.is_active("Disconnected")
        assert await t.nm.add("A") == am.CANCELED


# --- hostile input: each closes that connection with a logged reason ---

@pytest.fixture
def rpc_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="amnode.rpc")
    return caplog


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
    writer.write(frame([0, 1, 1, hello()]))
    resp = await read_frame(reader)
    assert resp[0] == 1 and resp[2] is None, resp
    writer.write(frame([0, 2, 2, None]))
    assert (await read_frame(reader))[2] is None
    return resp[3]


HOSTILE = {
    "garbage": (b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1", "undecodable frame"),
    "http": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "exceeds the limit"),
    "oversized": ((1 << 31).to_bytes(4, "big"), "exceeds the limit"),
    "zero-length": (b"\x00\x00\x00\x00", "zero-length frame"),
    "not-an-envelope": (frame({"hello": 1}), "malformed envelope"),
    "wrong-protocol": (frame([0, 1, 1, hello(v=99)]), "wrong protocol version"),
    "unknown-states": (frame([0, 1, 1, hello(al=["A", "Nope"])]), "unknown states"),
    "bad-hello": (frame([0, 1, 1, {"v": 1, "id": 5}]), "hello.id"),
    "bad-schema-hash": (frame([0, 1, 1, hello(sh=["x"])]), "hello.sh"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_input_closes_only_that_connection(
        case: str, rpc_log: pytest.LogCaptureFixture) -> None:
    data, reason = HOSTILE[case]
    async with rpc_pair(check_errors=False) as t:
        reader, writer = await raw_conn(t.server.addr)
        writer.write(data)
        await writer.drain()
        assert await wait_closed(reader)
        writer.close()
        assert any(reason in r.getMessage() for r in rpc_log.records), \
            [r.getMessage() for r in rpc_log.records]
        # the connected client is untouched and the server keeps serving
        assert t.client.mach.is_active("Ready") and t.server.mach.is_active("Ready")
        assert await t.nm.add("D") == am.EXECUTED
        assert no_errors_ever(t.client.mach)


async def test_out_of_range_state_index_closes(rpc_log: pytest.LogCaptureFixture) -> None:
    src = new_source()
    mux = Mux(src)
    await mux.start()
    try:
        reader, writer = await raw_conn(mux.addr)
        welcome = await _handshake(reader, writer)
        writer.write(frame([0, 3, 3, [[len(welcome["names"]) + 7], 1]]))
        resp = await read_frame(reader)
        assert resp is not None and resp[2][0] == 1, "invalid params, then closed"
        assert await wait_closed(reader)
        writer.close()
        assert any("out of range" in r.getMessage() for r in rpc_log.records)
        assert src.is_inactive(["A", "B", "C", "D"]), "nothing ran on the source"
        # the mux serves a new client as before
        client = Client(mux.addr, id="after", schema=src.schema)
        await client.start()
        await client.mach.when("Ready", timeout=5)
        assert client.netmach is not None
        assert await client.netmach.add("D") == am.EXECUTED
        await client.stop(dispose=True)
    finally:
        await mux.stop(dispose=True)


async def test_rejected_requests_keep_the_connection() -> None:
    """Unknown methods and unregistered typed args get an error reply, not a disconnect."""
    async with rpc_pair() as t:
        reader, writer = await raw_conn(t.server.addr)
        await _handshake(reader, writer)
        writer.write(frame([0, 3, 42, None]))
        resp = await read_frame(reader)
        assert resp[:2] == [1, 3] and resp[2][0] == 8, "unknown method"
        import msgpack
        ext = msgpack.ExtType(1, msgpack.packb(["nobody.Registered", {"x": 1}]))
        writer.write(len(body := msgpack.packb([0, 4, 3, [[1], 9, {"k": ext}]])).to_bytes(4, "big")
                     + body)
        resp = await read_frame(reader)
        assert resp[:2] == [1, 4] and resp[2][0] == 1, "invalid params"
        writer.write(frame([0, 5, 3, [[4], 10]]))  # a valid Add D still works
        resp = await read_frame(reader)
        assert resp[2] is None and resp[3][0] == 0
        writer.close()


async def test_client_rejects_a_bad_schema(rpc_log: pytest.LogCaptureFixture) -> None:
    """A server answering Hello with an inconsistent schema is dropped; the client retries."""
    hellos: list[Any] = []
    listening: list[asyncio.Server] = []

    async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = await read_frame(reader)
        hellos.append(msg)
        if len(hellos) == 2:
            listening[0].close()  # no third connection, however fast the client retries
        writer.write(hello_reply(msg[1], {"A": {"require": ["Ghost"]}, "Exception": {}}))
        await writer.drain()
        await wait_closed(reader)

    server, addr = await fake_server(fake)
    listening.append(server)
    client = Client(addr, id="bad-schema", conn_retry_delay=0.05)
    try:
        await client.start()
        await client.mach.when_time({"ErrRpc": 1}, timeout=30)
        await client.mach.when("RetryingConn", timeout=30)
        assert client.mach.is_inactive("Ready")
        assert any("Ghost" in r.getMessage() for r in rpc_log.records)
        await client.mach.when_time({"ErrRpc": 3}, timeout=30)
        assert len(hellos) == 2, "reconnected with backoff"
    finally:
        await client.stop(dispose=True)
        server.close()


async def test_client_rejects_out_of_range_update(rpc_log: pytest.LogCaptureFixture) -> None:
    async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = await read_frame(reader)
        writer.write(hello_reply(msg[1], {"A": {}, "Exception": {"multi": True}}))
        msg = await read_frame(reader)
        writer.write(frame([1, msg[1], None, None]))
        writer.write(frame([2, SET_CLOCK, [[9, 1], 0, 0, 1]]))  # state 9 of 2
        await writer.drain()
        await wait_closed(reader)

    server, addr = await fake_server(fake)
    client = Client(addr, id="bad-update", conn_retry_delay=5)
    try:
        await client.start()
        await client.mach.when_time({"ErrRpc": 1}, timeout=2)
        assert any("state index 9" in r.getMessage() for r in rpc_log.records)
        assert client.netmach is not None and client.netmach.tick("A") == 0
    finally:
        await client.stop(dispose=True)
        server.close()


async def test_servers_bind_localhost_by_default() -> None:
    src = new_source()
    server = Server(src)
    mux = Mux(src)
    await server.start()
    await mux.start()
    try:
        assert server.addr.startswith("127.0.0.1:")
        assert mux.addr.startswith("127.0.0.1:")
        assert server.listener is not None
        assert all(s.getsockname()[0] == "127.0.0.1" for s in server.listener.sockets)
    finally:
        await server.stop(dispose=True)
        await mux.stop(dispose=True)


# --- access, payloads, typed args ---

async def test_allow_id() -> None:
    async with rpc_pair(start=False, conn_retry_delay=0.02, check_errors=False,
                        server_kw={"allow_id": "rc-someone"}) as t:
        await t.client.start()
        await t.client.mach.when_time({"ErrRpc": 1}, timeout=2)
        assert t.client.mach.is_inactive("Ready")
        t.server.allow_id = t.client.mach.id
        await t.client.mach.when("Ready", timeout=5)
        assert t.server.client_id == "rc-test"


async def test_payload_errors() -> None:
    async with rpc_pair() as t:
        with pytest.raises(WrongDestinationError):
            await t.server.send_payload("x", 1, dest="rc-other")
        # no consumer on this client: delivery is refused, the server learns it
        with pytest.raises(Exception, match="not delivered"):
            await t.server.send_payload("x", 1, dest="rc-test")
        await t.client.stop()
        await t.server.mach.when_not("ClientConnected", timeout=2)
        with pytest.raises(NotConnectedError):
            await t.server.send_payload("x", 1)


@register_args
@dataclass
class Job:
    """A typed arg registered on both sides."""

    name: str
    size: int = 0


async def test_typed_args_and_remote_errors() -> None:
    received: list[Any] = []

    class Handlers:
        def AState(self, e: am.Event) -> None:
            received.append(e.args["job"])

        def ExceptionState(self, e: am.Event) -> None:
            received.append(e.args[am.ARG_EXCEPTION].err)

    src = new_source(no_rels_schema())
    src.bind_handlers(Handlers())
    async with rpc_pair(src, check_errors=False) as t:
        assert await t.nm.add("A", {"job": Job("build", 3)}) == am.EXECUTED
        assert received == [Job("build", 3)]
        with pytest.raises(InvalidParamsError):
            t.nm.add("B", {"x": object()})
        assert src.is_inactive("B")
        await t.nm.add_err(ValueError("boom"))
        assert t.nm.err is not None
        assert src.is_active(["Exception", "ErrOnClient"])
        err = received[-1]
        assert isinstance(err, RemoteError) and err.type_name == "ValueError"
        assert str(err) == "boom"


# --- semantics of docs/arpc-protocol.md "Mutations" not covered by the Go tests ---

async def test_add_ns_order_is_kept() -> None:
    order: list[str] = []

    class Tracer(am.Tracer):
        def transition_end(self, tx: am.Transition) -> None:
            if tx.mutation.type == am.MutationType.ADD:
                order.extend(tx.mutation.called)

    src = new_source(no_rels_schema())
    src.bind_tracer(Tracer())
    async with rpc_pair(src) as t:
        sent = []
        for i in range(100):
            state = "ABCD"[i % 4]
            sent.append(state)
            t.nm.add_ns(state)
            t.nm.remove_ns(state)
        await t.nm.add("A")
        sent.append("A")
        assert order == sent


async def test_multi_ticks_survive_coalescing() -> None:
    async with rpc_pair(new_source(), push_interval=0.05) as t:
        entered: list[int] = []

        class Handlers:
            def BState(self, e: am.Event) -> None:
                entered.append(e.machine.tick("B"))

        t.nm.bind_handlers(Handlers())
        t.source.add("B")
        await t.nm.when("B", timeout=2)
        for _ in range(3):
            t.source.add("B")  # Multi: +2 each, coalesced into one push
        await t.nm.when_time({"B": 7}, timeout=2)
        assert t.nm.tick("B") == t.source.tick("B") == 7
        assert entered == [1, 7], "the re-entry fires BState once more on the mirror"


async def test_schema_change_propagates() -> None:
    src = new_source(no_rels_schema())
    async with rpc_pair(src, push_interval=0.01) as t:
        bigger = {**src.schema, "E": am.State(require=["A"])}
        src.set_schema(bigger, [*src.state_names, "E"])
        await wait_until(lambda: t.nm.has("E"))
        assert t.nm.state_names == src.state_names
        assert t.nm.schema["E"].require == ["A"]
        assert await t.nm.add(["A", "E"]) == am.EXECUTED
        assert t.nm.is_active("E") and src.is_active("E")


async def test_rpc_machines_are_ordinary_machines() -> None:
    """Server, client and mirror run through MACHINE_INIT_HOOKS (so they get recorded), and the
    mirror's transitions reach tracers with their source."""
    created: list[am.Machine] = []
    am.MACHINE_INIT_HOOKS.append(created.append)
    try:
        async with rpc_pair() as t:
            ids = {m.id for m in created}
            assert {"rs-ns-test", "rc-test", "rnm-test"} <= ids
            assert "rpc-server" in t.server.mach.tags and "rpc-client" in t.client.mach.tags
            assert "src-id:ns-test" in t.nm.tags
            last = am.LastTxTracer()
            t.nm.bind_tracer(last)
            on_source: list[am.Transition] = []

            class Collect(am.Tracer):
                def transition_end(self, tx: am.Transition) -> None:
                    on_source.append(tx)

            t.source.bind_tracer(Collect())
            await t.nm.add("D")
            src_tx = next(tx for tx in on_source if tx.mutation.called == ["D"])
            assert src_tx.mutation.source is not None
            assert src_tx.mutation.source.mach_id == "rc-test", "RPC causality is recorded"
            tx = last.last
            assert tx is not None and tx.accepted and tx.completed
            assert tx.mutation.source is not None and tx.mutation.source.mach_id == "ns-test"
            assert list(tx.time_after) == list(t.nm.time())
    finally:
        am.MACHINE_INIT_HOOKS.remove(created.append)


async def test_unknown_states_raise_locally() -> None:
    async with rpc_pair() as t:
        with pytest.raises(am.StateUnknownError):
            t.nm.add("Nope")
        with pytest.raises(am.StateUnknownError):
            t.nm.add_ns(["A", "Nope"])
        assert t.client.call_count == 2, "nothing was sent"


async def test_announced_payload_and_server_args() -> None:
    got: list[str] = []

    class Consumer:
        def ServerPayloadState(self, e: am.Event) -> None:
            got.append(e.args["payload"].data)

    from amnode.states import CONSUMER_STATES, ConsumerSchema

    consumer = am.Machine(ConsumerSchema, id="consumer-2", handlers=Consumer())
    consumer.verify_states(CONSUMER_STATES)
    async with rpc_pair(consumer=consumer) as t:
        await t.server.send_payload("p", b"\x00bytes", announce=True)
        assert got == [b"\x00bytes"]
        assert t.client.mach.tick("ServerDelivering") == 1
        assert "am.AException" in await t.client.args()


async def test_conn_retries_exhausted_stop_the_client() -> None:
    src = new_source()
    server = Server(src)
    await server.start()
    addr = server.addr
    await server.stop(dispose=True)
    client = Client(addr, id="gives-up", conn_retries=2, conn_retry_delay=0.01)
    try:
        await client.start()
        await client.mach.when("ConnRetryFailed", timeout=3)
        assert client.mach.is_inactive(["Start", "RetryingConn"])
        assert client.mach.tick("Connecting") == 6, "first dial + 2 retries"
    finally:
        await client.stop(dispose=True)


async def test_connections_waiting_for_hello_are_capped(
        rpc_log: pytest.LogCaptureFixture) -> None:
    """Besides the client, at most `max_candidates` connections may wait for their Hello."""
    async with rpc_pair(server_kw={"max_candidates": 2}) as t:
        waiting = [await raw_conn(t.server.addr) for _ in range(2)]
        await wait_until(lambda: len(t.server._candidates) == 2)
        reader, writer = await raw_conn(t.server.addr)
        assert await wait_closed(reader)
        writer.close()
        assert any("already wait for their Hello" in r.getMessage() for r in rpc_log.records)
        assert len(t.server._candidates) == 2
        assert not any(c.closed for c in t.server._candidates)
        assert t.client.mach.is_active("Ready")
        assert await t.nm.add("D") == am.EXECUTED
        for _, w in waiting:
            w.close()
        await wait_until(lambda: not t.server._candidates)


async def test_frames_before_hello_are_small(rpc_log: pytest.LogCaptureFixture) -> None:
    """Until its Hello a connection may not make the server buffer a big frame; afterwards
    `max_frame` applies."""
    async with rpc_pair() as t:
        reader, writer = await raw_conn(t.server.addr)
        writer.write((MAX_HELLO_FRAME + 1).to_bytes(4, "big") + b"x" * 1000)
        assert await wait_closed(reader)
        writer.close()
        assert any(f"exceeds the limit of {MAX_HELLO_FRAME}" in r.getMessage()
                   for r in rpc_log.records)
        blob = b"x" * (2 * MAX_HELLO_FRAME)
        assert await t.nm.add("D", {"blob": blob}) == am.EXECUTED


async def test_silent_connection_is_dropped(rpc_log: pytest.LogCaptureFixture) -> None:
    async with rpc_pair(server_kw={"hello_timeout": 0.1}) as t:
        reader, writer = await raw_conn(t.server.addr)
        assert await wait_closed(reader)
        writer.close()
        assert any("no Hello within" in r.getMessage() for r in rpc_log.records)
        assert t.client.mach.is_active("Ready")


async def test_mirror_dispose_keeps_the_source() -> None:
    src = new_source({"Start": am.State()}, ["Start"])
    async with rpc_pair(src) as t:
        calls = t.client.call_count
        t.nm.dispose()
        assert t.client.call_count == calls, "nothing sent"
        await t.client.sync()  # a round trip: anything sent before it has run on the source
        assert src.is_active("Start"), "disposing a mirror never mutates the source"


async def test_mux_never_blocks_on_a_busy_source_thread(source_thread: SourceThread) -> None:
    """Creating a mux's per-connection server happens in a protocol callback: with the source's
    thread busy it must not block the mux's loop; the server serves once its tracer is bound."""
    src = source_thread.run(lambda: new_source(id="ns-busy"))
    schema = source_thread.run(lambda: src.schema)
    mux = Mux(src)
    await mux.start()
    gate = threading.Event()
    assert source_thread.loop is not None
    source_thread.loop.call_soon_threadsafe(gate.wait, 30)  # the source's loop is stuck
    client = Client(mux.addr, id="busy", schema=schema)
    try:
        await client.start()
        await wait_until(lambda: len(mux.servers) == 1, what="the mux's loop kept running")
        server = next(iter(mux.servers.values()))
        assert server.mach.is_active("Start") and server.mach.is_inactive("RpcReady")
        assert client.mach.is_inactive("Ready"), "nothing is read before the bind"
        gate.set()
        await client.mach.when("Ready", timeout=5)
        assert client.netmach is not None
        assert await client.netmach.add("D") == am.EXECUTED
        assert no_errors_ever(client.mach) and no_errors_ever(server.mach)
    finally:
        gate.set()
        await client.stop(dispose=True)
        await mux.stop(dispose=True)


async def test_source_on_another_thread_changing_its_schema(
        source_thread: SourceThread) -> None:
    """Hello, Sync and pushes never read a source on another thread directly: while it grows
    its schema and changes states, every snapshot the client gets is whole (names, time and
    ticks from one moment), so nothing mismatches, resyncs with a wrong length or fails."""
    src = source_thread.run(lambda: new_source(no_rels_schema(), id="ns-grow"))
    growing = threading.Event()
    done = threading.Event()
    rounds_done = [0]

    async def grow() -> int:
        i = 0
        while not done.is_set() and i < 250:
            # keep pace with the client: 10 states per round of it at most, so the rounds below
            # interleave with the growth however the two threads are scheduled
            while rounds_done[0] * 25 < i and not done.is_set():
                await asyncio.sleep(0.001)
            name = f"S{i}"
            schema = src.schema
            schema[name] = am.State()
            src.set_schema(schema, [*src.state_names, name])
            src.add(name)
            src.toggle("A")
            growing.set()
            i += 1
            await asyncio.sleep(0.002)
        return i

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: torn reads would show
    try:
        async with rpc_pair(src, push_interval=0.001, conn_retry_delay=0.001) as t:
            grown = source_thread.submit(grow())
            assert growing.wait(5)
            rounds = 0
            while not grown.done():  # Hellos and Syncs, all while the schema grows
                if rounds % 5 == 4:
                    conn = t.client.conn
                    assert conn is not None
                    conn.close("test: reconnect")  # the next connection sends a new Hello
                    await t.client.mach.when_not("Ready", timeout=30)
                    await t.client.mach.when("Ready", timeout=30)
                # a SyncResult of another length than the names would be an ErrRpc
                assert await t.client.sync() is not None
                rounds += 1
                rounds_done[0] = rounds
            assert grown.result(30) == 250 and rounds >= 10
            await t.client.sync()
            names, clock = source_thread.run(lambda: (src.state_names, src.clock()))
            assert t.nm.state_names == names
            assert t.nm.clock() == clock
            assert t.client.mach.tick("ErrRpc") == 0
    finally:
        done.set()
        sys.setswitchinterval(old)


async def test_source_on_another_thread_pushes(source_thread: SourceThread) -> None:
    src = source_thread.run(lambda: new_source(id="ns-thread"))
    async with rpc_pair(src, push_interval=0.01) as t:
        assert await t.nm.add("D") == am.EXECUTED
        assert t.nm.is_active(["B", "C", "D"])
        src.threadsafe.remove("D").result(2)
        await t.nm.when_not("D", timeout=2)
        assert t.nm.clock() == source_thread.run(src.clock)


async def test_bind_server_pipes_server_states() -> None:
    from amnode.rpc import bind_server, bind_server_multi

    target = new_source({"RpcOn": am.State(), "ClientOn": am.State(),
                         "Conn": am.State(multi=True), "Disconn": am.State(multi=True)},
                        id="target")
    src = new_source()
    server = Server(src)
    bind_server(server.mach, target, "RpcOn", "ClientOn")
    bind_server_multi(server.mach, target, "RpcOn", "Conn", "Disconn")
    await server.start()
    assert target.is_active("RpcOn")
    client = Client(server.addr, id="pipes", schema=src.schema)
    try:
        await client.start()
        await target.when("ClientOn", timeout=5)
        assert target.tick("Conn") == 1
        await client.stop()
        await target.when_not("ClientOn", timeout=2)
        assert target.tick("Disconn") == 1
    finally:
        await client.stop(dispose=True)
        await server.stop(dispose=True)
    assert target.is_inactive("RpcOn")


async def test_start_fails_on_a_busy_port() -> None:
    """Server and Mux fail to start the same way: ConnectionError, ErrNetwork."""
    src = new_source()
    first = Server(src)
    await first.start()
    second = Server(src, first.addr, name="second")
    mux = Mux(src, first.addr)
    try:
        with pytest.raises(ConnectionError, match="cannot listen on"):
            await second.start()
        assert second.mach.tick("ErrNetwork") >= 1
        with pytest.raises(ConnectionError, match="cannot listen on"):
            await mux.start()
        assert mux.mach.tick("ErrNetwork") >= 1 and mux.mach.is_inactive("Start")
    finally:
        await mux.stop(dispose=True)
        await second.stop(dispose=True)
        await first.stop(dispose=True)


async def test_start_timeout_is_a_connection_error_too(source_thread: SourceThread) -> None:
    """A server whose source (on another thread) is stuck: creating it never blocks, start()
    times out with ConnectionError and succeeds once the source's thread runs again."""
    src = source_thread.run(lambda: new_source(id="ns-stuck"))
    gate = threading.Event()
    assert source_thread.loop is not None
    source_thread.loop.call_soon_threadsafe(gate.wait, 30)  # the source's loop is stuck
    try:
        server = Server(src)  # would block on binding its tracer
        with pytest.raises(ConnectionError, match=r"not RpcReady after 0\.1s"):
            await server.start(timeout=0.1)
        gate.set()
        await server.start()
        await server.stop(dispose=True)
    finally:
        gate.set()


async def test_bye_frames_on_the_wire() -> None:
    """A stopping server sends Bye (68) before closing; a stopping client sends Bye (9)."""
    async with rpc_pair() as t:
        reader, writer = await raw_conn(t.server.addr)
        await _handshake(reader, writer)  # a newer client replaces the test client
        await t.server.stop()
        frames = []
        while (msg := await read_frame(reader)) is not None:
            frames.append(msg)
        assert [2, 68, "server stopping"] in frames
        writer.close()

    got: list[Any] = []

    async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = await read_frame(reader)
        writer.write(hello_reply(msg[1], {"A": {}, "Exception": {"multi": True}}))
        msg = await read_frame(reader)
        writer.write(frame([1, msg[1], None, None]))
        while (msg := await read_frame(reader, timeout=5)) is not None:
            got.append(msg)

    server, addr = await fake_server(fake)
    client = Client(addr, id="bye")
    try:
        await client.start()
        await client.mach.when("Ready", timeout=2)
        await client.stop()
        await wait_until(lambda: bool(got))
        assert got == [[2, 9, None]]
    finally:
        await client.stop(dispose=True)
        server.close()


async def test_rpc_machines_are_recorded(tmp_path: Any) -> None:
    """With a recorder attached, the server, the client and the mirror's synthetic transitions
    land in the recording (RPC causality included)."""
    from amnode.telemetry import Recorder, open_recording

    path = tmp_path / "rpc.amrec"
    with Recorder(path) as rec:
        async with rpc_pair(push_interval=0.01) as t:
            for m in (t.source, t.server.mach, t.client.mach, t.nm):
                rec.attach(m)
            await t.nm.add("D")
            t.source.remove("D")
            await t.nm.when_not("D", timeout=2)
    recording = open_recording(path)
    mirror = recording.machine("rnm-test")
    txs = list(mirror.transitions())
    assert [tx.time_after[mirror.state_names.index("D")] for tx in txs][-2:] == [1, 2]
    assert all(tx.source is not None and tx.source.machine_id == "ns-test" for tx in txs)
    source_txs = list(recording.machine("ns-test").transitions())
    assert any(tx.called == ["D"] and tx.source is not None
               and tx.source.machine_id == "rc-test" for tx in source_txs)
    assert list(recording.machine("rc-test").transitions())
    assert list(recording.machine("rs-ns-test").transitions())
