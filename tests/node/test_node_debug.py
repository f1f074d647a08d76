"""Live debugging of a pool (amnode.node.debug): a supervisor's ports accept `amdbg attach`
and relay each worker process's stream; workers admit only their supervisor; a debugger never
costs the pool more than it allows, and leaves no tracer behind; a client in a process of its
own (`AMNODE_DBG_LISTEN`) joins the same session, recorded while live."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from helpers.live import T, count, grown, hello, telemetry_tracers, until
from helpers.node import connected_client, new_supervisor, running, worker_cmd

from amnode.telemetry import open_recording, process
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


#: a node client in a process of its own that accepts debuggers (AMNODE_DBG_LISTEN): says
#: "ready" once connected to the supervisor, leases a worker and works on a line of stdin,
#: stops when stdin closes
CLIENT = r"""
import asyncio, sys
from amnode import node
from amnode.states import node as ssnode
from helpers.node import fast_timeouts, rels_worker_schema

async def main(addr, kind):
    c = node.Client("remote", kind, rels_worker_schema(), timeouts=fast_timeouts())
    await c.start([addr])
    await c.mach.when(ssnode.SUPER_READY, timeout=60)
    print("ready", c.mach.id, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    await c.req_worker(timeout=60)
    print((await c.work({"input": 7}, timeout=60)).data, flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    await c.stop()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_client_process_attached_separately_joins_the_session(tmp_path: Path) -> None:
    sup = new_supervisor("both", (1, 1, 0, 0), worker_cmd=worker_cmd())
    async with running(sup):
        wid, wpid = next((e.id, e.pid) for e in sup.pool.entries.values())
        tests = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "AMNODE_DBG_LISTEN": "127.0.0.1:0",
               "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
        env.pop("AMNODE_RECORD", None)
        env.pop("AMNODE_DBG_RING", None)  # a node process's default flight recorder
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, sup.public_addr, sup.kind, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            said = b""
            while b"debuggers can attach to " not in said:
                line = await asyncio.wait_for(proc.stderr.readline(), T)
                assert line, "the client process ended before it listened"
                said = line
            client_addr = said.decode().split("debuggers can attach to ")[1].split()[0]
            ready = (await asyncio.wait_for(proc.stdout.readline(), T)).decode().split()
            assert ready[0] == "ready"
            client_id = ready[1]

            # one session, two attach targets, recorded while live
            live = LiveRecording("pool + client", record_dir=tmp_path / "rec")
            await live.attach(sup.public_addr)
            await live.attach(client_addr)
            assert await live.wait_ready(T)
            rec = live.recording
            proc.stdin.write(b"work\n")
            assert (await asyncio.wait_for(proc.stdout.readline(), T)).strip() == b"49"

            def job() -> object:
                if count(live, wid) < 0:
                    return None
                return next((t for t in rec.machine(wid) if "WorkRequested" in t.called
                             and t.args.get("input") == "7"), None)

            tx = await grown(live, job, what="the job in the worker's machine")
            # the job came from the client process's aRPC client (the mutation was called
            # outside a transition: the source names the machine only)
            assert tx.source is not None
            caller = await grown(live, lambda: next((m for m in rec.machines
                                                     if m.id == tx.source.machine_id), None),
                                 what="the client's aRPC client")
            assert caller.process.pid == proc.pid

            def chain() -> list[tuple[int, str, list[str]]]:
                """The worker's lease, followed back through its sources to the client."""
                t = next((t for t in rec.machine(wid) if "ServeClient" in t.called), None)
                out: list[tuple[int, str, list[str]]] = []
                while t is not None and t.source is not None and t.source.tx_id and \
                        len(out) < 8:
                    t = rec.transition_by_id(t.source.tx_id)
                    if t is not None:
                        out.append((rec.machine(t.machine).process.pid, t.machine_id, t.called))
                return out

            links = await grown(live, lambda: (c := chain()) and c[-1][0] == proc.pid and c,
                                what=lambda: chain())
            assert (os.getpid(), sup.mach.id, ["ProvideWorker"]) in links
            assert links[-1] == (proc.pid, client_id, ["WorkerRequested"])
            assert count(live, client_id) > 0
            assert {m.process.pid for m in rec.machines} == {os.getpid(), wpid, proc.pid}
            assert [t.connected for t in live.targets] == [True, True]

            proc.stdin.close()
            assert await asyncio.wait_for(proc.wait(), T) == 0
            await until(lambda: not live.targets[1].connected, what="the client's end")
            await live.close()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        # what was recorded while live: the same machines and transition ids
        on_disk = open_recording(tmp_path / "rec")
        assert on_disk.corruption == []
        assert {m.key: [t.id for t in m] for m in on_disk.machines} == \
            {m.key: [t.id for t in m] for m in rec.machines}
        assert {m.process.pid for m in on_disk.machines} == {os.getpid(), wpid, proc.pid}
