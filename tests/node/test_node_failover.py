"""Two `amnode supervisor` processes as peers, real worker processes, clients in this process:
SIGKILL the supervisor that serves a client while it holds a worker. The client keeps working
with its worker, moves on to the survivor, which adopts the orphans (the leased one keeps its
lease) and returns to its target; the client's next `req_worker` is served by the survivor.
Every worker process ends (PIDs checked)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from helpers.node import (
    T,
    dead_addr,
    env_without_recording,
    exited,
    fast_timeouts,
    rels_worker_schema,
    start_cli_supervisor,
    wait_for,
    wait_status,
    worker_cmd,
)

from amnode import node
from amnode.states import node as ssnode

pytestmark = pytest.mark.timeout(180)


async def test_sigkill_one_of_two_supervisors_while_clients_hold_workers(
        record_property: pytest.RecordProperty) -> None:
    env = {**env_without_recording(), "AMNODE_NODE_SECRET": "failover test"}
    ctl = [dead_addr(), dead_addr()]
    while ctl[0] == ctl[1]:
        ctl[1] = dead_addr()
    common = ["--kind", "NTW", "--worker-cmd", " ".join(worker_cmd()), "--min", "2", "--max",
              "4", "--warm", "0", "--grace", "20"]
    procs: list[asyncio.subprocess.Process] = []
    infos = []
    for i in (0, 1):
        proc, info = await start_cli_supervisor(
            *common, "--instance", str(i), "--local-addr", ctl[i], "--peers", ctl[1 - i],
            env=env)
        procs.append(proc)
        infos.append(info)
    s0, s1 = infos
    clients: list[node.Client] = []
    pids: set[int] = set()
    try:
        for info, other in ((s0, s1), (s1, s0)):
            st = await wait_status(info["public"], lambda s, other=other: "PoolReady" in s[
                "states"] and other["id"] in s["peers"], "pool ready and linked")
            pids |= {w["pid"] for w in st["workers"]}
        # client a is served by s1, client b by s0
        a = node.Client("a", "NTW", rels_worker_schema(), rotation="ordered",
                        timeouts=fast_timeouts())
        b = node.Client("b", "NTW", rels_worker_schema(), rotation="ordered",
                        timeouts=fast_timeouts())
        clients += [a, b]
        await a.start([s1["public"], s0["public"]])
        await b.start([s0["public"], s1["public"]])
        wa = await a.req_worker(timeout=T)
        wb = await b.req_worker(timeout=T)
        assert (await a.work({"input": 3}, timeout=T)).data == 9
        st1 = await wait_status(s1["public"], lambda s: any(
            w["id"] == wa.remote_id and w["state"] == "leased" for w in s["workers"]), "leased")
        orphans = {w["id"]: w["pid"] for w in st1["workers"]}
        link = a.worker_rpc

        t0 = time.monotonic()
        procs[1].send_signal(signal.SIGKILL)
        # a keeps working with its worker: the link is direct
        assert (await a.work({"input": 4}, timeout=T)).data == 16
        assert a.worker_rpc is link
        # a moves on to the survivor, which adopts a's worker with its lease
        await wait_for(lambda: a.super_rpc is not None and a.super_rpc.addr == s0["public"]
                       and a.mach.is_active(ssnode.SUPER_READY), what="a on s0")
        await wait_status(s0["public"], lambda s: any(
            w["id"] == wa.remote_id and w["adopted"] and w["state"] == "leased"
            for w in s["workers"]), "a's worker adopted")
        failover = time.monotonic() - t0
        record_property("failover_s", round(failover, 3))
        print(f"\nfailover: {failover:.2f}s from SIGKILL to the client on the survivor, "
              "its worker adopted")
        # the survivor returns to its target (the idle orphan is adopted, then retired)
        st0 = await wait_status(s0["public"], lambda s: "PoolNormalized" in s["states"]
                                and len(s["workers"]) == s["target"], "back at target")
        assert st0["ready"] >= st0["min"] and "Ready" in st0["states"]
        await wait_for(lambda: all(exited(p) for w, p in orphans.items() if w != wa.remote_id),
                       what="the idle orphan retired")
        # a's next req_worker goes to the survivor (its adopted worker is replaced)
        assert await a.return_worker()
        wa2 = await a.req_worker(timeout=T)
        assert wa2.remote_id != wa.remote_id
        st0 = await wait_status(s0["public"], lambda s: any(
            w["id"] == wa2.remote_id and w["state"] == "leased" and not w["adopted"]
            for w in s["workers"]), "a leased from s0")
        pids |= {w["pid"] for w in st0["workers"]}
        assert (await a.work({"input": 5}, timeout=T)).data == 25
        await wait_for(lambda: exited(orphans[wa.remote_id]), what="the adopted one recycled")
        # b never noticed anything
        assert b.worker is not None and b.worker.remote_id == wb.remote_id
        assert (await b.work({"input": 6}, timeout=T)).data == 36
    finally:
        for c in clients:
            await c.stop()
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), 60) for p in procs]
        leftovers = [p for p in pids if not exited(p)]
        for p in leftovers:
            os.kill(p, signal.SIGKILL)
    assert codes == [0, -signal.SIGKILL]
    assert not leftovers, f"worker processes left behind: {leftovers}"
