"""The Go reference's acceptance suite (node_test.go), same pool sizes and assertions, plus the
three tests it lists as TODO (kill a worker, reconnect to a worker, two clients)."""

from __future__ import annotations

import asyncio
import re

import pytest
from helpers.node import (
    T,
    connected_client,
    crash,
    dead_addr,
    fast_timeouts,
    new_supervisor,
    no_error,
    reaped,
    rels_worker_schema,
    running,
    wait_for,
    worker_cmd,
)

import amnode as am
from amnode import node
from amnode.states import node as ssnode

pytestmark = pytest.mark.timeout(120)


def kind_of(request: pytest.FixtureRequest) -> str:
    """Go getKind: upper-case letters and digits of the test name (TestFork1 -> TF1)."""
    return "".join(re.findall(r"[A-Z0-9]", request.node.name.title().replace("_", ""))) or "T"


async def test_fork1(request: pytest.FixtureRequest) -> None:
    """TestFork1: one in-process worker is forked and linked."""
    sup = new_supervisor(kind_of(request), (1, 1, 0, 1))
    await sup.start()
    try:
        await sup.mach.when_ticks(ssnode.WORKER_FORKED, 1, timeout=T)
        assert len(await sup.workers()) == 1
        no_error(sup.mach)
    finally:
        await sup.stop()
    assert sup.mach.is_disposed


async def test_fork1_process() -> None:
    """TestFork1Process: a real worker process (defaults, max 1 -> target 1)."""
    sup = new_supervisor("NTW", worker_cmd=worker_cmd())
    sup.set_pool(sup.config.min, 1, sup.config.warm, 0)
    assert sup.config.min == 1
    await sup.start()
    try:
        await sup.mach.when_ticks(ssnode.WORKER_FORKED, 1, timeout=T)
        workers = await sup.workers()
        assert len(workers) == 1
        pid = workers[0].pid
        assert pid is not None and pid != 0
        no_error(sup.mach)
    finally:
        await sup.stop()
    assert sup.mach.is_disposed
    assert reaped(pid), f"worker {pid} left behind"


async def test_fork5_warm2_min2(request: pytest.FixtureRequest) -> None:
    """TestFork5Warm2Min2: min 2 + warm 2 -> 4 workers, all idle."""
    sup = new_supervisor(kind_of(request), (2, 5, 2, 0))
    async with running(sup):
        # Go sleeps 5 s "for the warm workers"; we wait for the state that says so
        await sup.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        assert len(await sup.workers()) == 4
        assert len(await sup.workers("ready")) >= sup.config.min
        assert len(await sup.workers("idle")) >= sup.config.min
        assert len(await sup.workers("busy")) == 0
        no_error(sup.mach)


async def test_fork15_warm0_min7(request: pytest.FixtureRequest) -> None:
    """TestFork15Warm0Min7: min 7, max 15, warm 0 -> exactly 7 workers at PoolReady."""
    sup = new_supervisor(kind_of(request), (7, 15, 0, 0))
    async with running(sup):
        assert len(await sup.workers()) == 7
        assert len(await sup.workers("ready")) >= 7
        await wait_for(lambda: len(sup.pool.idle()) >= 7, what="7 idle workers")
        assert len(await sup.workers("idle")) >= 7
        assert len(await sup.workers("busy")) == 0
        no_error(sup.mach)


async def test_client_supervisor(request: pytest.FixtureRequest) -> None:
    """TestClientSupervisor: a client reaches SuperReady."""
    sup = new_supervisor(kind_of(request), (1, 1, 0, 0))
    async with running(sup):
        client = node.Client("cli", sup.kind, rels_worker_schema(), timeouts=fast_timeouts())
        await client.start([sup.public_addr])
        try:
            await client.mach.when(ssnode.SUPER_READY, timeout=T)
        finally:
            await client.stop()


async def test_client_supervisor_fallback(request: pytest.FixtureRequest) -> None:
    """TestClientSupervisorFallback: a dead first address falls back to the second (B14)."""
    sup = new_supervisor(kind_of(request), (1, 1, 0, 0))
    async with running(sup):
        client = node.Client("cli", sup.kind, rels_worker_schema(), timeouts=fast_timeouts())
        await client.start([dead_addr(), sup.public_addr])
        try:
            await client.mach.when(ssnode.SUPER_READY, timeout=T)
            assert client.super_rpc is not None
            assert client.super_rpc.addr == sup.public_addr
        finally:
            await client.stop()


async def test_client_worker(request: pytest.FixtureRequest) -> None:
    """TestClientWorker: default pool (2/10/5), a lease, a direct link to the worker."""
    spawner = None
    sup = new_supervisor(kind_of(request))
    assert (sup.config.min, sup.config.max, sup.config.warm) == (2, 10, 5)
    spawner = sup.spawner
    assert isinstance(spawner, node.InProcessSpawner)
    async with running(sup):
        client = await connected_client(sup)
        try:
            assert client.supervisor is not None
            await client.supervisor.when(ssnode.WORKERS_AVAILABLE, timeout=T)
            worker = await client.req_worker(timeout=T)
            await client.mach.when(ssnode.WORKER_READY, timeout=T)
            assert client.worker_rpc is not None
            w = spawner.find(client.worker_rpc.addr)
            assert w is not None and w.mach.id == worker.remote_id
            await w.mach.when(ssnode.CLIENT_CONNECTED, timeout=T)
            assert w.mach.is_active(ssnode.CLIENT_CONNECTED)
            no_error(sup.mach)
            no_error(client.mach)
        finally:
            await client.stop()


class PayloadCatcher:
    """Go's test ServerPayloadState: keeps the first payload that is not the supervisor's."""

    def __init__(self) -> None:
        self.payload: asyncio.Future[object] | None = None

    def ServerPayloadState(self, e: am.Event) -> None:
        if e.args["name"] == ssnode.PROVIDE_WORKER:
            return
        if self.payload is not None and not self.payload.done():
            self.payload.set_result(e.args["payload"])


async def test_client_server_payload(request: pytest.FixtureRequest) -> None:
    """TestClientServerPayload: WorkRequested{input: 2} -> payload 4 through ServerPayload."""
    sup = new_supervisor(kind_of(request))
    spawner = sup.spawner
    assert isinstance(spawner, node.InProcessSpawner)
    async with running(sup):
        catcher = PayloadCatcher()
        catcher.payload = asyncio.get_running_loop().create_future()
        client = await connected_client(sup, handlers=catcher)
        try:
            assert client.supervisor is not None
            await client.supervisor.when(ssnode.WORKERS_AVAILABLE, timeout=T)
            worker = await client.req_worker(timeout=T)
            await client.mach.when(ssnode.WORKER_READY, timeout=T)
            assert await worker.add(ssnode.WORK_REQUESTED, {"input": 2}) == am.EXECUTED
            payload = await asyncio.wait_for(catcher.payload, T)
            w = spawner.find(worker.remote_id)
            assert w is not None
            await w.mach.when(ssnode.CLIENT_CONNECTED, timeout=T)
            assert payload.data == 4  # type: ignore[attr-defined]
            assert payload.source == worker.remote_id  # type: ignore[attr-defined]
            assert client.mach.tick(ssnode.SERVER_PAYLOAD) >= 3  # the lease and the result
            no_error(sup.mach)
            no_error(client.mach)
        finally:
            await client.stop()


# --- the TODO tests of node_test.go ---


async def test_kill_worker(request: pytest.FixtureRequest) -> None:
    """TestKillWorker: a worker that dies is detected, its slot freed (B11, B12) and replaced;
    the pool returns to its target. Both an abrupt stop and `kill_worker()` are covered."""
    sup = new_supervisor(kind_of(request), (2, 4, 1, 0))
    spawner = sup.spawner
    assert isinstance(spawner, node.InProcessSpawner)
    async with running(sup):
        await sup.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        before = {w.id for w in await sup.workers()}
        assert len(before) == 3
        victim = sorted(before)[0]
        killed = sup.mach.tick(ssnode.WORKER_KILLED)
        errors = sup.mach.tick(ssnode.ERR_WORKER)
        await crash(spawner, victim)  # an exit nobody asked for
        await sup.mach.when_ticks(ssnode.WORKER_KILLED, 2, timeout=T)
        assert sup.mach.tick(ssnode.ERR_WORKER) > errors  # the exit is reported (B17)
        await wait_for(lambda: sup.mach.is_active(ssnode.POOL_NORMALIZED)
                       and len(sup.pool.entries) == 3, what="pool back at 3")
        after = {w.id for w in await sup.workers("ready")}
        assert len(after) == 3 and victim not in after
        # on request: killed, not counted as a crash, replaced
        second = sorted(after)[0]
        assert sup.kill_worker(second)
        await wait_for(lambda: sup.mach.tick(ssnode.WORKER_KILLED) >= killed + 4
                       and sup.mach.is_active(ssnode.POOL_NORMALIZED)
                       and len(sup.pool.entries) == 3, what="replaced after kill_worker")
        assert second not in {w.id for w in await sup.workers()}
        assert sup.mach.is_active(ssnode.POOL_READY)


async def test_client_worker_reconn(request: pytest.FixtureRequest) -> None:
    """TestClientWorkerReconn: the client's link to its worker drops and comes back; the lease
    holds, the same worker answers."""
    sup = new_supervisor(kind_of(request), (2, 3, 0, 0))
    async with running(sup):
        client = await connected_client(sup)
        try:
            worker = await client.req_worker(timeout=T)
            first = worker.remote_id
            ready = client.mach.tick(ssnode.WORKER_READY)
            assert client.worker_rpc is not None and client.worker_rpc.conn is not None
            client.worker_rpc.conn.close("test: connection dropped")
            await client.mach.when_ticks(ssnode.WORKER_READY, 2, timeout=T)
            assert client.mach.tick(ssnode.WORKER_READY) == ready + 2
            payload = await client.work({"input": 7}, timeout=T)
            assert payload.data == 49 and payload.source == first
            assert [w.leased_to for w in await sup.workers("leased")] == [client.worker_rpc_id]
        finally:
            await client.stop()


async def test_2_clients_worker(request: pytest.FixtureRequest) -> None:
    """Test2ClientsWorker: two clients get two different workers, each its own results."""
    sup = new_supervisor(kind_of(request), (2, 4, 0, 0))
    async with running(sup):
        c1 = await connected_client(sup, "cli1")
        c2 = await connected_client(sup, "cli2")
        try:
            w1, w2 = await asyncio.gather(c1.req_worker(timeout=T), c2.req_worker(timeout=T))
            assert w1.remote_id != w2.remote_id
            p1, p2 = await asyncio.gather(c1.work({"input": 3}, timeout=T),
                                          c2.work({"input": 5}, timeout=T))
            assert (p1.data, p1.source) == (9, w1.remote_id)
            assert (p2.data, p2.source) == (25, w2.remote_id)
            leased = {w.id: w.leased_to for w in await sup.workers("leased")}
            assert leased == {w1.remote_id: c1.worker_rpc_id, w2.remote_id: c2.worker_rpc_id}
        finally:
            await asyncio.gather(c1.stop(), c2.stop())
        # the leases end with the clients; the workers return to the pool
        await wait_for(lambda: not sup.pool.leased_count() and len(sup.pool.idle()) >= 2,
                       what="leases released")


async def test_a_client_without_an_idle_worker_makes_the_pool_grow() -> None:
    """min 1, max 2, no spares: the second client is refused once, the pool grows for it, and
    once it is gone the idle spare is retired again."""
    sup = new_supervisor("GROW", (1, 2, 0, 0))
    async with running(sup):
        c1 = await connected_client(sup, "cli1")
        c2 = await connected_client(sup, "cli2")
        try:
            w1 = await c1.req_worker(timeout=T)
            assert len(sup.pool.entries) == 1
            w2 = await c2.req_worker(timeout=T)  # refused, the pool grows, asked again
            assert w2.remote_id != w1.remote_id
            assert len(await sup.workers("leased")) == 2
        finally:
            await c2.stop()
        await wait_for(lambda: len(sup.pool.entries) == 1
                       and sup.mach.is_active(ssnode.POOL_NORMALIZED), what="shrunk to 1")
        assert [w.id for w in await sup.workers()] == [w1.remote_id]
        await c1.stop()
