"""Hostile peers: a client mutating supervisor states, a second client on a leased worker, a
leased client touching its worker's control states, garbage bytes on every port. Each is
refused with a clear error and affects nothing else."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from helpers.node import (
    T,
    connected_client,
    new_supervisor,
    no_error,
    rels_worker_schema,
    running,
    wait_for,
)

import amnode as am
from amnode import node
from amnode.rpc import Client as RpcClient
from amnode.rpc import NoAccessError
from amnode.states import node as ssnode

pytestmark = pytest.mark.timeout(120)

GARBAGE = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",           # a length way above the limit
    b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1",         # a frame that is not msgpack
    b"\x00\x00\x00\x00",                             # an empty frame
    b"\x00\x00\x00\x03\x93\x00\x01",                 # a truncated envelope, then EOF
]


async def raw_rpc(addr: str, id: str, schema: dict[str, am.State] | None = None) -> RpcClient:
    """A plain aRPC client (no node logic), connected and Ready."""
    c = RpcClient(addr, id=id, schema=schema, conn_retries=0)
    await c.start()
    await c.mach.when(ssnode.READY, timeout=T)
    return c


async def send_garbage(addr: str, data: bytes) -> None:
    """Write `data` and wait until the server closes the connection."""
    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data + os.urandom(64))
        await writer.drain()
        if data.endswith(b"\x01"):
            writer.write_eof()
        async with asyncio.timeout(T):
            while await reader.read(4096):
                pass
    except ConnectionError:
        pass  # reset by the server: closed as well
    finally:
        writer.close()


async def refused_over_the_wire(nm: Any, allowed: list[str]) -> None:
    """Every state of the mirror's source outside `allowed`: refused locally by the mirror
    (the Welcome's allowlist), and, with that check bypassed (a hostile client ignoring it),
    refused by the server (`NoAccessError`) for add, remove and set."""
    outside = [n for n in nm.state_names if n not in allowed]
    assert outside
    with pytest.raises(NoAccessError):
        nm.add(outside[0])
    nm.mutable_states = None  # hostile: ignore the allowlist, send anyway
    for state in outside:
        for mutate in (nm.add, nm.remove):
            with pytest.raises(NoAccessError):
                await mutate(state)
    with pytest.raises(NoAccessError):
        await nm.set(allowed[:1])  # a set also removes everything else
    with pytest.raises(NoAccessError):
        await nm.add_err(RuntimeError("evil"))  # Exception is not on any allowlist
    assert nm.add_ns(outside[0]) == am.EXECUTED  # a notification: sent, dropped there


async def test_client_cannot_mutate_supervisor_states() -> None:
    sup = new_supervisor("HOST", (2, 2, 0, 0))
    async with running(sup):
        await sup.mach.when(ssnode.READY, timeout=T)
        before = sorted(w.id for w in await sup.workers())
        key = sup.pool.by_id(before[0]).key  # type: ignore[union-attr]
        intruder = await raw_rpc(sup.public_addr, "intruder", ssnode.SupervisorSchema)
        nm = intruder.netmach
        assert nm is not None
        try:
            assert nm.mutable_states == set(ssnode.SUPERVISOR_CLIENT_STATES)
            await refused_over_the_wire(nm, ssnode.SUPERVISOR_CLIENT_STATES)
            # allowed states, but not like this: refused by the node's own rules
            attempts = [
                nm.remove(ssnode.PROVIDE_WORKER),
                nm.add(ssnode.PROVIDE_WORKER, {node.ARG: "not the args type"}),
                nm.add(ssnode.PROVIDE_WORKER, {node.ARG: node.ProvideWorkerArgs("x" * 1000)}),
                nm.add(ssnode.RETURN_WORKER, {node.ARG: node.ReturnWorkerArgs("rc-nobody")}),
                nm.add(ssnode.LIST_WORKERS, {node.ARG: "bogus"}),
            ]
            results = await asyncio.gather(*attempts)
            assert results == [am.CANCELED] * len(attempts)
            del key
            await intruder.sync()
            # nothing changed
            assert sorted(w.id for w in await sup.workers()) == before
            assert sup.mach.is_active([ssnode.READY, ssnode.POOL_READY, ssnode.START])
            assert sup.mach.tick(ssnode.KILLING_WORKER) == 0, sup.last_worker_error
            no_error(sup.mach)
            # and a real client is served as usual
            client = await connected_client(sup)
            try:
                assert (await client.work({"input": 4}, timeout=T)).data == 16
            finally:
                await client.stop()
        finally:
            await intruder.stop(dispose=True)


async def test_control_port_refuses_everything_but_control_states() -> None:
    """The control (local) port: peers and operators may only add SuperConnected (with the
    group's proof), ListWorkers, KillWorker and RotateLogs."""
    sup = new_supervisor("HOST", (1, 1, 0, 0))
    async with running(sup):
        intruder = await raw_rpc(sup.local_addr, "intruder", ssnode.SupervisorSchema)
        nm = intruder.netmach
        assert nm is not None
        try:
            await refused_over_the_wire(nm, ssnode.SUPERVISOR_CONTROL_STATES)
            # a peer without the group's secret is refused
            hello = node.PeerHello(nm.id, 1, "127.0.0.1:1", "127.0.0.1:2", "bad proof")
            assert await nm.add(ssnode.SUPER_CONNECTED, {node.ARG: hello}) == am.CANCELED
            assert sup.mach.is_active(ssnode.READY)
            no_error(sup.mach)
        finally:
            await intruder.stop(dispose=True)


async def test_leased_worker_refuses_others_and_keeps_its_lease() -> None:
    sup = new_supervisor("HOST", (2, 2, 0, 0))
    async with running(sup):
        client = await connected_client(sup)
        try:
            worker = await client.req_worker(timeout=T)
            assert client.worker_rpc is not None
            addr = client.worker_rpc.addr
            # a second client on the leased worker's port: refused in the handshake
            intruder = RpcClient(addr, id="intruder", conn_retries=0)
            await intruder.start()
            try:
                await wait_for(lambda: isinstance(intruder.mach.err, NoAccessError),
                               what="no_access")
                assert not intruder.mach.is_active(ssnode.READY)
            finally:
                await intruder.stop(dispose=True)
            # the leased client may not touch the worker's control states (over the wire)
            allowed = ssnode.worker_client_states(worker.state_names)
            assert worker.mutable_states == set(allowed)
            assert not set(allowed) & set(ssnode.WORKER_CONTROL_STATES)
            await refused_over_the_wire(worker, allowed)
            await worker.when([ssnode.RESERVED, ssnode.CLIENT_CONNECTED], timeout=T)
            # the lease and the link are untouched
            assert client.mach.is_active(ssnode.WORKER_READY)
            assert (await client.work({"input": 5}, timeout=T)).data == 25
            assert [w.leased_to for w in await sup.workers("leased")] == [client.worker_rpc_id]
            no_error(sup.mach)
        finally:
            await client.stop()


async def test_garbage_on_every_port() -> None:
    sup = new_supervisor("HOST", (1, 1, 0, 0))
    spawner = sup.spawner
    assert isinstance(spawner, node.InProcessSpawner)
    async with running(sup):
        client = await connected_client(sup)
        try:
            await client.req_worker(timeout=T)
            (w,) = [x for x in spawner.workers if not x.mach.is_disposed]
            boot = node.Bootstrap(sup, "no-such-entry")
            await boot.start(T)
            ports = {"supervisor public": sup.public_addr, "supervisor local": sup.local_addr,
                     "worker local": w.local_addr, "worker public": w.public_addr,
                     "bootstrap": boot.addr}
            for addr in ports.values():
                for data in GARBAGE:
                    await send_garbage(addr, data)
            # a well-formed but bogus report on the bootstrap goes nowhere
            liar = await raw_rpc(boot.addr, "liar", ssnode.BootstrapSchema)
            assert liar.netmach is not None
            assert await liar.netmach.add(ssnode.WORKER_ADDR, {
                node.ARG: node.WorkerAddrArgs("", "", "")}) == am.CANCELED
            await refused_over_the_wire(liar.netmach, ssnode.BOOTSTRAP_CLIENT_STATES)
            assert await liar.netmach.add(ssnode.WORKER_ADDR, {
                node.ARG: node.WorkerAddrArgs("nw-fake", "127.0.0.1:1", "127.0.0.1:2")}) \
                == am.EXECUTED
            await liar.stop(dispose=True)
            await boot.stop()
            # nothing else was affected
            assert (await client.work({"input": 3}, timeout=T)).data == 9
            assert sup.mach.is_active([ssnode.READY, ssnode.POOL_READY])
            assert len(sup.pool.entries) == 1
            assert w.mach.is_active([ssnode.SUPER_CONNECTED, ssnode.CLIENT_CONNECTED])
            no_error(sup.mach)
            no_error(w.mach)
            no_error(client.mach)
        finally:
            await client.stop()


async def test_client_ids_are_not_shared() -> None:
    """Another connection asking for a worker for an id that holds a lease is refused for good
    (and two clients of the same name have different worker ids)."""
    sup = new_supervisor("HOST", (2, 2, 0, 0))
    async with running(sup):
        client = await connected_client(sup)
        try:
            await client.req_worker(timeout=T)
            copycat = node.Client("cli", "HOST", rels_worker_schema(), name=client.name,
                                  timeouts=client.timeouts)
            assert copycat.worker_rpc_id != client.worker_rpc_id
            copycat.worker_rpc_id = client.worker_rpc_id  # pretend to be the lease holder
            await copycat.start([sup.public_addr])
            try:
                with pytest.raises(node.WorkerUnavailableError, match="in use"):
                    await copycat.req_worker(timeout=T)
            finally:
                await copycat.stop()
            assert client.mach.is_active(ssnode.WORKER_READY)
        finally:
            await client.stop()


async def test_a_worker_process_admits_only_its_supervisor() -> None:
    """A worker process's local port admits only the link id its supervisor passed it."""
    from helpers.node import worker_cmd

    sup = new_supervisor("NTW", (1, 1, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        (info,) = await sup.workers()
        intruder = RpcClient(info.local_addr, id="intruder", conn_retries=0)
        await intruder.start()
        try:
            await wait_for(lambda: isinstance(intruder.mach.err, NoAccessError),
                           what="no_access")
        finally:
            await intruder.stop(dispose=True)
        entry = sup.pool.by_id(info.id)
        assert entry is not None and entry.linked  # the supervisor's link is untouched
        assert len(await sup.workers("ready")) == 1
        no_error(sup.mach)
