"""Leases: Reserved until the client connects, expiry, reset after the client is lost, explicit
return, recycling after `max_jobs` or on request, `max_client_workers`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers.node import (
    T,
    connected_client,
    fast_timeouts,
    new_supervisor,
    no_error,
    running,
    wait_for,
)

import amnode as am
from amnode import node
from amnode.rpc import Client as RpcClient
from amnode.rpc import Payload
from amnode.states import node as ssnode
from amnode.states.rpc import ConsumerSchema

pytestmark = pytest.mark.timeout(120)


class Killed:
    """Reasons of `WorkerKilled` on a supervisor."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def WorkerKilledState(self, e: am.Event) -> None:
        ref = node.get_args(e, node.WorkerRef)
        if ref is not None:
            self.reasons.append(ref.reason)


class RawClient:
    """A bare aRPC client on a supervisor's public port that collects its payloads."""

    def __init__(self, addr: str, id: str = "raw") -> None:
        self.payloads: list[Payload] = []
        self.consumer = am.Machine(ConsumerSchema, id=f"consumer-{id}")
        self.consumer.bind_handlers(self)
        self.rpc = RpcClient(addr, id=id, schema=ssnode.SupervisorSchema,
                             consumer=self.consumer, conn_retries=0)

    def ServerPayloadState(self, e: am.Event) -> None:
        self.payloads.append(e.args["payload"])

    async def __aenter__(self) -> RawClient:
        await self.rpc.start()
        await self.rpc.mach.when(ssnode.READY, timeout=T)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.rpc.stop(dispose=True)
        self.consumer.dispose()

    async def ask(self, worker_client_id: str, request: int) -> Any:
        """ProvideWorker; the answer (a WorkerLease or a LeaseRefused)."""
        nm = self.rpc.netmach
        assert nm is not None
        assert await nm.add(ssnode.PROVIDE_WORKER, {node.ARG: node.ProvideWorkerArgs(
            worker_client_id, request)}) == am.EXECUTED
        await wait_for(lambda: any(p.data.request == request for p in self.payloads
                                   if p.name == ssnode.PROVIDE_WORKER), what="an answer")
        return next(p.data for p in self.payloads
                    if p.name == ssnode.PROVIDE_WORKER and p.data.request == request)


def in_process_worker(sup: node.Supervisor, worker_id: str) -> node.Worker:
    spawner = sup.spawner
    assert isinstance(spawner, node.InProcessSpawner)
    w = spawner.find(worker_id)
    assert w is not None
    return w


async def test_a_lease_is_reserved_until_the_client_connects_then_expires() -> None:
    sup = new_supervisor("LEASE", (1, 1, 0, 0), timeouts=fast_timeouts(lease=0.5))
    async with running(sup), RawClient(sup.public_addr) as raw:
        lease = await raw.ask("rc-never-connects-0123456789abcdef", 1)
        assert isinstance(lease, node.WorkerLease)
        w = in_process_worker(sup, lease.worker_id)
        # leased: Reserved, not Idle, and not available to others
        await w.mach.when(ssnode.RESERVED, timeout=T)
        assert not w.mach.is_active(ssnode.IDLE)
        assert [x.state for x in await sup.workers()] == ["leased"]
        # the client never connects to the worker: the lease expires, the worker is idle again
        await w.mach.when_not(ssnode.RESERVED, timeout=T)
        await w.mach.when(ssnode.IDLE, timeout=T)
        await wait_for(lambda: [x.state() for x in sup.pool.entries.values()] == ["idle"],
                       what="idle again")
        await sup.mach.when(ssnode.WORKERS_AVAILABLE, timeout=T)
        # the same worker: reset, not replaced
        assert [x.id for x in await sup.workers()] == [lease.worker_id]
        no_error(sup.mach)


async def test_a_lost_client_resets_its_worker_to_idle() -> None:
    sup = new_supervisor("LEASE", (1, 1, 0, 0), timeouts=fast_timeouts(lease=0.5))
    async with running(sup):
        client = await connected_client(sup)
        worker = await client.req_worker(timeout=T)
        w = in_process_worker(sup, worker.remote_id)
        await w.mach.when(ssnode.CLIENT_CONNECTED, timeout=T)
        assert (await client.work({"input": 3}, timeout=T)).data == 9
        # the client process "dies": both links close without a goodbye or a return
        assert client.super_rpc is not None and client.worker_rpc is not None
        client.super_rpc.dispose()
        client.worker_rpc.dispose()
        await w.mach.when_not(ssnode.RESERVED, timeout=T)
        await w.mach.when(ssnode.IDLE, timeout=T)
        await wait_for(lambda: sup.pool.idle() != [], what="the worker is idle for the pool")
        assert [x.id for x in await sup.workers()] == [worker.remote_id]
        client.mach.dispose()


async def test_a_lease_outlives_the_supervisor_connection_while_the_worker_link_lives() -> None:
    """A client that loses its supervisor (e.g. moving to another one) keeps its worker."""
    sup = new_supervisor("LEASE", (1, 1, 0, 0), timeouts=fast_timeouts(lease=0.3))
    async with running(sup):
        client = await connected_client(sup)
        try:
            worker = await client.req_worker(timeout=T)
            w = in_process_worker(sup, worker.remote_id)
            await w.mach.when(ssnode.CLIENT_CONNECTED, timeout=T)
            entry = sup.pool.by_id(worker.remote_id)
            assert entry is not None
            await wait_for(lambda: entry.client_seen, what="the supervisor saw the client")
            assert client.super_rpc is not None
            client.super_rpc.dispose()  # only the supervisor link goes
            await wait_for(lambda: entry.lease is not None and entry.lease[0] == "",
                           what="the lease is detached from the connection")
            # no expiry is pending while the client is connected to its worker
            assert entry.key not in sup.leases._timers
            assert w.mach.is_active([ssnode.RESERVED, ssnode.CLIENT_CONNECTED])
            assert (await client.work({"input": 5}, timeout=T)).data == 25
            # and once the worker link goes too, the lease ends
            assert client.worker_rpc is not None
            client.worker_rpc.dispose()
            await w.mach.when(ssnode.IDLE, timeout=T)
            await wait_for(lambda: entry.lease is None, what="released")
        finally:
            client.mach.dispose()


async def test_return_worker_resets_it_and_recycle_replaces_it() -> None:
    killed = Killed()
    sup = new_supervisor("LEASE", (1, 1, 0, 0))
    sup.mach.bind_handlers(killed)
    async with running(sup):
        client = await connected_client(sup)
        try:
            first = (await client.req_worker(timeout=T)).remote_id
            assert await client.return_worker()
            assert client.lease is None and client.worker is None
            await wait_for(lambda: [e.state() for e in sup.pool.entries.values()] == ["idle"],
                           what="idle again")
            assert [x.id for x in await sup.workers()] == [first]  # reset, not replaced
            # the same worker again, then returned for recycling: a fresh worker replaces it
            assert (await client.req_worker(timeout=T)).remote_id == first
            assert await client.return_worker(recycle=True)
            await wait_for(lambda: any("recycled on request" in r for r in killed.reasons),
                           what="recycled")
            await sup.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
            await wait_for(lambda: len(sup.pool.idle()) == 1, what="a fresh idle worker")
            assert [x.id for x in await sup.workers()] != [first]
            # a lease this supervisor does not hold cannot be returned
            assert not await client.return_worker()
            no_error(sup.mach)
        finally:
            await client.stop()


async def test_a_worker_is_recycled_after_max_jobs() -> None:
    killed = Killed()
    sup = new_supervisor("LEASE")
    sup.set_pool(1, 1, 0, 0, max_jobs=2)
    assert sup.config.max_jobs == 2
    sup.mach.bind_handlers(killed)
    async with running(sup):
        client = await connected_client(sup)
        try:
            first = (await client.req_worker(timeout=T)).remote_id
            assert (await client.work({"input": 2}, timeout=T)).data == 4
            await client.return_worker()  # 1 job: reset
            await wait_for(lambda: len(sup.pool.idle()) == 1, what="idle")
            assert [x.id for x in await sup.workers()] == [first]
            assert (await client.req_worker(timeout=T)).remote_id == first
            assert (await client.work({"input": 3}, timeout=T)).data == 9
            await wait_for(lambda: sup.pool.entries[next(iter(sup.pool.entries))].jobs() == 2,
                           what="2 jobs seen")
            assert [x.jobs for x in await sup.workers()] == [2]
            await client.return_worker()  # 2 jobs = max_jobs: replaced
            await wait_for(lambda: any("after 2 jobs" in r for r in killed.reasons),
                           what="recycled")
            await wait_for(lambda: len(sup.pool.idle()) == 1, what="a fresh worker")
            (fresh,) = await sup.workers()
            assert fresh.id != first and fresh.jobs == 0
        finally:
            await client.stop()


async def test_max_client_workers_is_enforced() -> None:
    sup = new_supervisor("LEASE", (3, 3, 0, 2))
    async with running(sup), RawClient(sup.public_addr) as raw:
        a = await raw.ask("rc-a-0123456789abcdef", 1)
        b = await raw.ask("rc-b-0123456789abcdef", 2)
        assert isinstance(a, node.WorkerLease) and isinstance(b, node.WorkerLease)
        assert a.worker_id != b.worker_id
        c = await raw.ask("rc-c-0123456789abcdef", 3)
        assert isinstance(c, node.LeaseRefused)
        assert not c.retry and "max_client_workers=2" in c.reason
        # another connection is a client of its own
        async with RawClient(sup.public_addr, "raw2") as other:
            d = await other.ask("rc-d-0123456789abcdef", 1)
            assert isinstance(d, node.WorkerLease)
        await asyncio.sleep(0)
