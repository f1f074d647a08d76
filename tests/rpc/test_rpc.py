"""aRPC: the Go reference's rpc_test.go cases (#1-#19), ported to asyncio; differences from Go are
in docs/arpc-protocol.md "Differences from the Go reference"."""

from __future__ import annotations

import asyncio
import threading
import time

from helpers.machines import no_rels_schema
from helpers.rpc import (
    Proxy,
    SourceThread,
    new_source,
    no_errors_ever,
    rpc_pair,
    source_thread_fixture,  # noqa: F401 (the source_thread fixture)
    wait_until,
)

import amnode as am
from amnode.rpc import Client, Mux, Payload, Server
from amnode.states import CONSUMER_STATES, ConsumerSchema


def assert_only_refused_dials(client_mach: am.Machine) -> None:
    """The client's only errors (if any) were dials refused while the server was down."""
    assert client_mach.tick("ErrRpc") == 0 and client_mach.tick("ErrNetworkTimeout") == 0
    assert client_mach.tick("Exception") == client_mach.tick("ErrNetwork"), \
        client_mach.string_all()


# 1
async def test_basic() -> None:
    src = new_source({"Foo": am.State(), "Bar": am.State(require=["Foo"])})
    async with rpc_pair(src) as t:
        assert await t.nm.add("Foo") == am.EXECUTED
        assert t.server.mach.is_active("Ready")
        assert t.client.mach.is_active("Ready")
        assert src.is_active("Foo")
        assert t.nm.is_active("Foo")


# 2
async def test_type_safe() -> None:
    async with rpc_pair() as t:
        await t.nm.add(["A", "C"])
        assert t.source.is_active(["A", "C"])
        assert t.nm.is_active(["A", "C"])


# 3
async def test_waiting() -> None:
    async with rpc_pair(proxy=True) as t:
        when_a = asyncio.ensure_future(t.nm.when("A", timeout=2))
        await asyncio.sleep(0)
        await t.nm.add(["A", "C"])
        await when_a
        assert t.server.push_count == 0, "clock piggybacked on the reply"
        assert t.client.call_count == 3, "Hello, Handshake, Add"
        assert 0 < t.bytes <= 1400, t.bytes


# 4
async def test_add_many() -> None:
    async with rpc_pair(proxy=True) as t:
        when_d = asyncio.ensure_future(t.nm.when("D", timeout=5))
        for _ in range(500):
            await t.nm.add(["A", "C"])
        await t.nm.add("D")
        await when_d
        assert t.server.push_count == 0
        assert 0 < t.bytes <= 21_000, t.bytes


# 5
async def test_add_many_no_sync() -> None:
    async with rpc_pair(proxy=True) as t:
        for _ in range(500):
            assert t.nm.add_ns(["A", "C"]) == am.EXECUTED
        t.nm.add_ns("D")
        assert not t.nm.is_active("D"), "no reply, no clock update"
        # Sync travels behind the notifications on the same connection: no sleep needed
        await t.client.sync()
        assert t.nm.is_active("D")
        assert t.client.mach.tick("MetricSync") == 1
        assert 0 < t.bytes <= 11_000, t.bytes


# 6
async def test_add_many_instant_clock() -> None:
    async with rpc_pair(proxy=True, push_interval=1e-9) as t:
        when_d = asyncio.ensure_future(t.nm.when("D", timeout=5))
        for _ in range(500):
            await t.nm.add(["A", "C"])
        await t.nm.add("D")
        await when_d
        assert 0 < t.bytes <= 21_000, t.bytes


# 7
async def test_many_states() -> None:
    extra = {f"State{i}": am.State() for i in range(100)}
    src = new_source({**no_rels_schema(), **extra})
    names = src.state_names
    async with rpc_pair(src, proxy=True) as t:
        await t.nm.add("C")
        for i in range(5, 95):
            await t.nm.remove(names[i - 3])
            await t.nm.add(names[i])
        await t.nm.add("D")
        assert t.nm.is_active("D")
        assert t.nm.clock() == src.clock()
        assert t.client.call_count == 184, "handshake (2) and mutations (182)"
        assert 0 < t.bytes <= 10_500, t.bytes


# 8
async def test_high_instant_clocks() -> None:
    src = new_source()
    ticks = src.clock()
    ticks["A"] = ticks["C"] = 1_000_000
    src.import_data({"id": src.id, "state_names": src.state_names,
                     "time": [ticks[n] for n in src.state_names], "queue_tick": 1})
    assert src.tick("A") == 1_000_000
    async with rpc_pair(src, proxy=True) as t:
        assert t.nm.tick("A") == 1_000_000
        for _ in range(500):
            await t.nm.add(["A", "C"])
            await t.nm.remove(["A", "C"])
        await t.nm.add("D")
        assert t.nm.is_active("D")
        assert t.nm.clock() == src.clock()
        assert 0 < t.bytes <= 50_000, t.bytes


# 9
async def test_retry_call() -> None:
    """A lost reply is retried with the same mutation id; the source runs it once."""
    src = new_source()
    runs: list[str] = []

    class Handlers:
        def DState(self, e: am.Event) -> None:
            runs.append("D")

    src.bind_handlers(Handlers())
    # the retried attempt must be answered within call_timeout: generous for a loaded machine
    async with rpc_pair(src, proxy=True, call_timeout=0.5, call_retry_delay=0.01,
                        check_errors=False) as t:
        assert t.proxy is not None
        # drop the next mutation reply (a response carrying a result)
        t.proxy.drop = lambda msg: msg[0] == 1 and isinstance(msg[3], list)
        retrying = asyncio.ensure_future(t.client.mach.when("RetryingCall", timeout=30))
        fut = t.nm.add("D")
        await retrying
        # the first attempt timed out (its reply was dropped); the retry, sent after its delay,
        # gets its reply whatever the load: it must not time out as well
        t.client.call_timeout = 30
        t.proxy.drop = None
        assert await fut == am.EXECUTED
        assert t.proxy.dropped == 1
        assert runs == ["D"], "executed exactly once"
        assert t.server.mutation_log.replayed == 1
        assert t.nm.is_active("D")
        await t.client.mach.when_not("RetryingCall", timeout=30)
        assert t.client.mach.is_active("Ready")
        assert t.server.mach.is_active("Ready")
        # timeouts are errors of the client (events, removed at once), the server saw none
        assert t.client.mach.tick("ErrNetworkTimeout") >= 1
        assert t.client.mach.is_inactive("Exception")
        assert no_errors_ever(t.server.mach)


# 10
async def test_retry_conn() -> None:
    src = new_source()
    server = Server(src)
    await server.start()
    addr = server.addr
    await server.stop()
    client = Client(addr, id="retry", schema=src.schema, conn_retry_delay=0.02)
    try:
        await client.start()
        await client.mach.when_time({"Connecting": 3}, timeout=5)
        assert client.mach.is_active("RetryingConn")
        await server.start()
        await client.mach.when("Ready", timeout=5)
        await server.mach.when("Ready", timeout=5)
        assert await client.netmach.add("D") == am.EXECUTED  # type: ignore[union-attr]
        assert client.mach.is_inactive(["RetryingCall", "RetryingConn"])
    finally:
        await client.stop(dispose=True)
        await server.stop(dispose=True)


# 11
async def test_retry_err_network_timeout(source_thread: SourceThread) -> None:
    """A slow source (another thread) outlives CallTimeout: retried, executed once. The source
    stays busy until the client has started retrying (a gate, not a sleep)."""
    runs: list[float] = []
    gate = threading.Event()

    class Handlers:
        def DState(self, e: am.Event) -> None:
            runs.append(time.monotonic())
            assert gate.wait(60), "the test opens the gate"

    def make() -> am.Machine:
        src = new_source()
        src.handler_timeout = None
        src.bind_handlers(Handlers())
        return src

    src = source_thread.run(make)
    async with rpc_pair(src, call_timeout=0.2, call_retry_delay=0.05,
                        check_errors=False) as t:
        retrying = asyncio.ensure_future(t.client.mach.when("RetryingCall", timeout=30))
        fut = t.nm.add("D")
        try:
            await retrying  # the first attempt timed out while the source was busy
        finally:
            gate.set()
        assert await fut == am.EXECUTED
        assert len(runs) == 1, "executed exactly once"
        assert t.nm.is_active("D")
        await t.client.mach.when_not("RetryingCall", timeout=30)
        assert t.client.mach.is_active("Ready") and t.server.mach.is_active("Ready")
        assert t.client.mach.is_inactive(["RetryingCall", "RetryingConn"])
        assert no_errors_ever(t.server.mach)


# 12
async def test_retry_closed_listener() -> None:
    # a re-dial may come while the listener is down (a refused dial, ErrNetwork): how many do
    # depends on the machine's speed, so errors are checked below, not by rpc_pair
    async with rpc_pair(conn_retry_delay=0.02, check_errors=False) as t:
        connected = t.client.mach.tick("Connected")
        t.server.restart_listener()
        await t.client.mach.when_time({"Connected": connected + 2}, timeout=30)
        await t.client.mach.when("Ready", timeout=30)
        await t.server.mach.when("Ready", timeout=30)
        assert await t.nm.add("D") == am.EXECUTED
        assert t.nm.is_active("D")
        assert t.client.mach.is_inactive(["RetryingCall", "RetryingConn"])
        assert_only_refused_dials(t.client.mach)
        assert no_errors_ever(t.server.mach)


# 13
async def test_payload() -> None:
    delivered: list[Payload] = []

    class Consumer:
        def ServerPayloadState(self, e: am.Event) -> None:
            e.machine.remove("ServerPayload")
            assert e.args["name"] == "TestPayload"
            delivered.append(e.args["payload"])

    consumer = am.Machine(ConsumerSchema, id="consumer", handlers=Consumer())
    consumer.verify_states(CONSUMER_STATES)
    src = new_source(no_rels_schema())
    servers: list[Server] = []

    class Handlers:
        def CState(self, e: am.Event) -> None:
            e.machine.remove("C")
            name = e.args["name"]
            servers[0].mach.fork(servers[0].send_payload(name, {"text": "Hello"}))

    src.bind_handlers(Handlers())
    async with rpc_pair(src, consumer=consumer) as t:
        servers.append(t.server)
        when = asyncio.ensure_future(consumer.when_ticks("ServerPayload", 1, timeout=2))
        await t.nm.add("C", {"name": "TestPayload"})
        await when
        assert len(delivered) == 1
        p = delivered[0]
        assert p.name == "TestPayload" and p.data == {"text": "Hello"}
        assert p.source == src.id and p.token


# 14
async def test_mux() -> None:
    src = new_source()
    mux = Mux(src, push_interval=0.02)
    await mux.start()
    clients = [Client(mux.addr, id=f"mux-{i}", schema=src.schema) for i in range(3)]
    try:
        for c in clients:
            await c.start()
        for c in clients:
            await c.mach.when("Ready", timeout=30)
        assert len(mux.servers) == 3
        assert mux.mach.is_active(["Ready", "HasClients"])
        assert mux.mach.tick("ClientConnected") == 6, "3 events, each self-removed"
        await clients[0].netmach.add("C")  # type: ignore[union-attr]
        for c in clients:
            await c.netmach.when("A", timeout=30)  # type: ignore[union-attr]
        await clients[2].stop(dispose=True)
        await mux.mach.when_time({"HasClients": 1}, timeout=30)
        await wait_until(lambda: len(mux.servers) == 2, timeout=30,
                         what="the server of a gone client is disposed")
    finally:
        for c in clients:
            await c.stop(dispose=True)
        await mux.stop(dispose=True)


# 15
async def test_partial() -> None:
    src = new_source(no_rels_schema())
    src.add("C")
    src.remove("C")
    async with rpc_pair(src, push_interval=0.01, allowed_states=["A", "B", "C"],
                        skipped_states=["C"]) as t:
        src.add("A")
        src.add(["B", "C"])
        src.add("D")
        await t.nm.when(["A", "B"], timeout=2)
        await t.nm.when_time({"A": 1, "B": 1}, timeout=2)
        assert t.nm.active_states() == ["A", "B"] or set(t.nm.active_states()) == {"A", "B"}
        assert t.nm.tick("C") == 0 and t.nm.tick("D") == 0, "untracked stay 0"


# 16
async def test_partial_inferred() -> None:
    async with rpc_pair(push_interval=0.01, allowed_states=["A"]) as t:
        t.source.add("C")  # auto A
        await t.nm.when(["A", "C"], timeout=2)
        assert set(t.nm.active_states()) == {"A", "C"}, "C inferred from A's Require"
        assert t.nm.tick("C") == 0


# 17
async def test_partial_no_schema() -> None:
    async with rpc_pair(push_interval=0.01, allowed_states=["C"], no_schema=True) as t:
        t.source.add("C")
        await t.nm.when("C", timeout=2)
        assert t.nm.active_states() == ["C"]
        assert t.nm.state_names[:1] == ["C"], "client-bound: only tracked states"
        # client index 0 is C; the server translates it (source index 0 is Exception)
        t.source.remove("C")
        await t.nm.when_not("C", timeout=2)
        assert await t.nm.add("C") == am.EXECUTED
        assert t.source.is_active("C") and t.source.is_inactive("Exception")


# 18
async def test_no_schema() -> None:
    async with rpc_pair(push_interval=0.01, no_schema=True) as t:
        t.source.add("C")
        await t.nm.when(["A", "C"], timeout=2)
        assert set(t.nm.active_states()) == {"A", "C"}
        assert t.nm.schema["A"].require == [], "no relations without a schema"


# 19
async def test_mutations_sync() -> None:
    class Counter(am.Tracer):
        def __init__(self) -> None:
            self.txs: list[am.Transition] = []

        def transition_end(self, transition: am.Transition) -> None:
            self.txs.append(transition)

    async with rpc_pair(proxy=True, push_interval=10, sync_mutations=True) as t:
        counter = Counter()
        t.nm.bind_tracer(counter)
        t.source.add("B")  # + C, then auto A
        t.source.add("D")
        await asyncio.sleep(0)
        # force the push now (the interval is long)
        t.server.push_interval = 1e-9
        t.server._on_source_change()
        await t.nm.when("D", timeout=2)
        assert len(counter.txs) == 3, [tx.mutation for tx in counter.txs]
        assert [tx.mutation.type for tx in counter.txs] == [am.MutationType.ADD] * 3
        assert counter.txs[0].mutation.called == ["B"]
        assert counter.txs[1].mutation.called == ["A"]
        assert counter.txs[2].mutation.called == ["D"]
        assert t.nm.clock() == t.source.clock()
        assert 0 < t.bytes <= 2000, t.bytes
        # the per-mutation queue was emptied by the send: only new transitions follow
        t.source.remove("D")
        await t.nm.when_not("D", timeout=2)
        assert len(counter.txs) == 4


async def test_proxy_counts_both_ways() -> None:
    """The byte budgets above are only meaningful if the proxy counts traffic."""
    async with rpc_pair(proxy=True) as t:
        before = t.bytes
        await t.nm.add("A")
        assert t.bytes > before
        assert isinstance(t.proxy, Proxy)
