"""Live debugging of a pool (amnode.node.debug): a supervisor's ports accept `amdbg attach`
and relay each worker process's stream; workers admit only their supervisor; a debugger never
costs the pool more than it allows, and leaves no tracer behind."""

from __future__ import annotations

import asyncio
import os

from helpers.live import T, count, grown, hello, telemetry_tracers, until
from helpers.node import connected_client, new_supervisor, running, worker_cmd

from amnode.telemetry import process
from amnode.telemetry.live_protocol import PREFACE, MessageReader, Msg, control
from amnode.telemetry.receiver import LiveConnectError, LiveRecording


async def test_attach_on_either_port_relays_every_worker() -> None:
    sup = new_supervisor("dbg", (2, 2, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        workers = {e.id: e.pid for e in sup.pool.entries.values()}
        for addr in (sup.public_addr, sup.local_addr):
            live = LiveRecording("pool")
            await live.attach(addr)
            assert await live.wait_ready(T)  # READY: every worker's history came first
            live.recording.refresh()
            assert len(live.recording.streams) == 3
            assert {m.process.pid for m in live.recording.machines} == \
                {os.getpid(), *workers.values()}
            for wid in workers:
                assert count(live, wid) >= 0 and count(live, "rs-nw-loc-" + wid[3:]) >= 0
            await live.close()
        # the supervisor still serves clients on the same ports
        client = await connected_client(sup)
        assert (await client.work({"input": 3}, timeout=T)).data == 9
        await client.stop()
        await until(lambda: process.recorder() is None, what="the recorder to close")
        assert telemetry_tracers(sup.mach) == []  # nothing bound once nobody is attached


async def test_a_worker_ready_after_the_attach_is_relayed_too() -> None:
    sup = new_supervisor("grow", (1, 1, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        live = LiveRecording("pool")
        await live.attach(sup.public_addr)
        assert await live.wait_ready(T)
        sup.set_pool(2, 2, 0)
        await sup.mach.when("PoolNormalized", timeout=T)
        ids = [e.id for e in sup.pool.entries.values()]
        assert len(ids) == 2
        await grown(live, lambda: all(count(live, w) >= 0 for w in ids)
                    and len(live.recording.streams) == 3, what="the new worker's stream")
        await live.close()


async def test_a_worker_port_admits_only_its_supervisor() -> None:
    sup = new_supervisor("guard", (1, 1, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        entry = next(iter(sup.pool.entries.values()))
        with_id = LiveRecording("direct")
        # a debugger (no id) cannot attach to a worker's local port directly
        try:
            await with_id.attach(entry.local_addr)
            raise AssertionError("a worker admitted a stranger")
        except LiveConnectError as err:
            assert "refused" in str(err) or "unexpected role" in str(err)
        host, port = entry.local_addr.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(hello(role="relay", id="rc-not-the-supervisor"))
        msgs = MessageReader(preface=False).feed(await asyncio.wait_for(reader.read(), T))
        assert [m[0] for m in msgs] == [Msg.HELLO, Msg.BYE]
        assert b"only this worker's supervisor" in msgs[1][2]
        writer.close()
        # the supervisor's link to the worker is unaffected
        client = await connected_client(sup)
        assert (await client.work({"input": 4}, timeout=T)).data == 16
        await client.stop()


async def test_garbage_on_a_supervisor_port_closes_only_that_connection() -> None:
    sup = new_supervisor("junk", (1, 1, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        live = LiveRecording("watch")
        await live.attach(sup.public_addr)
        assert await live.wait_ready(T)
        host, port = sup.public_addr.rsplit(":", 1)
        for junk in (PREFACE[:1] + b"junk" * 100, PREFACE + b"\x01" * 64,
                     PREFACE + control(Msg.HELLO, 0, {"v": 1, "role": "attach"})
                     + control(Msg.OPEN, 1, {"mutate": "everything"})):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(junk)
            await asyncio.wait_for(reader.read(), T)  # closed by the supervisor
            writer.close()
        client = await connected_client(sup)
        assert (await client.work({"input": 2}, timeout=T)).data == 4
        await grown(live, lambda: count(live, client.mach.id) > 0, what="the client")
        assert live.connected == 1
        await client.stop()
        await live.close()
