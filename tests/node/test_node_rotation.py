"""Client rotation: the supervisor ring, its blacklist (on a fake clock), and moving on from a
dead address, a refusing supervisor, a silent one and one that dies later (the worker link is
kept meanwhile)."""

from __future__ import annotations

import random

import pytest
from helpers.node import (
    T,
    dead_addr,
    fast_timeouts,
    new_supervisor,
    rels_worker_schema,
    running,
    wait_for,
)

import amnode as am
from amnode import node
from amnode.node.rotation import SupervisorRing
from amnode.rpc import Mux
from amnode.states import node as ssnode

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def client_for(kind: str, **kw: object) -> node.Client:
    return node.Client("cli", kind, rels_worker_schema(), rotation="ordered",
                       timeouts=kw.pop("timeouts", None) or fast_timeouts(), **kw)  # type: ignore[arg-type]


def test_ring_order_blacklist_and_expiry() -> None:
    clock = FakeClock()
    ring = SupervisorRing(["a", "b", "c"], "ordered", ttl=10.0, clock=clock)
    assert [ring.next() for _ in range(4)] == ["a", "b", "c", "a"]
    ring.blacklist("b")
    assert [ring.next() for _ in range(3)] == ["c", "a", "c"]
    assert ring.available() == ["a", "c"] and ring.available(but="a") == ["c"]
    clock.now += 9.9
    assert ring.blacklisted("b")
    clock.now += 0.2  # the blacklisting expired
    assert not ring.blacklisted("b")
    assert [ring.next() for _ in range(3)] == ["a", "b", "c"]
    # all blacklisted: the one whose blacklisting ends first
    ring.blacklist("a", ttl=5.0)
    ring.blacklist("b", ttl=1.0)
    ring.blacklist("c", ttl=3.0)
    assert ring.next() == "b"
    # a random start, reproducible with a seeded generator; then ring order
    starts = {SupervisorRing(["a", "b", "c"], rng=random.Random(i)).next() for i in range(30)}
    assert starts == {"a", "b", "c"}
    r = SupervisorRing(["a", "b", "c"], rng=random.Random(1))
    first = r.next()
    i = ["a", "b", "c"].index(first)
    assert [r.next(), r.next()] == [["a", "b", "c"][(i + k) % 3] for k in (1, 2)]
    with pytest.raises(ValueError):
        SupervisorRing(["a"], "sideways")


async def test_a_dead_first_address_is_skipped_and_blacklisted_until_it_expires() -> None:
    clock = FakeClock()
    sup = new_supervisor("ROT", (1, 1, 0, 0))
    async with running(sup):
        dead = dead_addr()
        client = client_for(sup.kind, clock=clock)
        await client.start([dead, sup.public_addr])
        try:
            await client.mach.when(ssnode.SUPER_READY, timeout=T)
            assert client.super_rpc is not None and client.super_rpc.addr == sup.public_addr
            assert client.ring is not None and client.ring.blacklisted(dead)
            clock.now += client.timeouts.blacklist + 0.1
            assert not client.ring.blacklisted(dead)
            assert (await client.work({"input": 3}, timeout=T)).data == 9
        finally:
            await client.stop()


async def test_a_refusing_supervisor_makes_the_client_move_on() -> None:
    full = new_supervisor("ROT", (1, 1, 0, 0))
    other = new_supervisor("ROT", (1, 1, 0, 0))
    async with running(full), running(other):
        holder = client_for("ROT")
        await holder.start([full.public_addr])
        await holder.req_worker(timeout=T)  # the only worker of `full`
        client = client_for("ROT")
        await client.start([full.public_addr, other.public_addr])
        try:
            await client.mach.when(ssnode.SUPER_READY, timeout=T)
            assert client.super_rpc is not None and client.super_rpc.addr == full.public_addr
            worker = await client.req_worker(timeout=T)
            # refused by `full` (no idle worker): moved on to `other`, leased there
            assert client.super_rpc is not None and client.super_rpc.addr == other.public_addr
            assert other.pool.by_id(worker.remote_id) is not None
            assert (await client.work({"input": 4}, timeout=T)).data == 16
        finally:
            await client.stop()
            await holder.stop()


async def test_a_supervisor_that_does_not_answer_is_left_and_blacklisted() -> None:
    # a "supervisor" that accepts ProvideWorker but never answers it
    silent = am.Machine(ssnode.SupervisorSchema, id="ns-silent")
    silent.add(ssnode.START)
    mux = Mux(silent)
    await mux.start()
    sup = new_supervisor("ROT", (1, 1, 0, 0))
    async with running(sup):
        client = client_for("ROT", timeouts=fast_timeouts(provide=0.3))
        await client.start([mux.addr, sup.public_addr])
        try:
            await client.mach.when(ssnode.SUPER_READY, timeout=T)
            assert client.super_rpc is not None and client.super_rpc.addr == mux.addr
            worker = await client.req_worker(timeout=T)
            assert sup.pool.by_id(worker.remote_id) is not None
            assert client.ring is not None and client.ring.blacklisted(mux.addr)
            assert silent.tick(ssnode.PROVIDE_WORKER) >= 1
        finally:
            await client.stop()
            await mux.stop(dispose=True)
            silent.dispose()


async def test_a_supervisor_dying_later_keeps_the_worker_link() -> None:
    timeouts = fast_timeouts(supervisor_grace=30.0)
    first = new_supervisor("ROT", (1, 1, 0, 0), timeouts=timeouts)
    second = new_supervisor("ROT", (1, 1, 0, 0), timeouts=timeouts)
    async with running(first), running(second):
        client = client_for("ROT")
        await client.start([first.public_addr, second.public_addr])
        try:
            worker = await client.req_worker(timeout=T)
            assert first.pool.by_id(worker.remote_id) is not None
            link = client.worker_rpc
            ready_tick = client.mach.tick(ssnode.WORKER_READY)
            # `first` dies (its sockets close; its in-process worker lives on, orphaned)
            first.dispose(kill_workers=False)
            await wait_for(lambda: client.super_rpc is not None
                           and client.super_rpc.addr == second.public_addr
                           and client.mach.is_active(ssnode.SUPER_READY),
                           what="moved on to the second supervisor")
            assert client.ring is not None and client.ring.blacklisted(first.public_addr)
            # the worker link was never touched
            assert client.worker_rpc is link
            assert client.mach.tick(ssnode.WORKER_READY) == ready_tick
            assert (await client.work({"input": 7}, timeout=T)).data == 49
        finally:
            await client.stop()
            spawner = first.spawner
            assert isinstance(spawner, node.InProcessSpawner)
            for w in spawner.workers:
                await w.stop()
