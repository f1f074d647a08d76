"""Redundant supervisors (in-process workers): peers link and share summaries, a lost peer's
orphans are adopted by a survivor, two survivors racing for one orphan, a peer that is alive
(its link lost, then back) keeps its workers, a wrong group secret is refused."""

from __future__ import annotations

import pytest
from helpers.node import (
    SECRET,
    T,
    fast_timeouts,
    new_supervisor,
    peer_group,
    rels_worker_schema,
    running,
    stop_all,
    wait_for,
)

import amnode as am
from amnode import node
from amnode.states import node as ssnode

pytestmark = pytest.mark.timeout(120)


class Killed:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def WorkerKilledState(self, e: am.Event) -> None:
        ref = node.get_args(e, node.WorkerRef)
        if ref is not None:
            self.reasons.append(ref.reason)


def client_for(kind: str) -> node.Client:
    return node.Client("cli", kind, rels_worker_schema(), rotation="ordered",
                       timeouts=fast_timeouts())


def in_process(sups: list[node.Supervisor]) -> dict[str, node.Worker]:
    """Every in-process worker of these supervisors by machine id."""
    out = {}
    for sup in sups:
        spawner = sup.spawner
        assert isinstance(spawner, node.InProcessSpawner)
        out.update({w.mach.id: w for w in spawner.workers})
    return out


def summary_of(sup: node.Supervisor, peer: node.Supervisor) -> node.PoolStatus | None:
    link = sup.peers.links.get(peer.local_addr)
    return link.summary if link is not None else None


async def test_peers_share_their_pools() -> None:
    a, b = await peer_group("RED", [(1, 1, 0, 0), (2, 2, 0, 0)])
    try:
        await a.mach.when(ssnode.POOL_READY, timeout=T)
        await b.mach.when(ssnode.POOL_READY, timeout=T)
        await wait_for(lambda: (s := summary_of(a, b)) is not None and len(s.workers) == 2
                       and all(w.local_addr and w.state != "initing" for w in s.workers),
                       what="b's summary")
        s = summary_of(a, b)
        assert s is not None and s.public_addr == b.public_addr and s.instance_num == 1
        assert {w.id for w in s.workers} == {w.id for w in await b.workers()}
        assert a.mach.tick(ssnode.SUPER_CONNECTED) >= 2 and b.mach.tick(ssnode.SUPER_CONNECTED) >= 2
        assert a.status().peers == [b.mach.id] and b.status().peers == [a.mach.id]
    finally:
        await stop_all([a, b])


async def test_a_lost_peer_s_workers_are_adopted_and_its_client_keeps_working() -> None:
    a, b = await peer_group("RED", [(1, 3, 1, 0), (2, 2, 0, 0)])
    killed = Killed()
    a.mach.bind_handlers(killed)
    client = client_for("RED")
    try:
        await b.mach.when(ssnode.POOL_READY, timeout=T)
        await client.start([b.public_addr, a.public_addr])
        worker = await client.req_worker(timeout=T)
        orphans = {w.id for w in await b.workers()}
        assert worker.remote_id in orphans
        await wait_for(lambda: any(w.leased_to for w in (summary_of(a, b) or b.status()).workers
                                   if w.id == worker.remote_id), what="a knows the lease")
        link = client.worker_rpc
        b.dispose(kill_workers=False)  # b "dies": its sockets close, its workers live on
        # a adopts the leased orphan, keeping its lease...
        await wait_for(lambda: (e := a.pool.by_id(worker.remote_id)) is not None and e.linked,
                       what="the leased orphan adopted")
        entry = a.pool.by_id(worker.remote_id)
        assert entry is not None and entry.adopted
        assert entry.lease is not None and entry.lease[1] == client.worker_rpc_id
        assert a.mach.tick(ssnode.ADOPT_WORKER) >= 2
        # ...the client moves on to a, and keeps its worker link
        await wait_for(lambda: client.super_rpc is not None
                       and client.super_rpc.addr == a.public_addr
                       and client.mach.is_active(ssnode.SUPER_READY), what="client on a")
        assert client.worker_rpc is link
        assert (await client.work({"input": 6}, timeout=T)).data == 36
        # the idle orphan was adopted too, then retired (a is above its target): back at target
        await a.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        live = in_process([a, b])
        idle_orphan = next(iter(orphans - {worker.remote_id}))
        await wait_for(lambda: live[idle_orphan].mach.is_disposed, what="idle orphan retired")
        await wait_for(lambda: any("above the pool's target" in r for r in killed.reasons),
                       what="retired")
        assert sorted(e.state() for e in a.pool.entries.values()) == ["idle", "leased"]
        # returned, an adopted worker is replaced by a fresh one of a's own
        assert await client.return_worker()
        await wait_for(lambda: live[worker.remote_id].mach.is_disposed, what="recycled")
        await wait_for(lambda: any("adopted" in r for r in killed.reasons), what="recycled")
        await a.mach.when(ssnode.POOL_NORMALIZED, timeout=T)
        await wait_for(lambda: not any(e.adopted for e in a.pool.entries.values()),
                       what="no adopted worker left")
    finally:
        await client.stop()
        await stop_all([a, b])


async def test_two_survivors_racing_for_the_same_orphans() -> None:
    """a and c do not see each other, so both think they rank first and both dial b's orphans
    at once: each orphan ends up with exactly one of them, and none is killed."""
    a, b, c = await peer_group("RED", [(1, 4, 1, 0), (2, 2, 0, 0), (1, 4, 1, 0)],
                               links={0: [1], 1: [0, 2], 2: [1]})
    clients = [client_for("RED"), client_for("RED")]
    try:
        await b.mach.when(ssnode.POOL_READY, timeout=T)
        for cl in clients:
            await cl.start([b.public_addr, a.public_addr, c.public_addr])
        held = [(await cl.req_worker(timeout=T)).remote_id for cl in clients]
        assert sorted(held) == sorted(w.id for w in await b.workers())
        for sup in (a, c):
            await wait_for(lambda sup=sup: sum(1 for w in summary_of(sup, b).workers  # type: ignore[union-attr]
                                               if w.leased_to) == 2, what="leases known")
        b.dispose(kill_workers=False)
        await wait_for(lambda: all(
            sum(1 for s in (a, c) if (e := s.pool.by_id(w)) is not None and e.linked) == 1
            for w in held), what="each orphan adopted once")
        await wait_for(lambda: not a.peers.adopting and not c.peers.adopting,
                       what="adoptions settled")
        for w in held:
            owners = [s for s in (a, c) if s.pool.by_id(w) is not None]
            assert len(owners) == 1, (w, owners)
        live = in_process([a, b, c])
        assert not any(live[w].mach.is_disposed for w in held)
        for cl in clients:
            assert (await cl.work({"input": 2}, timeout=T)).data == 4
    finally:
        for cl in clients:
            await cl.stop()
        await stop_all([a, b, c])


async def test_a_live_peer_keeps_its_workers_when_only_its_link_is_lost() -> None:
    """a loses its link to b while b and b's worker links are fine: a's adoption attempts are
    refused by the workers; when b's control port is back, a stops trying."""
    a, b = await peer_group("RED", [(1, 1, 0, 0), (1, 1, 0, 0)])
    client = client_for("RED")
    try:
        await b.mach.when(ssnode.POOL_READY, timeout=T)
        await client.start([b.public_addr])
        worker = await client.req_worker(timeout=T)
        await wait_for(lambda: summary_of(a, b) is not None and any(
            w.leased_to for w in summary_of(a, b).workers), what="a knows b's lease")  # type: ignore[union-attr]
        assert b.local is not None
        await b.local.stop()  # b's control port goes away: a loses its link to b
        await wait_for(lambda: worker.remote_id in a.peers.adopting, what="a tries to adopt")
        await wait_for(lambda: a.mach.tick(ssnode.ADOPT_WORKER) >= 1, what="an attempt")
        await b.local.start()  # b's control port is back: a relinks and gives up
        await wait_for(lambda: not a.peers.adopting, what="a gave up")
        await wait_for(lambda: len(a.peers.live_peers()) == 1, what="relinked")
        # b kept its worker and its lease all along; a has only its own
        entry = b.pool.by_id(worker.remote_id)
        assert entry is not None and entry.linked and entry.lease is not None
        assert a.pool.by_id(worker.remote_id) is None
        assert not in_process([b])[worker.remote_id].mach.is_disposed
        assert b.mach.tick(ssnode.KILLING_WORKER) == 0
        assert (await client.work({"input": 9}, timeout=T)).data == 81
    finally:
        await client.stop()
        await stop_all([a, b])


async def test_a_peer_with_another_secret_is_refused() -> None:
    a = new_supervisor("RED", (1, 1, 0, 0), instance_num=0, secret=SECRET)
    b = new_supervisor("RED", (1, 1, 0, 0), instance_num=1, secret="another secret")
    async with running(a, ready=False), running(b, ready=False):
        await b.add_peers([a.local_addr])
        link = b.peers.links[a.local_addr]
        await link.mach.when(ssnode.READY, timeout=T)
        await wait_for(lambda: bool(a.peers.refusals), what="a refused b")
        assert "wrong proof" in a.peers.refusals[-1]
        assert a.mach.tick(ssnode.SUPER_CONNECTED) == 0
        assert not link.authed and not a.peers.authed and link.summary is None
        with pytest.raises(ValueError, match="secret"):
            node.Supervisor("RED", worker_schema=rels_worker_schema(), peers=["127.0.0.1:1"],
                            spawner=a.spawner)


async def test_a_new_process_at_a_lost_peer_s_address_does_not_stop_the_adoption() -> None:
    """b dies and a new supervisor b2 starts at b's control address before a (ranked second,
    behind c) adopts: b2 is another supervisor, so b's orphans are still adopted."""
    t = fast_timeouts(supervisor_grace=30.0, adopt_stagger=1.0)
    c, a, b = await peer_group("RED", [(1, 1, 0, 0), (1, 3, 1, 0), (1, 1, 0, 0)],
                               timeouts=t, links={0: [1], 1: [0, 2], 2: [1]})
    client = client_for("RED")
    b2 = new_supervisor("RED", (1, 1, 0, 0), timeouts=t, instance_num=2, secret=SECRET)
    try:
        await b.mach.when(ssnode.POOL_READY, timeout=T)
        await client.start([b.public_addr])
        worker = await client.req_worker(timeout=T)
        await wait_for(lambda: any(w.leased_to for w in summary_of(a, b).workers),  # type: ignore[union-attr]
                       what="a knows b's lease")
        addr = b.local_addr
        b.dispose(kill_workers=False)
        await b2.start(local_addr=addr)  # a new process at the same address
        await b2.add_peers([a.local_addr])
        await wait_for(lambda: (e := a.pool.by_id(worker.remote_id)) is not None and e.linked,
                       what="b's leased orphan adopted by a")
        await wait_for(lambda: (x := a.peers.links[addr].summary) is not None
                       and x.incarnation == b2.status().incarnation, what="a sees b2")
        assert c.pool.by_id(worker.remote_id) is None and b2.pool.by_id(worker.remote_id) is None
        assert (await client.work({"input": 8}, timeout=T)).data == 64
    finally:
        await client.stop()
        await stop_all([c, a, b, b2])
